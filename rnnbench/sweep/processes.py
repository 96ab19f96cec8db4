"""`--jobs N`: a sweep's runs trained side by side in N worker processes on this machine.

    >>> import tempfile
    >>> from rnnbench.config import Grid
    >>> from rnnbench.sweep import run_sweep
    >>> from rnnbench.sweep.processes import ProcessExecutor
    >>> grid = Grid.from_settings(dataset="synthetic", cells=("gru",), layers=(1,), sizes=(16,),
    ...                           size_mode="hidden", devices=("cpu",), batch_size=8, seq_len=16,
    ...                           max_steps=10, eval_every_steps=5)
    >>> records = run_sweep(grid.replace(cells=("gru", "rnn")), tempfile.mkdtemp(), executor=ProcessExecutor(jobs=2))
    >>> sorted(r.status for r in records)
    ['ok', 'ok']

Processes, not threads: a run's Python loop holds the GIL, so threads in one process add little
(measured on an H200: 8 threads on 8 streams gave 3x one run's steps, 8 processes 5.4x). Workers are
spawned (never forked: a forked torch with live OpenMP or CUDA state can hang) and each trains one
run at a time, as `rnnbench.sweep.runs.run_one` does in the driver for `--jobs 1`. On a CPU the torch
threads are split between the workers, so that N runs do not spin against each other; on a GPU
the runs share the device.

The driver stays the only writer of the run records: it hands each worker one run at a time over
a pipe of that worker's own, and the worker sends its progress and its finished record back on it.
Nothing is shared between workers, not even a lock: a worker killed at any moment (by the kernel's
out-of-memory killer, say) breaks only its own pipe, never the others'. Each worker writes only its
own run's checkpoint folder (latest.pt, best.pt, through core.checkpoint.RunFiles), so an interrupted
run resumes from its last evaluation as with one job.
Ctrl-C in the driver stops every worker at once; a worker that dies (killed, out of memory) has its
run recorded as failed, and a new worker takes the next run.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Iterator
from multiprocessing.connection import wait
from pathlib import Path

from rnnbench.config import Execution, RunConfig
from rnnbench.core.data import Corpus
from rnnbench.core.devices import hardware, resolve_devices, torch_threads
from rnnbench.errors import StopRequested, StorageError
from rnnbench.events import OnEvent, RunProgress, RunStarted, throttled
from rnnbench.results import utc_now
from rnnbench.sweep.runs import Finished, Stopper, run_one, run_record

POLL_S = 0.5  # how long the driver waits for a message before checking that its workers live


def _work(conn, corpus_parts: tuple, threads: int, cuda_graphs: bool, stop) -> None:
    """A worker process: train each run the driver sends until it sends None. Once `stop` (a flag
    the driver sets) is set, the run in progress saves its state and stops, and no other starts."""
    # Ctrl-C and SIGTERM are the driver's to handle: it kills us, or sets `stop`.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with torch_threads(threads):
        _serve(conn, Corpus(*corpus_parts), cuda_graphs, lambda: bool(stop.value))


def _serve(conn, corpus: Corpus, cuda_graphs: bool, stopping) -> None:
    while (task := conn.recv()) is not None:
        cfg, folder = task
        if stopping():
            conn.send(("stopped", cfg.run_id, None))
            continue
        conn.send(("started", cfg.run_id, None))
        on_progress = throttled(lambda p, run_id=cfg.run_id: conn.send(("progress", run_id, p)))
        try:
            record = run_one(cfg, corpus, on_progress, folder, cuda_graphs, stopping)
        except StopRequested:
            conn.send(("stopped", cfg.run_id, None))
            continue
        except StorageError as exc:  # the driver stops the sweep
            conn.send(("storage", cfg.run_id, str(exc)))
            continue
        conn.send(("done", cfg.run_id, record))


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
        self.workers = []

    def resolve_devices(self, requested: tuple[str, ...]) -> list[str]:
        return resolve_devices(requested)

    def hardware(self, device: str):
        return hardware(device, self.threads)  # a worker trains with its share of the threads

    def summary(self) -> str:
        return (
            f"local executor, {self.jobs} runs at a time in worker processes, "
            f"{self.threads} torch thread{'s' if self.threads != 1 else ''} each on a CPU"
        )

    def execute(
        self,
        todo: list[RunConfig],
        corpus: Corpus,
        checkpoint_dirs: dict[str, Path | None],
        on_event: OnEvent,
        execution: Execution = Execution(),
        stopper=None,
        claim=lambda cfg: True,
    ) -> Iterator:
        stopper = stopper or Stopper()
        pool = _Pool(self, todo, corpus, checkpoint_dirs, execution, claim)
        stopped = 0
        for _ in range(min(self.jobs, len(todo))):
            pool.start_worker()
        while pool.busy:
            if stopper() and not pool.stop.value:
                pool.stop.value = 1  # every worker saves its run's state after the step in progress
            for conn in wait(list(pool.busy), timeout=POLL_S):
                try:
                    kind, run_id, payload = conn.recv()
                except (EOFError, OSError):  # the worker died
                    lost = pool.lost(conn)
                    if lost is not None:
                        yield lost
                    continue
                cfg = pool.by_id[run_id]
                if kind == "started":
                    on_event(RunStarted(cfg))
                elif kind == "progress":
                    on_event(RunProgress(cfg, payload))
                elif kind == "storage":
                    raise StorageError(payload)  # __exit__ kills the workers
                else:  # done or stopped: the worker is idle again
                    stopped += kind == "stopped"
                    pool.hand_out(conn)
                    if kind == "done":
                        yield Finished(cfg, payload)
        if stopped:
            raise StopRequested(f"{stopped} run(s) stopped before they finished")


class _Pool:
    """The worker processes of one ProcessExecutor.execute: which worker trains which run, and the
    runs still waiting for a worker."""

    def __init__(self, executor: ProcessExecutor, todo, corpus: Corpus, checkpoint_dirs, execution, claim):
        self.executor, self.corpus, self.checkpoint_dirs = executor, corpus, checkpoint_dirs
        self.execution, self.claim = execution, claim
        self.stop = executor.context.RawValue("b", 0)  # lock-free: a worker killed while reading it blocks nobody
        self.waiting = list(todo)
        self.by_id = {cfg.run_id: cfg for cfg in todo}
        self.busy: dict = {}  # connection -> [worker, run id or None, started at]

    def next_run(self) -> RunConfig | None:
        while self.waiting:
            cfg = self.waiting.pop(0)
            if self.claim(cfg):
                return cfg
        return None

    def hand_out(self, conn) -> None:
        """The worker on `conn` is idle: give it the next run this sweep claims, or tell it to finish."""
        cfg = self.next_run()
        conn.send(None if cfg is None else (cfg, self.checkpoint_dirs[cfg.run_id]))
        self.busy[conn][1:] = [cfg.run_id if cfg else None, utc_now()]

    def start_worker(self) -> None:
        ex, corpus = self.executor, self.corpus
        ours, theirs = ex.context.Pipe()
        worker = ex.context.Process(
            target=_work,
            daemon=True,
            args=(theirs, (corpus.name, corpus.data, corpus.source), ex.threads, self.execution.cuda_graphs, self.stop),
        )
        worker.start()
        theirs.close()  # so that a worker's death reads as the end of its pipe
        ex.workers.append(worker)
        self.busy[ours] = [worker, None, None]
        self.hand_out(ours)

    def lost(self, conn) -> Finished | None:
        """The worker on `conn` died: its run's failure (if it had one), and another worker in its place."""
        worker, run_id, started = self.busy.pop(conn)
        worker.join()
        if self.waiting:
            self.start_worker()
        if run_id is None:
            return None
        why = f"worker process died (exit code {worker.exitcode}) while training this run"
        cfg = self.by_id[run_id]
        return Finished(cfg, run_record(cfg, "failed", why, started, {"executor": self.executor.name}))
