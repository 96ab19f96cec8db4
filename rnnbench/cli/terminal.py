"""Everything rnnbench draws on a terminal: progress displays, tables and one-line messages.

    >>> import tempfile
    >>> from rnnbench.cli.terminal import SweepDisplay
    >>> from rnnbench.config import Grid
    >>> from rnnbench.sweep import run_sweep
    >>> grid = Grid.from_settings(dataset="synthetic", cells=("gru",), layers=(1,), sizes=(16,),
    ...                           size_mode="hidden", devices=("cpu",), batch_size=8, seq_len=16,
    ...                           max_steps=10, eval_every_steps=5)
    >>> with SweepDisplay(enabled=False) as display:                # enabled=True: live progress bars
    ...     records = run_sweep(grid, tempfile.mkdtemp(), on_event=display.handle)
    >>> len(records)
    1

The library reports long work as events (rnnbench.events); the displays here turn them into rich
progress bars and lines on stderr. Tables of results go to stdout, messages and progress to
stderr. This is the only module besides the CLI that knows rich; cli/commands.py parses, calls the
library and hands what comes back to the functions here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from rnnbench.events import (
    CpuDtypes,
    DownloadEnded,
    DownloadProgress,
    DownloadStarted,
    Event,
    KernelMeasured,
    Notice,
    RowMeasured,
    RunFinished,
    RunProgress,
    RunSkipped,
    RunStarted,
    SweepPlanned,
)

if TYPE_CHECKING:
    from rnnbench.results import Record

# Piped output gets wide tables (160 columns, or $COLUMNS) rather than rich's 80-column default
# for non-terminals.
PIPED_WIDTH = int(os.environ.get("COLUMNS", "0") or 0) or 160
stderr = Console(stderr=True, width=None if sys.stderr.isatty() else PIPED_WIDTH)
stdout = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)


# --- one-line messages ----------------------------------------------------------------------------


def error(message: str) -> None:
    stderr.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def note(message: str) -> None:
    stderr.print(f"[yellow]note:[/] {escape(message)}", highlight=False, soft_wrap=True)


def info(message: str, out: Console = stderr) -> None:
    """A plain line, printed as it is (no markup, no highlighting)."""
    out.print(escape(message), highlight=False, soft_wrap=True)


def skipped(problems: Iterable[str]) -> None:
    """Files in a results folder that are not run records: named, and left alone."""
    for problem in problems:
        stderr.print(f"[yellow]warning:[/] skipped {escape(problem)}", highlight=False, soft_wrap=True)


def interrupted(runs_dir: str, unfinished: str) -> None:
    stderr.print(
        f"[yellow]interrupted:[/] finished runs are stored in {escape(runs_dir)}; {escape(unfinished)}. "
        "Run the same command again to continue."
    )


def stopped(runs_dir: str, with_checkpoints: bool) -> None:
    how = (
        "the runs in flight saved their state and continue from it"
        if with_checkpoints
        else "the runs in flight start over (no checkpoints were kept)"
    )
    stderr.print(
        f"[yellow]stopped:[/] finished runs are stored in {escape(runs_dir)}; {how}. "
        f"Run the same command again to resume (exit code 75)."
    )


def merge_outcome(replaced: list[str], conflicts: list[str], summary: str, into: str) -> None:
    for line in replaced:
        info(f"replaced: {line}")
    for line in conflicts:
        stderr.print(f"[red]conflict:[/] {escape(line)}", highlight=False, soft_wrap=True)
    info(summary, stdout)
    if conflicts:
        info(
            f"{len(conflicts)} run id(s) have two different results and were left as they were in {into}: "
            "delete the unwanted SOURCE/runs/RUN_ID.json and merge again."
        )


def status(message: str):
    """A spinner with a message while something slow runs: `with terminal.status("reading"): ...`."""
    return stderr.status(escape(message))


# --- progress displays ----------------------------------------------------------------------------


class DownloadBar:
    """A transient bar for a corpus download, from DownloadStarted to DownloadEnded."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.progress = None
        self.task = None

    def handle(self, event: Event) -> None:
        from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

        if isinstance(event, DownloadStarted):
            self.progress = Progress(
                *Progress.get_default_columns(),
                DownloadColumn(),
                TransferSpeedColumn(),
                console=stderr,
                disable=not self.enabled,
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task(f"downloading {event.url.rsplit('/', 1)[-1]}", total=event.total_bytes)
        elif isinstance(event, DownloadProgress) and self.progress is not None:
            self.progress.update(self.task, completed=event.bytes_done)
        elif isinstance(event, DownloadEnded) and self.progress is not None:
            self.progress.stop()
            self.progress = None


class SweepDisplay:
    """A sweep's live display: the plan in one line, a bar for the sweep and one per run in
    flight (several at once when runs train side by side), and a line per finished run."""

    def __init__(self, enabled: bool = True, console: Console = stderr):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = console
        self.downloads = DownloadBar(enabled)
        # Narrow terminals (80 columns) get a short label, a short bar and no elapsed time, so
        # that a row stays on one line and every figure in it stays whole.
        self.narrow = console.width < 120
        columns = [
            TextColumn("{task.description}"),
            BarColumn(bar_width=8 if self.narrow else 30),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
        ]
        columns += [TimeRemainingColumn()] if self.narrow else [TimeElapsedColumn(), TimeRemainingColumn()]
        self.progress = Progress(*columns, console=console, disable=not enabled)
        self.overall = None
        self.rows: dict[str, object] = {}  # run id -> its task

    def __enter__(self) -> SweepDisplay:
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def handle(self, event: Event) -> None:
        if isinstance(event, (DownloadStarted, DownloadProgress, DownloadEnded)):
            self.downloads.handle(event)
        elif isinstance(event, SweepPlanned):
            self._planned(event)
        elif isinstance(event, RunStarted):
            cfg = event.cfg
            label = f"{cfg.cell} {cfg.num_layers}x{cfg.size} s{cfg.seed}" if self.narrow else f"  {cfg.label}"
            self.rows[cfg.run_id] = self.progress.add_task(label, total=None, detail="")
        elif isinstance(event, RunProgress):
            if event.cfg.run_id not in self.rows:
                self.handle(RunStarted(event.cfg))
            p = event.progress
            detail = (
                f"train {p.train_loss_nats:.3f} nats {p.chars_per_s / 1e3:,.0f}k ch/s"
                if self.narrow
                else f"train loss {p.train_loss_nats:.3f} nats  {p.chars_per_s:,.0f} chars/s (training only)"
            )
            self.progress.update(self.rows[event.cfg.run_id], completed=p.step, total=p.planned_steps, detail=detail)
        elif isinstance(event, RunFinished):
            self._finished(event)
        elif isinstance(event, Notice):
            self.progress.console.print(f"[yellow]note:[/] {escape(event.text)}", highlight=False)
        elif isinstance(event, RunSkipped):
            self.progress.advance(self.overall)
            self.progress.console.print(
                f"{event.cfg.run_id}  {escape(event.cfg.label)}: [yellow]skipped[/], {escape(event.why)}",
                highlight=False,
            )

    def _planned(self, e: SweepPlanned) -> None:
        which = f"shard {e.shard}: {e.runs} of {e.grid_runs} runs" if e.shard else f"{e.runs} runs"
        self.console.print(
            f"[bold]{which}[/] on '{escape(e.dataset)}' ({e.n_bytes:,} bytes, vocabulary "
            f"{e.vocab_size}): {e.already_finished} already finished, {e.to_run} to run "
            f"({escape(e.executor)}).",
            highlight=False,
        )
        self.progress.start()
        self.overall = self.progress.add_task("sweep", total=e.to_run, detail="")

    def _finished(self, e: RunFinished) -> None:
        if e.cfg.run_id in self.rows:
            self.progress.remove_task(self.rows.pop(e.cfg.run_id))
        self.progress.advance(self.overall)
        record = e.record
        outcome = (
            f"test {record.metrics['test_loss_nats']:.3f} nats"
            if record.status == "ok"
            else f"[red]{record.status}[/] {escape(record.error or '')}"
        )
        if record.metrics.get("cuda_graphs_failure"):  # said once, for the run it concerns
            failure = escape(record.metrics["cuda_graphs_failure"])
            outcome += f" [yellow](trained eagerly: CUDA graph capture failed: {failure})[/]"
        self.progress.console.print(f"{e.cfg.run_id}  {escape(e.cfg.label)}: {outcome}", highlight=False)


class CompareDisplay:
    """compare-devices: what the CPU runs, a line per stored measurement, and the table at the end."""

    def __init__(self):
        from rich.table import Table

        self.downloads = DownloadBar()
        self.table = Table(title="compare-devices")
        for name in ("device", "model", "workload", "median time (IQR)", "rate", "GFLOP/s", "of peak", "status"):
            self.table.add_column(
                name, justify="left" if name in ("device", "model", "workload", "status") else "right"
            )

    def handle(self, event: Event) -> None:
        if isinstance(event, (DownloadStarted, DownloadProgress, DownloadEnded)):
            self.downloads.handle(event)
        elif isinstance(event, CpuDtypes):
            info(
                "CPU dtypes: "
                + ", ".join(f"{name} {'yes' if why is None else 'no'}" for name, why in event.support.items())
            )
            if event.support[event.dtype] is not None:
                note(
                    f"the CPU does not run this model in {event.dtype} ({event.support[event.dtype]}); "
                    "its rows are stored as 'unsupported'"
                )
        elif isinstance(event, RowMeasured):
            self._row(event.record)
        elif isinstance(event, Notice):
            info(event.text)

    def _row(self, record: Record) -> None:
        from rnnbench.report import device_label
        from rnnbench.results import flatten

        row = flatten(record)
        m = record.metrics
        model = f"{row['cell']} {row['num_layers']}x{row['size']}" if row.get("cell") else "-"
        # The same units as the markdown: ms per character for generation, GB/s for copies.
        if "ms_per_char" in m:
            time_text = f"{m['ms_per_char']:.3f} ({m['ms_per_char_iqr']:.3f}) ms/char"
        elif "time_ms_median" in m:
            time_text = f"{m['time_ms_median']:.3f} ({m['time_ms_iqr']:.3f}) ms"
        else:
            time_text = "-"
        rate = (
            f"{m['chars_per_s']:,.0f} chars/s"
            if "chars_per_s" in m
            else f"{m['gb_per_s']:,.1f} GB/s"
            if "gb_per_s" in m
            else f"{m['gflops']:,.1f} GFLOP/s"
            if "gflops" in m
            else "-"
        )
        info(
            f"  {device_label(row)}  {model}  {row['workload']}: {record.status}"
            + (f", {time_text}" if time_text != "-" else "")
        )
        self.table.add_row(
            device_label(row),
            model,
            row["workload"],
            time_text,
            rate,
            f"{m['achieved_gflops']:,.1f}" if "achieved_gflops" in m else "-",
            f"{m['matmul_fraction']:.0%}" if "matmul_fraction" in m else "-",
            record.status if record.status == "ok" else f"[red]{record.status}[/] {escape(str(record.error))}",
        )


# --- tables -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A column of a table that fits the terminal: columns of a higher `drop` go first when it is too
    narrow (0: never dropped); a `wrap` column folds its text instead of claiming its full width."""

    name: str
    drop: int = 0
    right: bool = False
    wrap: bool = False


def fitted_table(title: str, columns: list[Column], rows: list[list[str]], width: int):
    """A rich table of the columns that fit in `width` characters, dropping by priority; a column
    kept is never cut, and what was left out is said in the caption."""
    from rich.table import Table

    def natural(col: int) -> int:
        """A column's width: its longest cell, or for a wrapping column its longest word."""
        cells = [columns[col].name] + [r[col] for r in rows]
        if columns[col].wrap:
            return max(len(word) for cell in cells for word in cell.split())
        return max(len(cell) for cell in cells)

    kept = list(range(len(columns)))
    dropped = []
    while sum(natural(c) + 3 for c in kept) + 1 > width and any(columns[c].drop for c in kept):
        worst = max((c for c in kept if columns[c].drop), key=lambda c: columns[c].drop)
        kept.remove(worst)
        dropped.append(columns[worst].name)
    caption = f"left out at {width} columns: {', '.join(reversed(dropped))}" if dropped else None
    table = Table(title=escape(title), caption=caption)
    for c in kept:
        col = columns[c]
        table.add_column(
            col.name,
            justify="right" if col.right else "left",
            no_wrap=not col.wrap,
            overflow="fold" if col.wrap else "ellipsis",
            min_width=natural(c),
        )
    for r in rows:
        table.add_row(*[r[c] for c in kept])
    return table


def short_hardware(hardware: dict | None) -> str:
    """A run's hardware in few characters: 'Intel Xeon, 2 threads, torch 2.13.0+cpu', 'H200, torch 2.11.0+cu130'."""
    if not hardware:
        return "-"
    model = str(hardware.get("model", "?"))
    for noise in ("(R)", "(TM)", " Processor", " CPU", "NVIDIA "):
        model = model.replace(noise, "")
    threads = hardware.get("threads")
    return " ".join(model.split()) + (f", {threads} thr" if threads else "") + f", torch {hardware.get('torch', '?')}"


def budget_short(train: dict) -> str:
    """What bounded a run, and its layout where it is not the default: '50 ep, chunked', '1 ep', '90 s'."""
    parts = []
    if train.get("epochs") is not None:
        parts.append(f"{train['epochs']} ep")
    if train.get("max_steps") is not None:
        parts.append(f"{train['max_steps']:,} steps")
    if train.get("max_chars") is not None:
        parts.append(f"{train['max_chars'] / 1e6:g}M chars")
    if train.get("time_budget_s") is not None:
        parts.append(f"{train['time_budget_s']:g} s")
    if train.get("split", "contiguous") != "contiguous":
        parts.append(train["split"])
    return ", ".join(parts) or "-"


class KernelDisplay:
    """`rnnbench kernels`: a bar over the rows, a line per measured row, and the table at the end."""

    HEADERS = ("layer", "device", "dtype", "forward ms (IQR)", "fwd+bwd ms (IQR)", "TFLOP/s", "of matmul", "status")

    def __init__(self, enabled: bool = True):
        from rich.progress import MofNCompleteColumn, Progress, TimeElapsedColumn
        from rich.table import Table

        self.progress = Progress(
            *Progress.get_default_columns(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=stderr,
            disable=not enabled,
            transient=True,
        )
        self.task = None
        self.table = Table(title="recurrent layers (TFLOP/s by DeepBench's count: recurrent products, fwd+bwd)")
        for name in self.HEADERS:
            self.table.add_column(name, justify="left" if name in ("layer", "device", "dtype", "status") else "right")

    def __enter__(self) -> KernelDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def handle(self, event: Event) -> None:
        if isinstance(event, KernelMeasured):
            if self.task is None:
                self.task = self.progress.add_task("timing layers", total=event.total)
            self.progress.update(self.task, completed=event.done, description=event.label)
            if event.record is not None:
                self._row(event.record, event.label)
        elif isinstance(event, Notice):
            note(event.text)

    def _row(self, record: Record, label: str) -> None:
        c, m = record.config, record.metrics
        if record.status == "ok":
            cells = [
                f"{m['fwd_ms_median']:,.3g} ({m['fwd_ms_iqr']:.2g})",
                f"{m['total_ms_median']:,.3g} ({m['total_ms_iqr']:.2g})",
                f"{m['deepbench_tflops_total']:.3g}",
                f"{m['share_of_matmul']:.0%}",
            ]
        else:
            cells = ["-"] * 4
        status_text = record.status + (f": {record.error}" if record.error else "")
        self.progress.console.print(
            escape(
                f"  {label} on {c['device']} {c['dtype']}: "
                + (
                    f"forward {cells[0]} ms, fwd+bwd {cells[1]} ms, {cells[2]} TFLOP/s"
                    if record.status == "ok"
                    else status_text
                )
            ),
            highlight=False,
            soft_wrap=True,
        )
        self.table.add_row(label, c["device"], c["dtype"], *cells, record.status)


def kernel_plan_table(planned: list):
    """`rnnbench kernels --plan`: each row, stored or its expected seconds, and the sum."""
    from rich.table import Table

    todo = [p for p in planned if not p.stored]
    total_s = sum(p.seconds for p in todo)
    table = Table(
        title=f"kernels plan: {len(todo)} rows to measure, {len(planned) - len(todo)} stored; "
        f"expected {total_s / 60:,.1f} min (each call at the device's matmul rate times the efficiency of "
        "one small probe layer per cell)"
    )
    for name in ("layer", "device", "dtype", "expected"):
        table.add_column(name, justify="right" if name == "expected" else "left")
    for p in planned:
        table.add_row(p.shape.label(), p.device, p.dtype, "stored" if p.stored else f"{p.seconds:,.1f} s")
    return table


# Dropped first at a narrow terminal: the highest `drop`. The first metric column (the test loss)
# says a run's status where it has no value, so the status column can go before what tells runs apart.
RUN_COLUMNS = [
    Column("run"),
    Column("status", drop=6),
    Column("dataset", drop=3),
    Column("model"),
    Column("hidden", drop=11, right=True),
    Column("params", drop=12, right=True),
    Column("device", drop=4),
    Column("hardware", drop=2, wrap=True),
    Column("budget", drop=1, wrap=True),
    Column("seed", drop=5, right=True),
]


def runs_table(records: list[Record], title: str, width: int | None = None):
    """Sweep runs as a table, one row per run, with what tells rows apart (hardware, budget and
    layout) and the metrics declared for the table (results.metrics) that any of them has; at a
    narrow terminal the least needed columns are left out, never the run id or the loss."""
    from rnnbench.results.metrics import shown

    def num(value, spec):
        return "-" if value is None else format(value, spec)

    metrics = [m for i, m in enumerate(shown("table")) if i == 0 or any(r.metrics.get(m.name) for r in records)]
    rows = []
    for r in records:
        c, m = r.config, r.metrics
        values = []
        for metric in metrics:
            value = m.get(metric.name)
            text = num(value, metric.fmt) if value is not None or values else r.status
            if metric.spread and value is not None:
                text += f" ({num(m.get(metric.spread), metric.fmt)})"
            values.append(text)
        # a run id is what `rnnbench sample` takes: it is never cut
        rows.append(
            [
                r.run_id,
                r.status,
                c["dataset"],
                f"{c['cell']} {c['num_layers']}x{c['size']}",
                num(m.get("hidden_size"), "d"),
                num(m.get("n_params"), ","),
                c["device"],
                short_hardware(r.hardware.as_dict()),
                budget_short(c.get("train", {})),
                str(c["seed"]),
                *values,
            ]
        )
    columns = RUN_COLUMNS + [Column(m.label, drop=m.drop, right=True) for m in metrics]
    return fitted_table(f"{title} (losses in nats per character)", columns, rows, width or stdout.width)


def run_pairs_table(table, title: str):
    """`rnnbench results compare`: one row per run in both folders (rnnbench.report.run_pairs.compare_runs)."""
    from rich.table import Table

    colours = {"faster": "green", "slower": "red", "shared": "yellow"}
    out = Table(title=escape(title))
    for name in (
        "corpus",
        "model",
        "seed",
        "BASE test",
        "NEW test",
        "change",
        "BASE step ms (IQR)",
        "NEW step ms (IQR)",
        "speedup",
        "verdict",
    ):
        out.add_column(name, justify="left" if name in ("corpus", "model", "verdict") else "right")
    for r in table.itertuples():
        colour = colours.get(r.verdict)
        out.add_row(
            escape(r.dataset),
            f"{r.cell.upper()} {r.num_layers}x{r.size}",
            str(r.seed),
            f"{r.base_test_loss_nats:.4f}",
            f"{r.new_test_loss_nats:.4f}",
            f"{r.test_loss_change_nats:+.4f}",
            f"{r.base_step_ms:.3g} ({r.base_step_ms_iqr:.2g})",
            f"{r.new_step_ms:.3g} ({r.new_step_ms_iqr:.2g})",
            f"x{r.speedup:.2f}",
            f"[{colour}]{r.verdict}[/]" if colour else r.verdict,
        )
    return out


def plan_table(plan, jobs: int):
    """`rnnbench sweep --plan`: every run to train (a stopped one first, with the steps it has done),
    then longest first, with its estimate; the totals."""
    from rnnbench.sweep.estimate import lanes_wall_s

    rows = []
    for cfg in plan.todo:
        e = plan.estimates[cfg.run_id]
        steps = "-" if e.steps is None else f"{e.steps:,}"
        if e.done_steps:  # a stopped run resumes from its saved state: how far it got
            steps += f" ({e.done_steps:,} done)"
        step = "-" if e.step_s is None else f"{e.step_s * 1e3:,.1f}"
        rows.append(
            [
                cfg.run_id,
                f"{cfg.cell} {cfg.num_layers}x{cfg.size}",
                f"{cfg.train.dropout:g}",
                str(cfg.seed),
                cfg.device,
                steps,
                step,
                e.text,
                e.source,
            ]
        )
    columns = [
        Column("run"),
        Column("model"),
        Column("dropout", drop=4, right=True),
        Column("seed", drop=5, right=True),
        Column("device", drop=3),
        Column("steps", drop=2, right=True),
        Column("step ms", drop=1, right=True),
        Column("estimate", right=True),
        Column("from", drop=6),
    ]
    seconds, unknown = plan.seconds(plan.todo)
    wall = lanes_wall_s([plan.estimates[c.run_id].seconds or 0.0 for c in plan.todo], jobs)
    stored = len(plan.runs) - len(plan.todo)
    title = (
        f"plan: {len(plan.todo)} run(s) to train, {stored} stored already; about {seconds:,.0f} s of device time"
        + (f", {wall:,.0f} s of wall time with {jobs} at a time if sharing slows no run" if jobs > 1 else "")
        + (f"; {unknown} without an estimate" if unknown else "")
    )
    return fitted_table(title, columns, rows, stdout.width)


def busy_probes_notice(plan) -> str | None:
    """The estimates of a plan that rest on CPU probes taken while other processes kept the cores
    busy (BUSY_CORES or more): they overstate a quieter machine."""
    from rnnbench.core.devices import BUSY_CORES

    busy = [e.probe_busy_cores for e in plan.estimates.values() if (e.probe_busy_cores or 0.0) >= BUSY_CORES]
    if not busy:
        return None
    return (
        f"{len(busy)} estimate(s) rest on probes taken while other processes kept up to {max(busy):.1f} cores "
        "busy: on a quieter machine those runs take less"
    )


def ngram_table(records: list[Record], title: str):
    """`rnnbench baseline ngram`: one row per order, validation and test loss of each smoothing; the
    order validation picks for a smoothing is starred."""
    from rich.table import Table

    from rnnbench.measure.ngram import SMOOTHINGS

    by = {(r.config["smoothing"], r.config["order"]): r.metrics for r in records}
    smoothings = list(dict.fromkeys(r.config["smoothing"] for r in records))
    picked = {s: min((o for t, o in by if t == s), key=lambda o: by[(s, o)]["val_loss_nats"]) for s in smoothings}
    table = Table(title=escape(title), caption="* the order with the lowest validation loss")
    table.add_column("order", justify="right")
    for smoothing in smoothings:
        short = {text: key for key, text in SMOOTHINGS.items()}.get(smoothing, smoothing)
        table.add_column(f"{short} val", justify="right")
        table.add_column("test", justify="right")
    for order in sorted({o for _, o in by}):
        cells = []
        for smoothing in smoothings:
            m = by[(smoothing, order)]
            star = "*" if picked[smoothing] == order else ""
            cells += [f"{m['val_loss_nats']:.4f}{star}", f"{m['test_loss_nats']:.4f}"]
        table.add_row(str(order), *cells)
    return table


def show(table) -> None:
    """A table on stdout."""
    stdout.print(table)


def corpora_table(corpora, layout):
    """`rnnbench data list`: one row per rnnbench.core.data.CorpusInfo, its splits cut by `layout`."""
    from rich.table import Table

    t, v = layout.train_fraction, layout.val_fraction
    chunked = f" at {layout.batch_size} x {layout.seq_len}" if layout.split == "chunked" else ""
    table = Table(
        title=f"corpora (bytes; splits {layout.split}{chunked}, {100 * t:g}/{100 * v:g}/{100 * (1 - t - v):g})"
    )
    for name in ("name", "present", "bytes", "vocab", "train", "val", "test", "description"):
        table.add_column(name, justify="right" if name in ("bytes", "vocab", "train", "val", "test") else "left")
    for c in corpora:
        if c.problem is not None:
            table.add_row(c.name, f"[red]{escape(c.problem)}[/]", *["-"] * 5, c.description)
        elif c.where is None:
            table.add_row(
                c.name, f"[yellow]no[/]: {escape(c.how_to_get)}", f"{c.n_bytes:,}", "-", "-", "-", "-", c.description
            )
        else:
            table.add_row(
                c.name,
                escape(c.where),
                f"{c.n_bytes:,}",
                str(c.vocab_size),
                *[f"{n:,}" for n in c.split_sizes],
                c.description,
            )
    return table
