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
import traceback
from pathlib import Path
from typing import Callable

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from rnnbench import results
from rnnbench.config import Grid, RunConfig
from rnnbench.data import Corpus, load_corpus
from rnnbench.devices import describe, resolve_devices
from rnnbench.train import Progress as TrainProgress
from rnnbench.train import train


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def run_one(cfg: RunConfig, corpus: Corpus, on_progress: Callable[[TrainProgress], None] | None = None,
            checkpoint_dir: Path | None = None) -> dict:
    """Train one run and return its record; an exception becomes the record's status and error."""
    started = _now()
    error = None
    metrics: dict = {}
    curve: list = []
    try:
        result = train(cfg, corpus, on_progress, checkpoint_dir)
        status, metrics, curve = result.status, result.metrics, result.curve
    except torch.cuda.OutOfMemoryError as exc:
        status, error = "oom", f"OutOfMemoryError: {str(exc).splitlines()[0]}"
    except Exception as exc:  # one run's failure must not end the sweep
        status = "failed"
        where = traceback.extract_tb(exc.__traceback__)[-1]
        error = f"{exc.__class__.__name__}: {exc} (at {where.filename.rsplit('/', 1)[-1]}:{where.lineno})"
    finally:
        if torch.device(cfg.device).type == "cuda":
            torch.cuda.empty_cache()
    return {
        "schema_version": results.SCHEMA_VERSION,
        "run_id": cfg.run_id,
        "kind": "sweep",
        "status": status,
        "error": error,
        "started_at": started,
        "finished_at": _now(),
        "config": cfg.as_dict(),
        "env": {**describe(cfg.device), "corpus_source": corpus.source},
        "metrics": metrics,
        "curve": curve,
    }


def plan(grid: Grid, data_dir: str | None = None, show_progress: bool = True) -> tuple[Corpus, list[RunConfig]]:
    """Check everything that can fail for the whole sweep, then expand the grid."""
    devices = tuple(resolve_devices(grid.devices))
    corpus = load_corpus(grid.dataset, data_dir, show_progress=show_progress)
    corpus.check_fits(grid.batch_size, grid.seq_len)
    return corpus, grid.expand(corpus.sha256, devices, dataset_name=corpus.name)


def checkpoint_dir(results_dir: str | Path, run_id: str) -> Path:
    return Path(results_dir) / "checkpoints" / run_id


def run_sweep(grid: Grid, results_dir: str = "results", data_dir: str | None = None, force: bool = False,
              console: Console | None = None, show_progress: bool = True, save_checkpoints: bool = True) -> list[dict]:
    """Run every run of the grid not yet finished in `results_dir`; return the grid's records.

    With save_checkpoints, each run keeps best.pt (for sampling) and, while unfinished, latest.pt
    under RESULTS_DIR/checkpoints/RUN_ID/; an interrupted run continues from latest.pt."""
    console = console or Console(stderr=True)
    corpus, runs = plan(grid, data_dir, show_progress)
    done = set() if force else results.finished_run_ids(results_dir)
    todo = [cfg for cfg in runs if cfg.run_id not in done]
    console.print(f"[bold]{len(runs)} runs[/] on '{corpus.name}' ({corpus.n_bytes:,} bytes, vocabulary "
                  f"{corpus.vocab_size}): {len(runs) - len(todo)} already finished, {len(todo)} to run.")
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, disable=not show_progress,
    ) as progress:
        overall = progress.add_task("sweep", total=len(todo), detail="")
        for cfg in todo:
            current = progress.add_task(f"  {cfg.label}", total=None, detail="")

            def on_progress(p: TrainProgress, task=current) -> None:
                progress.update(task, completed=p.step, total=p.planned_steps,
                                detail=f"loss {p.train_loss_nats:.3f}  {p.chars_per_s:,.0f} chars/s")

            folder = checkpoint_dir(results_dir, cfg.run_id) if save_checkpoints else None
            if force and folder is not None:
                (folder / "latest.pt").unlink(missing_ok=True)  # --force starts over
            record = run_one(cfg, corpus, on_progress, folder)
            results.write_run(results_dir, record)
            if folder is not None and record["status"] in results.FINISHED:
                (folder / "latest.pt").unlink(missing_ok=True)  # finished: only best.pt is kept
            progress.remove_task(current)
            progress.advance(overall)
            m = record["metrics"]
            outcome = (f"test {m['test_loss_nats']:.3f} nats" if record["status"] == "ok"
                       else f"[red]{record['status']}[/] {record['error'] or ''}")
            progress.console.print(f"{cfg.run_id}  {cfg.label}: {outcome}")
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
