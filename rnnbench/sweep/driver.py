"""Run a grid: expand it, skip finished runs, train the rest, store each as it finishes.

    >>> import tempfile
    >>> from rnnbench.config import Grid
    >>> from rnnbench.sweep import run_sweep
    >>> grid = Grid.from_settings(dataset="synthetic", cells=("gru",), layers=(1,), sizes=(16,),
    ...                           size_mode="hidden", devices=("cpu",), batch_size=8, seq_len=16,
    ...                           max_steps=10, eval_every_steps=5)
    >>> [r.status for r in run_sweep(grid, tempfile.mkdtemp())]   # run_sweep(load_preset("smoke")): minutes
    ['ok']

Every check that can fail for the whole sweep (devices, corpus, sizes) runs before any training.
A failure inside one run (a bad config, CUDA out of memory, any exception) is stored as that run's
status and error, and the sweep goes on. Ctrl-C stops at once: runs already stored stay, the one in
progress is not stored, and the same command continues where it stopped. What happens is reported
as events (rnnbench.events) to the `on_event` callback; nothing here draws on a terminal.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from rnnbench import results
from rnnbench.choices import check_choice
from rnnbench.config import Execution, Grid, RunConfig
from rnnbench.core.data import Corpus, Layout, load_corpus
from rnnbench.core.devices import BUSY_CORES, busy_cores
from rnnbench.errors import StopRequested, UsageError
from rnnbench.events import Notice, OnEvent, RunFinished, RunSkipped, RunStarted, SweepPlanned, ignore
from rnnbench.files import check_writable
from rnnbench.results import ResultsFolder
from rnnbench.results.claims import Claims
from rnnbench.sweep.cuda_mps import daemon_for
from rnnbench.sweep.estimate import Estimate, Estimator, lanes_wall_s
from rnnbench.sweep.runs import Executor, Finished, LocalExecutor, Stopper


@dataclass(frozen=True)
class Shard:
    """The INDEX-th (from 1) of COUNT deterministic slices of a grid: every COUNT-th run of the
    grid's fixed order, so each slice gets a similar mix of small and large models."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not match or not 1 <= int(match[1]) <= int(match[2]):
            raise UsageError(f"--shard takes I/N with 1 <= I <= N (the I-th of N slices), got '{text}'")
        return cls(int(match[1]), int(match[2]))

    def select(self, runs: list[RunConfig]) -> list[RunConfig]:
        return runs[self.index - 1 :: self.count]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def local_executor(execution: Execution) -> Executor:
    """This machine's executor for `execution.jobs` and `execution.threads`: in this process, or in
    worker processes, each with `threads` torch threads on a CPU (by default the cores split between
    the jobs)."""
    if execution.jobs == 1:
        return LocalExecutor(execution.threads)
    from rnnbench.sweep.processes import ProcessExecutor

    return ProcessExecutor(execution.jobs, execution.threads)


EXECUTORS = ("local", "ray")


def sweep_executor(name: str, execution: Execution, ray_options: dict) -> Executor:
    """The executor named `name` (EXECUTORS), checked against the settings each takes: the local one
    takes jobs, threads and stop_after_s; Ray takes `ray_options` (address, cpus_per_run,
    max_retries, gpus_per_run; None where not given) and decides for itself how runs share a machine."""
    check_choice("executor", name, EXECUTORS)
    given = {option: value for option, value in ray_options.items() if value is not None}
    if name == "local":
        if given:
            raise UsageError(f"--ray-{next(iter(given)).replace('_', '-')} needs --executor ray")
        return local_executor(execution)
    if execution.jobs != 1:
        raise UsageError(
            "--jobs is for the local executor; under Ray, --ray-cpus-per-run and --ray-gpus-per-run "
            "decide how many runs share a machine"
        )
    if execution.threads is not None:
        raise UsageError(
            "--threads is for the local executor; under Ray, --ray-cpus-per-run sets the torch threads of each CPU run"
        )
    if execution.stop_after_s is not None:
        raise UsageError("--stop-after is for the local executor: runs under Ray restart from their first step")
    from rnnbench.sweep.ray_executor import RayExecutor  # Ray is an extra: imported when asked for

    return RayExecutor(**given)


def machine_notices(grid: Grid, executor: Executor) -> list[str]:
    """What a user should know before trusting this sweep's timings: the machine is already busy
    (other processes keep BUSY_CORES or more busy, measured over a quarter of a second), or the CPU runs'
    threads outnumber the cores."""
    out = []
    busy = busy_cores()
    if busy >= BUSY_CORES:
        out.append(
            f"this machine is busy: other processes keep {busy:.1f} of its {os.cpu_count()} cores busy (load "
            f"average {os.getloadavg()[0]:.1f}); these runs' timings will not be solo figures, and their rows "
            "say so (other_cpu_cores)"
        )
    crowded = crowded_cores_notice(grid, executor)
    return out + ([crowded] if crowded else [])


def crowded_cores_notice(grid: Grid, executor: Executor) -> str | None:
    """The sweep's CPU runs would run more torch threads at once than the machine has cores, and
    what to give instead; None when they fit (or no run is on a CPU)."""
    threads = getattr(executor, "threads", None)
    cores = os.cpu_count() or 1
    jobs = grid.execution.jobs
    if "cpu" not in {d.split(":")[0] for d in grid.devices} or threads is None or jobs * threads <= cores:
        return None
    # More jobs than cores cannot be mended with threads (each job has one at least): fewer jobs can.
    advice = f"--jobs {cores} --threads 1" if jobs > cores else f"--threads {cores // jobs}"
    return (
        f"{jobs} jobs x {threads} torch threads = {jobs * threads} threads on {cores} cores: CPU runs "
        f"will slow each other down; use {advice}"
    )


class DeviceSharing:
    """How many runs of the sweep were in flight on a run's device at most while it trained:
    throughput measured beside other runs is not a solo figure. Counted by device name, from the
    executors' events (under Ray, runs on other nodes count too: an upper bound)."""

    def __init__(self):
        self.in_flight: dict[str, str] = {}  # run id -> device
        self.peak: dict[str, int] = {}

    def observe(self, event) -> None:
        if isinstance(event, RunStarted):
            self.in_flight[event.cfg.run_id] = event.cfg.device
            sharing = [r for r, d in self.in_flight.items() if d == event.cfg.device]
            for run_id in sharing:
                self.peak[run_id] = max(self.peak.get(run_id, 1), len(sharing))

    def finished(self, run_id: str) -> int:
        self.in_flight.pop(run_id, None)
        return self.peak.pop(run_id, 1)


BIG_SWEEP_RUNS = 1000  # a sweep of more runs says how many, and how long they may take, first


def duration_text(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:,.0f} s"


def big_sweep_notice(grid: Grid, todo: list[RunConfig], folder: ResultsFolder) -> str:
    """What a sweep of more than BIG_SWEEP_RUNS runs is about to do, with the time it may take:
    from the time budget per run, else from the runs stored for the same hardware, else unknown."""
    jobs = grid.execution.jobs
    hardware = {cfg.hardware for cfg in todo}
    walls = [r.metrics.get("wall_s") for r in folder.scan() if r.finished and r.hardware in hardware]
    walls = sorted(w for w in walls if isinstance(w, (int, float)))
    size = f"{len(todo):,} runs to train, {jobs} at a time"
    resume = "Ctrl-C stops at once and the same command continues"
    if grid.train.time_budget_s is not None:
        per_run, basis, bound = grid.train.time_budget_s, "the time budget per run", "at most"
    elif walls:
        per_run, basis, bound = (
            walls[len(walls) // 2],
            f"the median of the {len(walls)} runs stored for this hardware",
            "about",
        )
    else:
        return f"{size}; no estimate of the time yet (no run of this hardware is stored). {resume}"
    total = per_run * len(todo) / jobs
    return f"{size}: {per_run:,.1f} s per run ({basis}) makes {bound} {duration_text(total)}. {resume}"


def plan(
    grid: Grid, data_dir: str | None = None, executor: Executor | None = None, on_event: OnEvent = ignore
) -> tuple[Corpus, list[RunConfig]]:
    """Check everything that can fail for the whole sweep, then expand the grid for the hardware
    the executor trains on."""
    executor = executor or LocalExecutor()
    devices = tuple(executor.resolve_devices(grid.devices))
    corpus = load_corpus(grid.dataset, data_dir, on_event)
    Layout.of(grid.train).check_fits(corpus.name, corpus.n_bytes)
    return corpus, grid.expand(
        corpus.sha256,
        devices,
        dataset_name=corpus.name,
        hardware={device: executor.hardware(device) for device in devices},
    )


class SweepEvents:
    """What a sweep reports: to the caller, to the TensorBoard log when one is asked for, and (for
    the executors' events) to the count of runs sharing a device."""

    def __init__(self, on_event: OnEvent, tensorboard: str | None):
        self.listeners = [on_event]
        self.sharing = DeviceSharing()
        self.tensorboard = tensorboard
        self.stack = contextlib.ExitStack()
        if tensorboard:
            check_writable(tensorboard, "TensorBoard folder")

    def __enter__(self) -> SweepEvents:
        if self.tensorboard:
            from rnnbench.sweep.tensorboard import TensorBoardLog

            self.listeners.append(self.stack.enter_context(TensorBoardLog(self.tensorboard)).handle)
        return self

    def __exit__(self, *exc) -> None:
        self.stack.close()  # the TensorBoard log flushes what it has, interrupted or not

    def tell(self, event) -> None:
        for listener in self.listeners:
            listener(event)

    def emit(self, event) -> None:
        """An executor's event: counted for device sharing, then told."""
        self.sharing.observe(event)
        self.tell(event)


@dataclass
class SweepPlan:
    """The runs of a sweep against what its folder holds: which are stored (under which id) and
    which are to train, from one scan of the folder."""

    runs: list[RunConfig]
    grid_runs: int  # runs of the whole grid (a shard's are fewer)
    stored: dict[str, results.Record]  # identity -> the finished record stored for it
    identities: dict[str, str]  # run id -> identity
    todo: list[RunConfig]  # stopped runs first (see `stopped`), then in the grid's order
    estimates: dict[str, Estimate]  # run id -> its expected seconds, for every run to train
    stopped: set[str]  # run ids of the runs to train that were stopped part-way (a latest.pt to resume)

    @classmethod
    def make(
        cls,
        runs: list[RunConfig],
        folder: ResultsFolder,
        shard: Shard | None,
        force: bool,
        corpus: Corpus,
        execution: Execution,
        probe: bool,
    ) -> SweepPlan:
        """The runs to train, each estimated (`probe`: shapes without stored rows are probed)."""
        estimator = Estimator(folder, corpus, probe=probe, cuda_graphs=execution.cuda_graphs, resume=not force)
        grid_runs = len(runs)
        runs = shard.select(runs) if shard is not None else runs
        stored = folder.stored()
        identities = {cfg.run_id: results.identity("sweep", cfg.as_dict(), cfg.hardware) for cfg in runs}
        todo = [cfg for cfg in runs if force or identities[cfg.run_id] not in stored]
        # A run stopped part-way goes first: finishing it lands its row soonest, and its state lives
        # only on this disk until then. (--force starts it over, so it is a run like the others.)
        stopped = set() if force else {cfg.run_id for cfg in todo if folder.run_files(cfg.run_id).latest.exists()}
        todo.sort(key=lambda cfg: cfg.run_id not in stopped)
        # CPU shapes are probed as their runs will train: `jobs` at once, as far as the cores go.
        threads = max([cfg.hardware.threads or 1 for cfg in todo if cfg.hardware is not None] or [1])
        estimator.probe_side_by_side(todo, min(execution.jobs, max(1, (os.cpu_count() or 1) // threads)))
        estimates = {cfg.run_id: estimator.estimate(cfg) for cfg in todo}
        return cls(runs, grid_runs, stored, identities, todo, estimates, stopped)

    def longest_first(self) -> None:
        """Order the runs to train by their estimates, longest first (unknown ones last): with a
        deadline, the short runs fill the time the long ones leave. Stopped runs stay first."""
        self.todo.sort(key=lambda cfg: (cfg.run_id not in self.stopped, -(self.estimates[cfg.run_id].seconds or -1.0)))

    def seconds(self, cfgs: list[RunConfig]) -> tuple[float, int]:
        """(the summed estimates of `cfgs`, how many of them have none)."""
        known = [self.estimates[c.run_id].seconds for c in cfgs if self.estimates[c.run_id].seconds is not None]
        return sum(known), len(cfgs) - len(known)

    def stored_under(self, cfg: RunConfig) -> str | None:
        """The id a finished record of this run is stored under already (a schema-1 id), if any."""
        record = self.stored.get(self.identities[cfg.run_id])
        return record.run_id if record else None

    def records(self, folder: ResultsFolder) -> list[results.Record]:
        """The stored record of every run of the plan, in the grid's order: from the scan and this
        sweep's stores, or read now for a run another sweep on the folder finished meanwhile."""
        by_identity = {r.identity: r for r in folder.scan()}
        out = []
        for cfg in self.runs:
            record = by_identity.get(self.identities[cfg.run_id]) or folder.read(cfg.run_id)
            if record is not None:
                out.append(record)
        return out


class Claimer:
    """Decides, as each run is about to train, whether this sweep trains it: no other sweep on the
    folder holds it or finished it meanwhile; and readies its checkpoint folder."""

    def __init__(
        self,
        folder: ResultsFolder,
        claims: Claims,
        checkpoints: dict[str, Path | None],
        force: bool,
        on_event: OnEvent,
        plan: SweepPlan,
        stopper: Stopper,
    ):
        self.folder, self.claims, self.checkpoints = folder, claims, checkpoints
        self.force, self.on_event, self.plan, self.stopper = force, on_event, plan, stopper
        self.deferred: list[RunConfig] = []  # runs not started: they would not finish before the deadline

    def __call__(self, cfg: RunConfig) -> bool:
        left, estimate = self.stopper.seconds_left(), self.plan.estimates[cfg.run_id]
        if left is not None and estimate.seconds is not None and estimate.seconds > left:
            self.deferred.append(cfg)
            self.on_event(
                RunSkipped(
                    cfg,
                    f"would not finish before the deadline ({estimate.text} expected, "
                    f"{left:,.0f} s left): left for the next sweep",
                )
            )
            return False
        if not self.claims.take(cfg.run_id):
            self.on_event(RunSkipped(cfg, f"claimed by another sweep ({self.claims.holder(cfg.run_id)})"))
            return False
        if not self.force and self.folder.finished_now(cfg.run_id):
            self.claims.release(cfg.run_id)
            self.on_event(RunSkipped(cfg, "finished by another sweep meanwhile"))
            return False
        if self.checkpoints[cfg.run_id] is not None:
            files = self.folder.run_files(cfg.run_id)
            if self.force:
                files.drop_latest()  # --force starts over, once claimed
            else:
                files.recover_latest(self.on_event)
        return True


def before_training(
    grid: Grid,
    plan: SweepPlan,
    folder: ResultsFolder,
    executor: Executor,
    corpus: Corpus,
    shard: Shard | None,
    save_checkpoints: bool,
    force: bool,
    tell: OnEvent,
) -> None:
    """What a sweep says before its first run: its plan, how busy the machine is, the size of a big
    sweep, and the finished runs whose best.pt cannot be read."""
    tell(
        SweepPlanned(
            corpus.name,
            corpus.n_bytes,
            corpus.vocab_size,
            plan.grid_runs,
            len(plan.runs),
            len(plan.runs) - len(plan.todo),
            executor.summary(),
            str(shard) if shard else None,
        )
    )
    for notice in machine_notices(grid, executor):
        tell(Notice(notice))
    if len(plan.todo) > BIG_SWEEP_RUNS:
        tell(Notice(big_sweep_notice(grid, plan.todo, folder)))
    if save_checkpoints and not force:
        folder.unreadable_best([plan.stored_under(cfg) for cfg in plan.runs if plan.stored_under(cfg)], tell)


def plan_sweep(
    grid: Grid,
    results_dir: str | Path | None = None,
    data_dir: str | None = None,
    force: bool = False,
    executor: Executor | None = None,
    shard: Shard | None = None,
    on_event: OnEvent = ignore,
) -> SweepPlan:
    """What run_sweep would do, without training or writing anything: the runs, which are stored,
    and each other run's estimate (from stored rows of its hardware and shape, else a probe)."""
    folder = ResultsFolder(results_dir)
    executor = executor or local_executor(grid.execution)
    with executor:
        corpus, runs = plan(grid, data_dir, executor, on_event)
        sweep = SweepPlan.make(runs, folder, shard, force, corpus, grid.execution, probe=executor.name == "local")
    sweep.longest_first()
    return sweep


def run_sweep(
    grid: Grid,
    results_dir: str | Path | None = None,
    data_dir: str | None = None,
    force: bool = False,
    on_event: OnEvent = ignore,
    save_checkpoints: bool = True,
    executor: Executor | None = None,
    shard: Shard | None = None,
    stopper: Stopper | None = None,
) -> list[results.Record]:
    """Run every run of the grid (or of its `shard`) not yet finished in `results_dir`; return their records.

    `executor` decides where runs train (LocalExecutor by default; see rnnbench.sweep.ray_executor).
    This process stays the only writer of the run records: each is stored (results.ResultsFolder)
    as its run finishes, with the best checkpoint of a run trained elsewhere. With save_checkpoints,
    each run keeps best.pt (for sampling) and, while unfinished, latest.pt under
    RESULTS_DIR/checkpoints/RUN_ID/; an interrupted local run continues from latest.pt. When `stopper`
    (by default: the grid's stop_after_s) says stop, the runs in flight save their state and
    StopRequested is raised once every finished run is stored. `results_dir` None:
    files.default_results_dir()."""
    folder = ResultsFolder(results_dir)
    folder.prepare()  # before any work, not after the first run
    executor = executor or local_executor(grid.execution)
    stopper = stopper or Stopper(grid.execution.stop_after_s)
    with executor, SweepEvents(on_event, grid.execution.tensorboard) as events:
        corpus, runs = plan(grid, data_dir, executor, events.tell)
        # With a deadline, every run is estimated (probing shapes without stored rows) and the
        # longest go first; otherwise only from stored rows, for the record.
        probe = stopper.deadline is not None and executor.name == "local"
        sweep = SweepPlan.make(runs, folder, shard, force, corpus, grid.execution, probe=probe)
        if stopper.deadline is not None:
            sweep.longest_first()
        checkpoints = {
            cfg.run_id: folder.run_files(cfg.run_id).folder if save_checkpoints else None for cfg in sweep.todo
        }
        before_training(grid, sweep, folder, executor, corpus, shard, save_checkpoints, force, events.tell)
        daemon = daemon_for(sweep.todo, grid.execution.jobs, grid.execution.mps, events.tell)
        with folder.claims() as claims, daemon:  # after the checks: bad input leaves no folder
            claim = Claimer(folder, claims, checkpoints, force, events.tell, sweep, stopper)
            try:
                for done in executor.execute(
                    sweep.todo, corpus, checkpoints, events.emit, grid.execution, stopper, claim
                ):
                    store_finished(done, sweep, folder, events, grid.execution, executor.name, save_checkpoints)
                    claims.release(done.cfg.run_id)
            except StopRequested:
                events.tell(Notice(what_is_left(sweep, folder, grid.execution.jobs)))
                raise
            if claim.deferred:
                events.tell(Notice(what_is_left(sweep, folder, grid.execution.jobs)))
                raise StopRequested(f"{len(claim.deferred)} run(s) would not have finished before the deadline")
    return sweep.records(folder)


def store_finished(
    done: Finished,
    sweep: SweepPlan,
    folder: ResultsFolder,
    events: SweepEvents,
    execution: Execution,
    executor_name: str,
    save_checkpoints: bool,
) -> None:
    """Store a run that came back, with what the driver knows of how it ran, and say so."""
    estimate = sweep.estimates[done.cfg.run_id]
    done.record.env.setdefault("executor", executor_name)
    done.record.env |= {
        "jobs": execution.jobs,
        "runs_sharing_device": events.sharing.finished(done.cfg.run_id),
        # what the plan expected, beside what it took (metrics.wall_s)
        "estimated_s": estimate.seconds,
        "estimate_source": estimate.source,
        # per step too: a run resumed or stopped early is judged by it (metrics.step_ms_median)
        "estimated_step_ms": None if estimate.step_s is None else estimate.step_s * 1e3,
    }
    folder.store(done.record, done.best_checkpoint, sweep.stored_under(done.cfg), save_checkpoints)
    events.tell(RunFinished(done.cfg, done.record))


def what_is_left(sweep: SweepPlan, folder: ResultsFolder, jobs: int) -> str:
    """The closing line of a sweep that stops before its end: the runs left and how long they should take."""
    left = [cfg for cfg in sweep.todo if not folder.finished_now(cfg.run_id)]
    seconds, unknown = sweep.seconds(left)
    wall = lanes_wall_s([sweep.estimates[c.run_id].seconds or 0.0 for c in left], jobs)
    if unknown == len(left):  # no estimate at all (a sweep without a deadline does not plan)
        return f"{len(left)} run(s) left, without an estimate; the same command continues"
    return (
        f"{len(left)} run(s) left, about {duration_text(seconds)} of device time"
        + (f" ({duration_text(wall)} with {jobs} at a time)" if jobs > 1 else "")
        + (f", {unknown} of them without an estimate" if unknown else "")
        + "; the same command continues"
    )
