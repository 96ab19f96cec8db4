"""One run of a sweep and where runs train: run_one turns a training into its stored record, and
an Executor (LocalExecutor here, in this process; sweep.processes and sweep.ray_executor elsewhere)
carries out a sweep's runs and hands each back as Finished.

    >>> from rnnbench.config import Grid
    >>> from rnnbench.core.data import load_corpus
    >>> from rnnbench.sweep.runs import run_one
    >>> corpus = load_corpus("synthetic")
    >>> grid = Grid.from_settings(dataset="synthetic", cells=("gru",), layers=(1,), sizes=(16,),
    ...                           size_mode="hidden", devices=("cpu",), batch_size=8, seq_len=16,
    ...                           max_steps=10, eval_every_steps=5)
    >>> record = run_one(grid.expand(corpus.sha256)[0], corpus)
    >>> record.status, record.metrics["steps"]
    ('ok', 10)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from rnnbench import results
from rnnbench.config import Execution, Hardware, RunConfig
from rnnbench.core.data import Corpus
from rnnbench.core.devices import (
    MachineLoad,
    environment,
    hardware,
    is_out_of_memory,
    kind_of,
    resolve_devices,
    torch_threads,
)
from rnnbench.core.train import train
from rnnbench.errors import StopRequested, StorageError, describe_error, one_line
from rnnbench.events import OnEvent, Progress, RunProgress, RunStarted


def run_record(
    cfg: RunConfig,
    status: str,
    error: str | None,
    started_at: str,
    env: dict,
    metrics: dict | None = None,
    curve: list | None = None,
) -> results.Record:
    """A sweep run's stored record (see rnnbench.results for the layout)."""
    return results.make_record("sweep", cfg.run_id, status, cfg.as_dict(), env, metrics, error, started_at, curve or [])


class Stopper:
    """When a sweep should stop gracefully: at its deadline (--stop-after), or once asked (SIGTERM).
    Runs in flight check it after every step; no run starts once it says stop."""

    def __init__(self, after_s: float | None = None):
        self.deadline = time.time() + after_s if after_s is not None else None
        self.asked = False

    def ask(self) -> None:
        self.asked = True

    def __call__(self) -> bool:
        return self.asked or (self.deadline is not None and time.time() >= self.deadline)

    def seconds_left(self) -> float | None:
        """Seconds until the deadline (None: no deadline)."""
        return None if self.deadline is None else max(0.0, self.deadline - time.time())


def run_one(
    cfg: RunConfig,
    corpus: Corpus,
    on_progress: Callable[[Progress], None] | None = None,
    checkpoint_dir: Path | None = None,
    cuda_graphs: bool = True,
    should_stop: Callable[[], bool] | None = None,
) -> results.Record:
    """Train one run and return its record; an exception becomes the record's status and error
    (but StopRequested, like Ctrl-C, ends the sweep). The record says how busy the machine was
    meanwhile (devices.MachineLoad)."""
    started = results.utc_now()
    load = MachineLoad()
    error = None
    metrics: dict = {}
    curve: list = []
    try:
        here = hardware(cfg.device)
        if cfg.hardware is not None and here != cfg.hardware:
            # The run's identity names its hardware: a figure from other hardware would lie.
            raise RuntimeError(
                f"planned for {cfg.hardware.label} but this worker is {here.label} "
                "(a cluster of mixed machines?); not trained"
            )
        result = train(cfg, corpus, on_progress, checkpoint_dir, cuda_graphs, should_stop)
        status, metrics, curve = result.status, result.metrics, result.curve
    except StorageError:
        raise  # a write that failed ends the sweep: every later write would fail too
    except Exception as exc:  # one run's failure must not end the sweep
        status, error = ("oom", one_line(exc)) if is_out_of_memory(exc) else ("failed", describe_error(exc))
    finally:
        kind_of(cfg.device).empty_cache(torch.device(cfg.device))
    env = {**environment(cfg.device), "corpus_source": corpus.source, **load.stop()}
    return run_record(cfg, status, error, started, env, metrics, curve)


@dataclass
class Finished:
    """What an executor hands back for one run: its record and, where the run trained away from
    the results directory, the bytes of its best checkpoint for the driver to store."""

    cfg: RunConfig
    record: results.Record
    best_checkpoint: bytes | None = None


class Executor(Protocol):
    """Where a sweep's runs train. run_sweep enters it (connect, start), resolves the grid's
    devices through it, then stores each Finished that execute() yields, in the order they come;
    execute() reports each run's start and training progress as RunStarted and RunProgress events,
    and carries out the runs as `execution` says (CUDA graphs or not)."""

    name: str  # stored as the runs' env.executor

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc) -> None: ...

    def resolve_devices(self, requested: tuple[str, ...]) -> list[str]: ...

    def hardware(self, device: str) -> Hardware:
        """The hardware the executor's runs on `device` will train on (part of their identity)."""

    def summary(self) -> str:
        """Where the runs train, in words, for the sweep's first line."""

    def execute(
        self,
        todo: list[RunConfig],
        corpus: Corpus,
        checkpoint_dirs: dict[str, Path | None],
        on_event: OnEvent,
        execution: Execution,
        stopper: Stopper,
        claim: Callable[[RunConfig], bool],
    ) -> Iterator[Finished]:
        """... and raises StopRequested, after handing back every run finished, once `stopper` says
        stop. A run starts only if `claim(cfg)` says it is this sweep's (another sweep on the same
        folder may hold it); one it refuses is left out."""


class LocalExecutor:
    """Runs one run at a time in this process, on this machine's devices, with `threads` torch
    threads on a CPU (None: torch's count, every core)."""

    name = "local"

    def __init__(self, threads: int | None = None):
        self.threads = threads
        self.scope = None  # the thread count while the executor is open; the caller's after

    def __enter__(self) -> LocalExecutor:
        self.scope = torch_threads(self.threads)
        self.scope.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.scope is not None:
            self.scope.__exit__(*exc)
            self.scope = None

    def resolve_devices(self, requested: tuple[str, ...]) -> list[str]:
        return resolve_devices(requested)

    def hardware(self, device: str) -> Hardware:
        return hardware(device, self.threads)

    def summary(self) -> str:
        threads = self.threads or torch.get_num_threads()
        return f"local executor, one run at a time, {threads} torch thread{'s' if threads != 1 else ''} on a CPU"

    def execute(
        self,
        todo: list[RunConfig],
        corpus: Corpus,
        checkpoint_dirs: dict[str, Path | None],
        on_event: OnEvent,
        execution: Execution = Execution(),
        stopper: Stopper | None = None,
        claim: Callable[[RunConfig], bool] = lambda cfg: True,
    ) -> Iterator[Finished]:
        stopper = stopper or Stopper()
        for cfg in todo:
            if stopper():
                raise StopRequested("stopped before the next run")
            if not claim(cfg):
                continue
            on_event(RunStarted(cfg))
            record = run_one(
                cfg,
                corpus,
                lambda p, cfg=cfg: on_event(RunProgress(cfg, p)),
                checkpoint_dirs[cfg.run_id],
                execution.cuda_graphs,
                stopper,
            )
            yield Finished(cfg, record)
