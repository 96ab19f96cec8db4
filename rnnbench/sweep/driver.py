"""Run a grid: expand it, skip finished runs, train the rest, store each as it finishes.

    >>> from rnnbench.config import load_preset
    >>> from rnnbench.sweep import run_sweep
    >>> records = run_sweep(load_preset("smoke"))          # doctest: +SKIP  (into files.default_results_dir())

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
import zipfile
from dataclasses import dataclass
from pathlib import Path

from rnnbench import results
from rnnbench.config import Execution, Grid, RunConfig
from rnnbench.core import checkpoint
from rnnbench.core.data import Corpus, Layout, load_corpus
from rnnbench.core.devices import BUSY_CORES, busy_cores
from rnnbench.errors import UsageError
from rnnbench.events import Notice, OnEvent, RunFinished, RunSkipped, RunStarted, SweepPlanned, ignore
from rnnbench.files import check_writable, default_results_dir, remove_stray_temporaries, write_atomic
from rnnbench.results.claims import Claims
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
        return runs[self.index - 1::self.count]

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


def machine_notices(grid: Grid, executor: Executor) -> list[str]:
    """What a user should know before trusting this sweep's timings: the machine is already busy
    (other processes keep BUSY_CORES or more busy, measured over a quarter of a second), or the CPU runs'
    threads outnumber the cores."""
    out = []
    busy = busy_cores()
    if busy >= BUSY_CORES:
        out.append(f"this machine is busy: other processes keep {busy:.1f} of its {os.cpu_count()} cores busy (load "
                   f"average {os.getloadavg()[0]:.1f}); these runs' timings will not be solo figures, and their rows "
                   "say so (other_cpu_cores)")
    threads = getattr(executor, "threads", None)
    cores = os.cpu_count() or 1
    if "cpu" in {d.split(":")[0] for d in grid.devices} and threads is not None and grid.execution.jobs * threads > cores:
        out.append(f"{grid.execution.jobs} jobs x {threads} torch threads = {grid.execution.jobs * threads} threads on "
                   f"{cores} cores: CPU runs will slow each other down; use --threads {max(1, cores // grid.execution.jobs)}")
    return out


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


def recover_latest(folder: Path, on_event: OnEvent = ignore) -> None:
    """A latest.pt that cannot be read (a disk error, a hand edit: writes themselves are atomic)
    would fail its run at every try: it is moved aside to latest.pt.corrupt and the run starts over."""
    path = folder / "latest.pt"
    if not path.exists():
        return
    try:
        checkpoint.load(path)
    except UsageError as exc:
        aside = path.with_name("latest.pt.corrupt")
        os.replace(path, aside)
        on_event(Notice(f"{exc}; moved to {aside} and the run starts over"))


def check_best_checkpoints(results_dir: str, run_ids: list[str], on_event: OnEvent = ignore) -> None:
    """Say which finished runs' best.pt cannot be read (a cut-short file is not a whole zip): their
    losses stand, but `rnnbench sample` cannot use them until `--force` retrains them."""
    for run_id in run_ids:
        best = results.checkpoints_dir(results_dir, run_id) / "best.pt"
        if best.exists() and not zipfile.is_zipfile(best):
            on_event(Notice(f"run {run_id} is finished but its {best} is unreadable: `rnnbench sample` cannot use "
                            "it; `rnnbench sweep --force` with the same settings trains it again"))


BIG_SWEEP_RUNS = 1000  # a sweep of more runs says how many, and how long they may take, first


def duration_text(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:,.0f} s"


def big_sweep_notice(grid: Grid, todo: list[RunConfig], results_dir: str) -> str:
    """What a sweep of more than BIG_SWEEP_RUNS runs is about to do, with the time it may take:
    from the time budget per run, else from the runs stored for the same hardware, else unknown."""
    jobs = grid.execution.jobs
    hardware = {cfg.hardware for cfg in todo}
    walls = [r["metrics"].get("wall_s") for r in results.iter_records(results_dir)[0]
             if r["status"] in results.FINISHED and results.hardware_of(r) in hardware]
    walls = sorted(w for w in walls if isinstance(w, (int, float)))
    size = f"{len(todo):,} runs to train, {jobs} at a time"
    resume = "Ctrl-C stops at once and the same command continues"
    if grid.train.time_budget_s is not None:
        per_run, basis, bound = grid.train.time_budget_s, "the time budget per run", "at most"
    elif walls:
        per_run, basis, bound = walls[len(walls) // 2], f"the median of the {len(walls)} runs stored for this hardware", "about"
    else:
        return f"{size}; no estimate of the time yet (no run of this hardware is stored). {resume}"
    total = per_run * len(todo) / jobs
    return f"{size}: {per_run:,.1f} s per run ({basis}) makes {bound} {duration_text(total)}. {resume}"


def plan(grid: Grid, data_dir: str | None = None, executor: Executor | None = None,
         on_event: OnEvent = ignore) -> tuple[Corpus, list[RunConfig]]:
    """Check everything that can fail for the whole sweep, then expand the grid for the hardware
    the executor trains on."""
    executor = executor or LocalExecutor()
    devices = tuple(executor.resolve_devices(grid.devices))
    corpus = load_corpus(grid.dataset, data_dir, on_event)
    Layout.of(grid.train).check_fits(corpus.name, corpus.n_bytes)
    return corpus, grid.expand(corpus.sha256, devices, dataset_name=corpus.name,
                               hardware={device: executor.hardware(device) for device in devices})


def store(results_dir: str, done: Finished, folder: Path | None, executor_name: str, env: dict,
          replaces: str | None = None) -> None:
    """Write a finished run's record (and the best checkpoint it brought back) atomically, with
    what the driver knows of how it ran (`env`); `replaces`: the id of a stored record of the same
    run under another id (schema 1), removed once this one is written."""
    record = done.record
    record["env"].setdefault("executor", executor_name)
    record["env"].update(env)
    results.write_run(results_dir, record, replaces)
    if folder is not None and done.best_checkpoint is not None:
        write_atomic(folder / "best.pt", done.best_checkpoint)
    if folder is not None and record["status"] in results.FINISHED:
        (folder / "latest.pt").unlink(missing_ok=True)  # finished: only best.pt is kept


def run_sweep(grid: Grid, results_dir: str | Path | None = None, data_dir: str | None = None, force: bool = False,
              on_event: OnEvent = ignore, save_checkpoints: bool = True, executor: Executor | None = None,
              shard: Shard | None = None, stopper: Stopper | None = None) -> list[dict]:
    """Run every run of the grid (or of its `shard`) not yet finished in `results_dir`; return their records.

    `executor` decides where runs train (LocalExecutor by default; see rnnbench.sweep.ray_executor).
    This process stays the only writer of `results_dir`: each record, and its best checkpoint,
    is written here atomically as its run finishes. With save_checkpoints, each run keeps best.pt
    (for sampling) and, while unfinished, latest.pt under RESULTS_DIR/checkpoints/RUN_ID/; an
    interrupted local run continues from latest.pt. When `stopper` (by default: the grid's
    stop_after_s) says stop, the runs in flight save their state and StopRequested is raised once
    every finished run is stored. `results_dir` None: files.default_results_dir()."""
    results_dir = str(results_dir) if results_dir is not None else str(default_results_dir())
    check_writable(results_dir, "results folder")  # before any work, not after the first run
    remove_stray_temporaries(results_dir)  # left by writes that a kill interrupted
    executor = executor or local_executor(grid.execution)
    stopper = stopper or Stopper(grid.execution.stop_after_s)
    sharing = DeviceSharing()
    listeners = [on_event]
    if grid.execution.tensorboard:
        check_writable(grid.execution.tensorboard, "TensorBoard folder")

    def tell(event) -> None:  # what the caller (and the TensorBoard log) hear
        for listener in listeners:
            listener(event)

    def emit(event) -> None:  # what the executors report, counted for device sharing too
        sharing.observe(event)
        tell(event)

    on_event = tell
    with executor, contextlib.ExitStack() as stack:
        if grid.execution.tensorboard:
            from rnnbench.sweep.tensorboard import TensorBoardLog

            listeners.append(stack.enter_context(TensorBoardLog(grid.execution.tensorboard)).handle)
        corpus, runs = plan(grid, data_dir, executor, on_event)
        grid_runs = len(runs)
        if shard is not None:
            runs = shard.select(runs)
        stored = results.stored_identities(results_dir)  # identity -> the id it is stored under
        identities = {cfg.run_id: results.identity("sweep", cfg.as_dict(), cfg.hardware) for cfg in runs}
        todo = [cfg for cfg in runs if force or identities[cfg.run_id] not in stored]
        folders = {cfg.run_id: results.checkpoints_dir(results_dir, cfg.run_id) if save_checkpoints else None for cfg in todo}
        on_event(SweepPlanned(corpus.name, corpus.n_bytes, corpus.vocab_size, grid_runs, len(runs),
                              len(runs) - len(todo), executor.summary(), str(shard) if shard else None))
        for notice in machine_notices(grid, executor):
            on_event(Notice(notice))
        claims = stack.enter_context(Claims(results_dir))  # after the checks: bad input leaves no folder
        if len(todo) > BIG_SWEEP_RUNS:
            on_event(Notice(big_sweep_notice(grid, todo, results_dir)))
        if save_checkpoints:
            check_best_checkpoints(results_dir, [stored[identities[c.run_id]] for c in runs
                                                 if identities[c.run_id] in stored and not force], on_event)

        def claim(cfg: RunConfig) -> bool:
            """This sweep's to train: no other sweep on the folder holds it or finished it meanwhile."""
            if not claims.take(cfg.run_id):
                on_event(RunSkipped(cfg, f"claimed by another sweep ({claims.holder(cfg.run_id)})"))
                return False
            if not force and results.finished(results_dir, cfg.run_id):
                claims.release(cfg.run_id)
                on_event(RunSkipped(cfg, "finished by another sweep meanwhile"))
                return False
            if folders[cfg.run_id] is not None and force:
                (folders[cfg.run_id] / "latest.pt").unlink(missing_ok=True)  # --force starts over, once claimed
            elif folders[cfg.run_id] is not None:
                recover_latest(folders[cfg.run_id], on_event)
            return True

        for finished in executor.execute(todo, corpus, folders, emit, grid.execution, stopper, claim):
            env = {"jobs": grid.execution.jobs, "runs_sharing_device": sharing.finished(finished.cfg.run_id)}
            store(results_dir, finished, folders[finished.cfg.run_id], executor.name, env,
                  stored.get(identities[finished.cfg.run_id]))
            claims.release(finished.cfg.run_id)
            on_event(RunFinished(finished.cfg, finished.record))
    by_identity = {results.identity_of(r): r for r in results.iter_records(results_dir)[0]}
    return [by_identity[identities[cfg.run_id]] for cfg in runs if identities[cfg.run_id] in by_identity]
