"""Run a sweep's runs as Ray tasks, on an existing Ray cluster or on one started for the sweep.

    >>> from rnnbench.config import load_preset
    >>> from rnnbench.sweep.ray_executor import RayExecutor
    >>> from rnnbench.sweep import run_sweep
    >>> run_sweep(load_preset("smoke"), executor=RayExecutor(address="auto"))   # a running cluster  # doctest: +SKIP

Each run is one task that asks for what its device needs: one GPU (and one CPU to drive it) for a
CUDA run, `cpus_per_run` CPUs for a CPU run, whose torch then uses that many threads. The corpus
goes into Ray's object store once, so no node needs the data files; every node needs rnnbench and
torch installed. The driver (the process that called run_sweep) stays the only writer of the
results directory: a task returns its record and the bytes of its best checkpoint, and the driver
stores them as they arrive. Tasks report training progress to a small actor that the driver polls.

A run that fails inside training is recorded by the task itself, as in a local sweep. A task that
dies (its worker or node lost, Ray's memory monitor) is retried `max_retries` times by Ray, then
recorded with status "failed" (or "oom") and Ray's error. Runs restart from their first step when
a task is retried or a sweep is resumed: latest.pt checkpoints are local to the node that trained.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from rnnbench.config import Execution, Hardware, RunConfig
from rnnbench.core.checkpoint import RunFiles
from rnnbench.core.data import Corpus
from rnnbench.core.devices import DEVICE_KINDS, hardware, kind_of, torch_threads
from rnnbench.errors import UsageError
from rnnbench.events import OnEvent, Progress, RunProgress, RunStarted, throttled
from rnnbench.results import utc_now
from rnnbench.sweep.runs import Finished, run_one, run_record

INSTALL_HINT = "pip install 'rnnbench[ray]' (in a checkout: pip install -e '.[ray]')"
POLL_S = 0.5  # how long the driver waits for a finished task before refreshing the display


def _import_ray():
    try:
        import ray
    except ImportError:
        raise UsageError(f"--executor ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def run_task(
    cfg: RunConfig, corpus: Corpus, board, threads: int | None, keep_checkpoint: bool, cuda_graphs: bool = True
) -> tuple[dict, bytes | None]:
    """The body of one Ray task: train in a scratch folder, return the record and best.pt's bytes."""
    board.report.remote(cfg.run_id, None)
    on_progress = throttled(lambda p: board.report.remote(cfg.run_id, p))

    with torch_threads(threads), tempfile.TemporaryDirectory(prefix="rnnbench-") as scratch:
        record = run_one(cfg, corpus, on_progress, Path(scratch) if keep_checkpoint else None, cuda_graphs)
        return record, RunFiles(scratch).best_bytes()


def _answers(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except (OSError, ValueError):
        return False
    return True


def _cluster_address(address: str | None) -> tuple[str | None, str]:
    """(what to pass to ray.init, what to tell the user), checked so that a cluster that is not
    there fails in seconds rather than after Ray's long connection retries.

    None and 'auto' are resolved as ray.init resolves them (RAY_ADDRESS, then the cluster last
    started with `ray start` on this machine); a record of a cluster that has since stopped is
    common, and with no address given it means: start a local cluster."""
    if address == "local":
        return address, "a new local Ray cluster"
    # Ray Client addresses (ray://) are left out: they need ray[client] and change how tasks run.
    if address not in (None, "auto") and not re.fullmatch(r"[\w.-]+:\d+", address):
        raise UsageError(f"--ray-address takes auto, local or HOST:PORT (the cluster's GCS address), got '{address}'")
    try:
        from ray._private.services import canonicalize_bootstrap_address  # how ray.init resolves them

        found = canonicalize_bootstrap_address(address)
    except ConnectionError:
        raise UsageError(
            "no running Ray cluster found for --ray-address auto: start one with `ray start --head` "
            "or leave out --ray-address to start a local one"
        ) from None
    except (ImportError, AttributeError):  # another Ray version: let ray.init resolve it
        return address, f"Ray at {address or 'auto'}"
    if found is None:
        return "local", "a new local Ray cluster"
    if _answers(found):
        return found, f"the Ray cluster at {found}"
    if address is None and not os.environ.get("RAY_ADDRESS"):
        return "local", f"a new local Ray cluster (the last one started, {found}, is gone)"
    shown = found if address in (None, "auto") else address
    raise UsageError(
        f"no Ray cluster answers at {shown}: start one with `ray start --head`, or leave out "
        "--ray-address to start a local one"
    )


class RayExecutor:
    """Runs a sweep's runs as Ray tasks; see the module's docstring."""

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        cpus_per_run: int = 1,
        max_retries: int = 1,
        gpus_per_run: float = 1.0,
        task: Callable = run_task,
    ):
        if cpus_per_run < 1:
            raise UsageError(f"--ray-cpus-per-run must be at least 1, got {cpus_per_run}")
        if not 0 < gpus_per_run <= 1:
            raise UsageError(
                f"--ray-gpus-per-run must be above 0 and at most 1 (a fraction of one GPU), got {gpus_per_run}"
            )
        self.gpus_per_run = gpus_per_run
        if max_retries < 0:
            raise UsageError(f"--ray-max-retries must be 0 or more, got {max_retries}")
        self.address, self.cpus_per_run, self.max_retries, self.task = address, cpus_per_run, max_retries, task
        self.ray = _import_ray()
        self._pending: dict = {}

    def __enter__(self) -> RayExecutor:
        address, self.where = _cluster_address(self.address)
        try:
            # log_to_driver=False: worker output would tear through the progress display; Ray keeps
            # it under its session's logs folder.
            self.ray.init(address=address, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UsageError(f"cannot connect to {self.where}: {str(exc).strip().splitlines()[0]}") from None
        return self

    def __exit__(self, *exc) -> None:
        for ref in self._pending:  # interrupted: do not leave runs training for nobody
            self.ray.cancel(ref, force=True)
        self._pending = {}
        self.ray.shutdown()

    def cluster(self) -> dict[str, float]:
        return self.ray.cluster_resources()

    def resolve_devices(self, requested: tuple[str, ...]) -> list[str]:
        """Devices are checked against the cluster, not this machine: Ray picks each run's GPU.
        A run must fit on one node, or Ray would hold it pending for ever."""
        node_cpus = max((node["Resources"].get("CPU", 0) for node in self.ray.nodes() if node["Alive"]), default=0)
        if self.cpus_per_run > node_cpus:
            raise UsageError(
                f"--ray-cpus-per-run {self.cpus_per_run}: no node of the cluster has more than {node_cpus:g} CPUs"
            )
        cluster = self.cluster()
        # A run is placed on a kind of device by the Ray resource it asks for: CPUs, or a GPU of its own.
        schedulable = {k.name: k for k in DEVICE_KINDS.values() if k.name == "cpu" or k.ray_resource}
        kinds_text = ", ".join(schedulable) + " or auto"
        resolved: list[str] = []
        for name in requested:
            name = name.strip().lower()
            if name == "auto":
                candidates = [
                    k for k, kind in schedulable.items() if not kind.ray_resource or cluster.get(kind.ray_resource)
                ]
            elif name in schedulable:
                resource = schedulable[name].ray_resource
                if resource and not cluster.get(resource, 0):
                    raise UsageError(
                        f"device '{name}' is not available: the Ray cluster has no {resource}s "
                        "(`ray status` shows its resources)"
                    )
                candidates = [name]
            else:
                raise UsageError(
                    f"device '{name}' cannot be scheduled by Ray: use {kinds_text} "
                    "(Ray gives each CUDA run one GPU of its own)"
                )
            resolved += [c for c in candidates if c not in resolved]
        return resolved

    def hardware(self, device: str) -> Hardware:
        """Asked of a task placed as a run on `device` would be: a run trains on a node of the
        cluster, not here. (A run that lands on other hardware than this says so and fails.)"""
        threads = self.cpus_per_run if kind_of(device).threads else None
        probe = self.ray.remote(hardware).options(**self._resources(device), max_retries=self.max_retries)
        return self.ray.get(probe.remote(device, threads))

    def summary(self) -> str:
        res = self.cluster()
        return (
            f"{self.where}: {res.get('CPU', 0):g} CPUs and {res.get('GPU', 0):g} GPUs, "
            f"{self.cpus_per_run} CPU(s) per CPU run, {self.gpus_per_run:g} GPU per CUDA run"
        )

    def _resources(self, device: str) -> dict:
        if kind_of(device).ray_resource == "GPU":
            # A fraction lets several runs share one GPU (Ray packs them by the fraction asked).
            return {"num_gpus": self.gpus_per_run, "num_cpus": 1}
        return {"num_cpus": self.cpus_per_run}

    def _options(self, cfg: RunConfig) -> dict:
        # retry_exceptions=False: an exception inside training is already the run's record; only
        # a lost worker or node is worth another try.
        return {
            **self._resources(cfg.device),
            "max_retries": self.max_retries,
            "retry_exceptions": False,
            "name": f"rnnbench {cfg.run_id} {cfg.label}",
        }

    def _lost(self, cfg: RunConfig, exc: Exception, started_at: str) -> Finished:
        """The record of a task that ended without a record of its own."""
        cause = getattr(exc, "cause", None)  # a RayTaskError wraps what the task raised
        status = "oom" if isinstance(exc, self.ray.exceptions.OutOfMemoryError) else "failed"
        what = cause if isinstance(cause, BaseException) else exc
        message = str(what).strip().splitlines()
        error = (
            f"{what.__class__.__name__}: {message[0] if message else ''} (Ray task, {self.max_retries + 1} attempt(s))"
        )
        return Finished(cfg, run_record(cfg, status, error, started_at, {"executor": self.name}))

    def execute(
        self,
        todo: list[RunConfig],
        corpus: Corpus,
        checkpoint_dirs: dict[str, Path | None],
        on_event: OnEvent,
        execution: Execution = Execution(),
        stopper=None,
        claim=lambda cfg: True,
    ) -> Iterator[Finished]:
        # --stop-after is refused with Ray (cli.sweep): runs under Ray restart from their first step.
        ray = self.ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        todo = [cfg for cfg in todo if claim(cfg)]  # all submitted at once: claimed at once
        if not todo:
            return
        # The board lives on the driver's node: a worker node lost with it must not end the sweep.
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        board = ray.remote(num_cpus=0, scheduling_strategy=here)(_ProgressBoard).remote()
        corpus_ref = ray.put(Corpus(corpus.name, corpus.data, corpus.source))  # bytes only, once
        remote = ray.remote(self.task)
        by_id = {cfg.run_id: cfg for cfg in todo}
        started_at = {}
        for cfg in todo:
            threads = self.cpus_per_run if kind_of(cfg.device).threads else None
            ref = remote.options(**self._options(cfg)).remote(
                cfg, corpus_ref, board, threads, checkpoint_dirs[cfg.run_id] is not None, execution.cuda_graphs
            )
            self._pending[ref] = cfg
        while self._pending:
            # num_returns=1: back as soon as any run finishes, or after POLL_S to refresh the display.
            ready, _ = ray.wait(list(self._pending), num_returns=1, timeout=POLL_S)
            try:
                latest = ray.get(board.take.remote()) if board is not None else {}
            except ray.exceptions.RayActorError:  # progress is for show: the runs go on without it
                board, latest = None, {}
            for run_id, p in latest.items():
                cfg = by_id[run_id]
                if run_id not in started_at:
                    started_at[run_id] = utc_now()
                    on_event(RunStarted(cfg))
                if p is not None:
                    on_event(RunProgress(cfg, p))
            for ref in ready:
                cfg = self._pending.pop(ref)
                try:
                    record, best = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    yield self._lost(cfg, exc, started_at.get(cfg.run_id, utc_now()))
                    continue
                yield Finished(cfg, record, best)


class _ProgressBoard:
    """A Ray actor holding each task's latest progress until the driver takes it."""

    def __init__(self):
        self.latest: dict[str, Progress | None] = {}

    def report(self, run_id: str, progress: Progress | None) -> None:
        if progress is not None or run_id not in self.latest:
            self.latest[run_id] = progress

    def take(self) -> dict[str, Progress | None]:
        latest, self.latest = self.latest, {}
        return latest
