"""Run a grid: expand it, skip finished runs, train the rest, store each as it finishes.

    >>> from rnnbench.config import load_preset
    >>> from rnnbench.sweep import run_sweep
    >>> records = run_sweep(load_preset("smoke"), results_dir="results")   # doctest: +SKIP

Every check that can fail for the whole sweep (devices, corpus, sizes) runs before any training.
A failure inside one run (a bad config, CUDA out of memory, any exception) is stored as that run's
status and error, and the sweep goes on. Ctrl-C stops at once: runs already stored stay, the one in
progress is not stored, and the same command continues where it stopped.
"""

from __future__ import annotations

import datetime as dt
import re
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol

import torch
from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.table import Table

from rnnbench import results
from rnnbench.config import Grid, RunConfig
from rnnbench.data import Corpus, load_corpus
from rnnbench.devices import describe, resolve_devices
from rnnbench.errors import UsageError
from rnnbench.files import write_atomic
from rnnbench.train import Progress as TrainProgress
from rnnbench.train import train


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def make_record(cfg: RunConfig, status: str, error: str | None, started_at: str, env: dict,
                metrics: dict | None = None, curve: list | None = None) -> dict:
    """A run's stored record (see rnnbench.results for the layout)."""
    return {
        "schema_version": results.SCHEMA_VERSION,
        "run_id": cfg.run_id,
        "kind": "sweep",
        "status": status,
        "error": error,
        "started_at": started_at,
        "finished_at": utc_now(),
        "config": cfg.as_dict(),
        "env": env,
        "metrics": metrics or {},
        "curve": curve or [],
    }


def describe_error(exc: BaseException) -> str:
    """'Type: message (at file:line)', the innermost frame being where it was raised."""
    where = traceback.extract_tb(exc.__traceback__)
    at = f" (at {where[-1].filename.rsplit('/', 1)[-1]}:{where[-1].lineno})" if where else ""
    return f"{exc.__class__.__name__}: {exc}{at}"


def run_one(cfg: RunConfig, corpus: Corpus, on_progress: Callable[[TrainProgress], None] | None = None,
            checkpoint_dir: Path | None = None) -> dict:
    """Train one run and return its record; an exception becomes the record's status and error."""
    started = utc_now()
    error = None
    metrics: dict = {}
    curve: list = []
    try:
        result = train(cfg, corpus, on_progress, checkpoint_dir)
        status, metrics, curve = result.status, result.metrics, result.curve
    except torch.cuda.OutOfMemoryError as exc:
        status, error = "oom", f"OutOfMemoryError: {str(exc).splitlines()[0]}"
    except Exception as exc:  # one run's failure must not end the sweep
        status, error = "failed", describe_error(exc)
    finally:
        if torch.device(cfg.device).type == "cuda":
            torch.cuda.empty_cache()
    env = {**describe(cfg.device), "corpus_source": corpus.source}
    return make_record(cfg, status, error, started, env, metrics, curve)


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


@dataclass
class Finished:
    """What an executor hands back for one run: its record and, where the run trained away from
    the results directory, the bytes of its best checkpoint for the driver to store."""

    cfg: RunConfig
    record: dict
    best_checkpoint: bytes | None = None


class Executor(Protocol):
    """Where a sweep's runs train. run_sweep enters it (connect, start), resolves the grid's
    devices through it, then stores each Finished that execute() yields, in the order they come;
    execute() reports a run's start and training progress through the two callbacks, which
    drive the display."""

    name: str  # stored as the runs' env.executor

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc) -> None: ...

    def resolve_devices(self, requested: tuple[str, ...]) -> list[str]: ...

    def describe(self) -> str: ...

    def execute(self, todo: list[RunConfig], corpus: Corpus, checkpoint_dirs: dict[str, Path | None],
                on_start: Callable[[RunConfig], None],
                on_progress: Callable[[RunConfig, TrainProgress], None]) -> Iterator[Finished]: ...


class LocalExecutor:
    """Runs one run at a time in this process, on this machine's devices."""

    name = "local"

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def resolve_devices(self, requested: tuple[str, ...]) -> list[str]:
        return resolve_devices(requested)

    def describe(self) -> str:
        return "local executor, one run at a time"

    def execute(self, todo: list[RunConfig], corpus: Corpus, checkpoint_dirs: dict[str, Path | None],
                on_start: Callable[[RunConfig], None],
                on_progress: Callable[[RunConfig, TrainProgress], None]) -> Iterator[Finished]:
        for cfg in todo:
            on_start(cfg)
            record = run_one(cfg, corpus, lambda p, cfg=cfg: on_progress(cfg, p), checkpoint_dirs[cfg.run_id])
            yield Finished(cfg, record)


def plan(grid: Grid, data_dir: str | None = None, show_progress: bool = True,
         devices_of: Callable[[tuple[str, ...]], list[str]] = resolve_devices) -> tuple[Corpus, list[RunConfig]]:
    """Check everything that can fail for the whole sweep, then expand the grid."""
    devices = tuple(devices_of(grid.devices))
    corpus = load_corpus(grid.dataset, data_dir, show_progress=show_progress)
    corpus.check_fits(grid.batch_size, grid.seq_len)
    return corpus, grid.expand(corpus.sha256, devices, dataset_name=corpus.name)


def run_sweep(grid: Grid, results_dir: str = "results", data_dir: str | None = None, force: bool = False,
              console: Console | None = None, show_progress: bool = True, save_checkpoints: bool = True,
              executor: Executor | None = None, shard: Shard | None = None) -> list[dict]:
    """Run every run of the grid (or of its `shard`) not yet finished in `results_dir`; return their records.

    `executor` decides where runs train (LocalExecutor by default; see rnnbench.ray_executor).
    This process stays the only writer of `results_dir`: each record, and its best checkpoint,
    is written here atomically as its run finishes. With save_checkpoints, each run keeps best.pt
    (for sampling) and, while unfinished, latest.pt under RESULTS_DIR/checkpoints/RUN_ID/; an
    interrupted local run continues from latest.pt."""
    console = console or Console(stderr=True)
    executor = executor or LocalExecutor()
    with executor:
        corpus, runs = plan(grid, data_dir, show_progress, executor.resolve_devices)
        grid_size = len(runs)
        if shard is not None:
            runs = shard.select(runs)
        done = set() if force else results.finished_run_ids(results_dir)
        todo = [cfg for cfg in runs if cfg.run_id not in done]
        folders = {cfg.run_id: results.checkpoints_dir(results_dir, cfg.run_id) if save_checkpoints else None for cfg in todo}
        if force:
            for folder in filter(None, folders.values()):
                (folder / "latest.pt").unlink(missing_ok=True)  # --force starts over
        which = f"shard {shard}: {len(runs)} of {grid_size} runs" if shard else f"{len(runs)} runs"
        console.print(f"[bold]{which}[/] on '{corpus.name}' ({corpus.n_bytes:,} bytes, vocabulary "
                      f"{corpus.vocab_size}): {len(runs) - len(todo)} already finished, {len(todo)} to run "
                      f"({executor.describe()}).", highlight=False)
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=console, disable=not show_progress,
        ) as progress:
            overall = progress.add_task("sweep", total=len(todo), detail="")
            rows: dict[str, TaskID] = {}

            def on_start(cfg: RunConfig) -> None:
                rows[cfg.run_id] = progress.add_task(f"  {cfg.label}", total=None, detail="")

            def on_progress(cfg: RunConfig, p: TrainProgress) -> None:
                if cfg.run_id not in rows:
                    on_start(cfg)
                progress.update(rows[cfg.run_id], completed=p.step, total=p.planned_steps,
                                detail=f"loss {p.train_loss_nats:.3f}  {p.chars_per_s:,.0f} chars/s")

            for done_run in executor.execute(todo, corpus, folders, on_start, on_progress):
                cfg, record, folder = done_run.cfg, done_run.record, folders[done_run.cfg.run_id]
                record["env"].setdefault("executor", executor.name)
                results.write_run(results_dir, record)
                if folder is not None and done_run.best_checkpoint is not None:
                    write_atomic(folder / "best.pt", done_run.best_checkpoint)
                if folder is not None and record["status"] in results.FINISHED:
                    (folder / "latest.pt").unlink(missing_ok=True)  # finished: only best.pt is kept
                if cfg.run_id in rows:
                    progress.remove_task(rows.pop(cfg.run_id))
                progress.advance(overall)
                m = record["metrics"]
                outcome = (f"test {m['test_loss_nats']:.3f} nats" if record["status"] == "ok"
                           else f"[red]{record['status']}[/] {escape(record['error'] or '')}")
                progress.console.print(f"{cfg.run_id}  {cfg.label}: {outcome}", highlight=False)
    by_id = {r["run_id"]: r for r in results.iter_records(results_dir)[0]}
    return [by_id[cfg.run_id] for cfg in runs if cfg.run_id in by_id]


def summary_table(records: list[dict], title: str = "sweep") -> Table:
    """The runs of a sweep as a rich table, one row per run."""
    table = Table(title=title)
    for name in ("run", "status", "dataset", "cell", "layers", "size", "hidden", "params", "device", "seed",
                 "test nats", "val nats", "chars/s (IQR)", "step ms"):
        table.add_column(name, justify="left" if name in ("run", "status", "dataset", "cell", "device") else "right")

    def num(value, spec):
        return "-" if value is None else format(value, spec)

    for r in records:
        c, m = r["config"], r["metrics"]
        rate = "-" if m.get("train_chars_per_s") is None else f"{m['train_chars_per_s']:,.0f} ({m['train_chars_per_s_iqr']:,.0f})"
        table.add_row(
            r["run_id"], r["status"] if r["status"] == "ok" else f"[red]{r['status']}[/]",
            c["dataset"], c["cell"], str(c["num_layers"]), str(c["size"]), num(m.get("hidden_size"), "d"),
            num(m.get("n_params"), ","), c["device"], str(c["seed"]),
            num(m.get("test_loss_nats"), ".3f"), num(m.get("val_loss_nats"), ".3f"), rate,
            num(m.get("step_ms_median"), ".1f"),
        )
    return table
