"""The stored metrics of a run, each declared once (beside the settings' `setting()`): its name
(the key in a record's metrics and the column of `results.load()`), unit, kind and meaning, and
where it is shown. The export's leading columns, `rnnbench results`' table and TensorBoard's final
scalars read this list; adding a stored metric to them is one `metric()` entry.

    >>> from rnnbench.results.metrics import METRICS, shown
    >>> METRICS["joules_per_char"].unit
    'J/char'
    >>> [m.name for m in shown("tensorboard")]
    ['test_loss_nats', 'val_loss_nats', 'train_chars_per_s', 'joules_per_char']
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("loss", "speed", "work", "memory", "energy")
PLACES = ("table", "tensorboard")  # where a metric may be shown besides the export


@dataclass(frozen=True)
class Metric:
    name: str  # with its unit in the name where it has one: test_loss_nats, step_ms_median
    unit: str
    kind: str  # one of KINDS
    help: str
    label: str = ""  # its column title in `rnnbench results`' table
    fmt: str = ".3g"  # how a table prints it
    spread: str | None = None  # the metric holding its IQR, printed beside it in brackets
    shown_in: tuple[str, ...] = ()  # of PLACES
    drop: int = 0  # in the table, dropped at a narrow terminal: the highest first; 0 never


METRICS: dict[str, Metric] = {}


def metric(name: str, unit: str, kind: str, help: str, **options) -> Metric:
    """Declare (or replace) a stored metric; its place in METRICS is its place among the columns."""
    if kind not in KINDS or any(place not in PLACES for place in options.get("shown_in", ())):
        raise ValueError(f"metric {name}: kind one of {KINDS}, shown_in of {PLACES}")
    METRICS[name] = Metric(name, unit, kind, help, **options)
    return METRICS[name]


def shown(place: str) -> list[Metric]:
    return [m for m in METRICS.values() if place in m.shown_in]


metric(
    "test_loss_nats",
    "nats/char",
    "loss",
    "Mean cross-entropy on the test split, of the weights with the best validation loss.",
    label="test",
    fmt=".3f",
    shown_in=("table", "tensorboard"),
)
metric(
    "val_loss_nats",
    "nats/char",
    "loss",
    "The best validation loss of the run (the evaluation that chose its weights).",
    label="val",
    fmt=".3f",
    shown_in=("table", "tensorboard"),
    drop=7,
)
metric("train_loss_nats", "nats/char", "loss", "Mean training loss over the run's last logged steps.")
metric("test_bpc", "bits/char", "loss", "The test loss in bits per character (nats / ln 2).")
metric(
    "train_chars_per_s",
    "chars/s",
    "speed",
    "Training throughput: characters per second of the median timed step (warm-up left out).",
    label="chars/s (IQR)",
    fmt=",.0f",
    spread="train_chars_per_s_iqr",
    shown_in=("table", "tensorboard"),
    drop=8,
)
metric("train_chars_per_s_iqr", "chars/s", "speed", "The IQR of the training throughput over the timed steps.")
metric(
    "step_ms_median",
    "ms",
    "speed",
    "Median time of a training step.",
    label="step ms",
    fmt=".1f",
    shown_in=("table",),
    drop=9,
)
metric("step_ms_iqr", "ms", "speed", "The IQR of the step times.")
metric(
    "achieved_gflops", "GFLOP/s", "work", "Matrix-product FLOPs per second at the median step (models.flops_per_char)."
)
metric("peak_rss_mb", "MB", "memory", "The process's peak resident memory during the run.")
metric(
    "joules_per_char",
    "J/char",
    "energy",
    "Energy per trained character: the device counter's joules over the run (training, evaluation, "
    "checkpoints; core.energy) per character trained; missing where the device has no counter.",
    label="J/char",
    fmt=".3g",
    shown_in=("table", "tensorboard"),
    drop=10,
)
metric("energy_j", "J", "energy", "The device counter's joules over the whole run (core.energy).")
