"""Device-aware timing of repeated steps: warm-up left out, median and IQR from the raw samples.

    >>> from rnnbench.core.timing import StepTimer, summarize
    >>> timer = StepTimer("cpu", warmup=1)
    >>> for _ in range(4):
    ...     with timer:
    ...         _ = sum(range(1000))
    >>> len(timer.samples_s())
    3
    >>> summarize([1.0, 2.0, 3.0, 4.0])["median"]
    2.5
    >>> rate(10.0, summarize([1.0, 2.0, 3.0, 4.0]))   # (per second at the median, IQR)
    (4.0, 2.6373626373626373)

On CUDA, kernels run after the Python call returns, so a host clock would time the launch, not the
work. There each step records a pair of CUDA events on the stream, which costs no synchronisation;
the events are read when the samples are asked for, after one device synchronisation.
"""

from __future__ import annotations

import statistics
import time

import torch

from rnnbench.core.devices import kind_of


def synchronize(device: str | torch.device) -> None:
    """Wait until all work queued on `device` has finished (its kind says how; nothing on a CPU)."""
    device = torch.device(device)
    kind_of(device).synchronize(device)


def summarize(samples: list[float]) -> dict[str, float]:
    """Median, quartiles and interquartile range of raw samples (NaN when there are none)."""
    if not samples:
        return {"median": float("nan"), "q1": float("nan"), "q3": float("nan"), "iqr": float("nan"), "n": 0}
    if len(samples) == 1:
        q1 = median = q3 = samples[0]
    else:
        q1, median, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return {"median": median, "q1": q1, "q3": q3, "iqr": q3 - q1, "n": len(samples)}


def rate(work: float, stats_s: dict[str, float]) -> tuple[float, float]:
    """(work per second at the median time, its interquartile range) from time statistics in
    seconds. A rate is a monotone transform of a time, so its quartiles come from the time's: the
    median rate is exactly the work of one call over the median time."""
    return work / stats_s["median"], work / stats_s["q1"] - work / stats_s["q3"]


class StepTimer:
    """Times each `with timer:` block; the first `warmup` blocks are not kept."""

    def __init__(self, device: str | torch.device, warmup: int = 0):
        self.device = torch.device(device)
        self.kind = kind_of(self.device)
        self.use_events = self.kind.event_timing
        self.warmup = warmup
        self._seen = 0
        self._host_s: list[float] = []
        self._events: list[tuple] = []  # (start, end) of the kind's timing events
        self._start: object = None

    def __enter__(self) -> StepTimer:
        if self.use_events:
            self._start = self.kind.timing_event()
            self._start.record()
        else:
            self.kind.synchronize(self.device)  # a device without events: what was queued before is not this step's
            self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self._seen += 1
        keep = self._seen > self.warmup
        if self.use_events:
            end = self.kind.timing_event()
            end.record()
            if keep:
                self._events.append((self._start, end))
        else:
            self.kind.synchronize(self.device)  # the step's queued work is part of its time
            if keep:
                self._host_s.append(time.perf_counter() - self._start)

    def samples_s(self, clear: bool = False) -> list[float]:
        """Seconds per kept block (and forget them, with clear); on CUDA this synchronises once."""
        if self._events:
            synchronize(self.device)
            self._host_s.extend(start.elapsed_time(end) / 1e3 for start, end in self._events)
            self._events.clear()
        samples = list(self._host_s)
        if clear:
            self._host_s.clear()
        return samples
