"""`--jobs N`: a sweep's runs trained side by side in N worker processes on this machine.

    >>> from rnnbench.jobs import ProcessExecutor
    >>> from rnnbench.sweep import run_sweep
    >>> run_sweep(grid, executor=ProcessExecutor(jobs=2))            # doctest: +SKIP

Processes, not threads: a run's Python loop holds the GIL, so threads in one process add little
(measured on an H200: 8 threads on 8 streams gave 3x one run's steps, 8 processes 5.4x). Workers are
spawned (never forked: a forked torch with live OpenMP or CUDA state can hang) and each trains one
run at a time, as `rnnbench.sweep.run_one` does in the driver for `--jobs 1`. On a CPU the torch
threads are split between the workers, so that N runs do not spin against each other; on a GPU
the runs share the device.

The driver stays the only writer of the run records: a worker sends its progress and its finished
record back, and the driver stores it. Each worker writes only its own run's checkpoint folder
(latest.pt, best.pt), so an interrupted run resumes from its last evaluation as with one job.
Ctrl-C in the driver stops every worker at once; a worker that dies (killed, out of memory) has its
run recorded as failed, and a new worker takes the next run.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import time
from pathlib import Path
from typing import Iterator

from rnnbench.config import Execution, RunConfig
from rnnbench.data import Corpus
from rnnbench.devices import resolve_devices
from rnnbench.errors import StopRequested
from rnnbench.events import OnEvent, RunProgress, RunStarted
from rnnbench.results import utc_now

PROGRESS_EVERY_S = 0.5  # how often a worker reports a run's progress
POLL_S = 0.5  # how long the driver waits for a message before checking that its workers live


def _work(tasks, messages, corpus_parts: tuple, threads: int, cuda_graphs: bool, stop) -> None:
    """A worker process: train the runs it is given until it is given None. Once `stop` (an event
    the driver sets) is set, the run in progress saves its state and stops, and no other starts."""
    import torch

    from rnnbench.sweep import run_one

    # Ctrl-C and SIGTERM are the driver's to handle: it kills us, or sets `stop`.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    torch.set_num_threads(threads)
    corpus = Corpus(*corpus_parts)
    while (task := tasks.get()) is not None:
        cfg, folder = task
        if stop.is_set():
            messages.put(("stopped", cfg.run_id, None))
            continue
        messages.put(("started", cfg.run_id, os.getpid()))
        last = 0.0

        def on_progress(p, run_id=cfg.run_id) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= PROGRESS_EVERY_S or p.step == p.planned_steps:
                last = now
                messages.put(("progress", run_id, p))

        try:
            record = run_one(cfg, corpus, on_progress, folder, cuda_graphs, stop.is_set)
        except StopRequested:
            messages.put(("stopped", cfg.run_id, os.getpid()))
            continue
        messages.put(("done", cfg.run_id, record))


class ProcessExecutor:
    """Trains up to `jobs` runs at once, each in a worker process; see the module's docstring."""

    name = "local"

    def __init__(self, jobs: int, threads_per_job: int | None = None):
        import torch

        self.jobs = jobs
        # The driver's thread count is torch's default (the cores) unless the user set one.
        self.threads = threads_per_job or max(1, torch.get_num_threads() // jobs)
        self.context = multiprocessing.get_context("spawn")
        self.workers: list = []
        self.queues: list = []

    def __enter__(self) -> ProcessExecutor:
        return self

    def __exit__(self, *exc) -> None:
        # Interrupted or done: no worker outlives the sweep. Killed outright (they ignore SIGTERM):
        # every file a worker writes is written atomically, so a kill leaves its checkpoints whole.
        for worker in self.workers:
            if worker.is_alive():
                worker.kill()
        for worker in self.workers:
            worker.join(timeout=10)
        for q in self.queues:  # what is still queued for dead workers must not hold up our exit
            q.cancel_join_thread()
        self.workers, self.queues = [], []

    def resolve_devices(self, requested: tuple[str, ...]) -> list[str]:
        return resolve_devices(requested)

    def summary(self) -> str:
        return (f"local executor, {self.jobs} runs at a time in worker processes, "
                f"{self.threads} torch thread{'s' if self.threads != 1 else ''} each on a CPU")

    def execute(self, todo: list[RunConfig], corpus: Corpus, checkpoint_dirs: dict[str, Path | None],
                on_event: OnEvent, execution: Execution = Execution(), stopper=None) -> Iterator:
        from rnnbench.sweep import Finished, Stopper, run_record

        if not todo:
            return
        stopper = stopper or Stopper()
        tasks, messages, stop = self.context.Queue(), self.context.Queue(), self.context.Event()
        self.queues = [tasks, messages]
        for cfg in todo:
            tasks.put((cfg, checkpoint_dirs[cfg.run_id]))
        args = (tasks, messages, (corpus.name, corpus.data, corpus.source), self.threads, execution.cuda_graphs, stop)

        def start_worker() -> None:
            tasks.put(None)  # one stop sign per worker, behind every run
            worker = self.context.Process(target=_work, args=args, daemon=True)
            worker.start()
            self.workers.append(worker)

        for _ in range(min(self.jobs, len(todo))):
            start_worker()
        by_id = {cfg.run_id: cfg for cfg in todo}
        training: dict[int, tuple[str, str]] = {}  # worker pid -> (run id, started at)
        left = dict(by_id)  # runs not yet handed back

        def lost(run_id: str, started: str, why: str):
            del left[run_id]
            return Finished(by_id[run_id], run_record(by_id[run_id], "failed", why, started, {"executor": self.name}))

        stopped = 0
        while left:
            if stopper() and not stop.is_set():
                stop.set()  # every worker saves its run's state after the step in progress
            try:
                kind, run_id, payload = messages.get(timeout=POLL_S)
            except queue.Empty:
                for worker in [w for w in self.workers if not w.is_alive() and w.pid in training]:
                    run_id, started = training.pop(worker.pid)
                    yield lost(run_id, started, f"worker process died (exit code {worker.exitcode}) while training this run")
                    start_worker()  # its place is taken, with a stop sign of its own
                if not any(w.is_alive() for w in self.workers):  # e.g. every worker failed to start
                    codes = sorted({w.exitcode for w in self.workers})
                    for run_id in list(left):
                        yield lost(run_id, utc_now(), f"no worker process left to train it (exit codes {codes})")
                continue
            if kind == "stopped":
                training = {pid: r for pid, r in training.items() if r[0] != run_id}
                del left[run_id]
                stopped += 1
            elif kind == "started":
                training[payload] = (run_id, utc_now())
                on_event(RunStarted(by_id[run_id]))
            elif kind == "progress":
                on_event(RunProgress(by_id[run_id], payload))
            else:
                training = {pid: r for pid, r in training.items() if r[0] != run_id}
                del left[run_id]
                yield Finished(by_id[run_id], payload)
        if stopped:
            raise StopRequested(f"{stopped} run(s) stopped before they finished")
