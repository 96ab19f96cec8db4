"""What long library work reports while it runs: plain records handed to an `on_event` callback.

    >>> from rnnbench.events import SweepPlanned
    >>> seen = []
    >>> on_event = seen.append            # any callable of one event
    >>> on_event(SweepPlanned("synthetic", 500_000, 39, 6, 6, 0, "local executor, one run at a time"))
    >>> seen[0].to_run
    6

The library (data, sweep, the executors, compare) never draws anything: it emits these, and
whoever called it decides what to show. rnnbench.cli.terminal turns them into rich progress bars and
lines; a test or a notebook may collect them in a list, or pass no callback at all.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from rnnbench.config import RunConfig
    from rnnbench.results.records import Record


@dataclass
class Progress:
    """What a progress display is told every LOG_EVERY_STEPS steps."""

    step: int
    planned_steps: int | None  # None when only a time budget bounds the run
    train_loss_nats: float  # the mean over the steps since the last report
    chars_per_s: float  # training only: evaluation and checkpoint time left out
    val_loss_nats: float | None = None  # of the last evaluation, if any yet
    val_step: int | None = None  # the step of that evaluation
    lr: float | None = None  # the learning rate now


@dataclass(frozen=True)
class DownloadStarted:
    url: str
    total_bytes: int


@dataclass(frozen=True)
class DownloadProgress:
    url: str
    bytes_done: int


@dataclass(frozen=True)
class DownloadEnded:
    """Sent whether the download succeeded or not."""

    url: str


@dataclass(frozen=True)
class SweepPlanned:
    """The grid is checked and expanded; training starts next."""

    dataset: str
    n_bytes: int
    vocab_size: int
    grid_runs: int  # runs in the whole grid
    runs: int  # runs in this sweep's share of it (all of them, or one shard's)
    already_finished: int
    executor: str  # where the runs train, in words
    shard: str | None = None  # "I/N" when the sweep is one shard of the grid

    @property
    def to_run(self) -> int:
        return self.runs - self.already_finished


@dataclass(frozen=True)
class RunStarted:
    cfg: RunConfig


@dataclass(frozen=True)
class RunProgress:
    cfg: RunConfig
    progress: Progress


@dataclass(frozen=True)
class RunFinished:
    """A run's record is stored (whatever its status)."""

    cfg: RunConfig
    record: Record


@dataclass(frozen=True)
class Notice:
    """Something the user should know that stops nothing (a file moved aside, a checkpoint that
    cannot be read)."""

    text: str


@dataclass(frozen=True)
class RunSkipped:
    """A run of the plan that this sweep leaves alone: another sweep on the same folder claimed
    it, or finished it meanwhile (`why` says which)."""

    cfg: RunConfig
    why: str


@dataclass(frozen=True)
class CpuDtypes:
    """compare-devices found which dtypes a CPU training step runs in (None: yes; else why not)."""

    support: dict[str, str | None]
    dtype: str  # the dtype asked for


@dataclass(frozen=True)
class RowMeasured:
    """compare-devices stored one measurement."""

    record: Record


@dataclass(frozen=True)
class KernelMeasured:
    """`rnnbench kernels` came to row `done` of `total`: measured and stored (`record`), or None
    where it was stored already."""

    record: Record | None
    label: str
    done: int
    total: int


Event = Union[
    DownloadStarted,
    DownloadProgress,
    DownloadEnded,
    SweepPlanned,
    RunStarted,
    RunProgress,
    RunFinished,
    RunSkipped,
    Notice,
    CpuDtypes,
    RowMeasured,
    KernelMeasured,
]
OnEvent = Callable[[Event], None]


def ignore(event: Event) -> None:
    """The callback used when the caller gave none."""


REMOTE_PROGRESS_EVERY_S = 0.5  # how often a run in another process reports its progress


def throttled(send: Callable[[Progress], None], every_s: float = REMOTE_PROGRESS_EVERY_S) -> Callable[[Progress], None]:
    """A progress callback that passes on at most one report per `every_s` seconds, and always the
    last step: for runs in worker processes or Ray tasks, whose every report crosses a process."""
    last = -math.inf

    def on_progress(p: Progress) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= every_s or p.step == p.planned_steps:
            last = now
            send(p)

    return on_progress
