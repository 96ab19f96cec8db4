"""Energy from the device's own counter, never estimated: NVML's total-energy counter on NVIDIA GPUs
(nvidia-ml-py), RAPL's package counters under /sys/class/powercap on CPUs. Where neither can be
read, a meter says why, and a run's row says energy unknown.

    >>> meter = EnergyMeter(rapl_counter())       # a CPU's; a device kind names its counter
    >>> meter.joules is None or meter.joules >= 0.0   # None, and why, where there is none
    True

A counter is read at the start and then at every sample (the Trainer samples at each loss read-back,
every few steps): RAPL's counters wrap (every few minutes at full power), and a delta is counted
across one wrap at most, so the samples must come more often than that. NVML's is 64-bit and does
not wrap in practice. What a counter counts is wider than one run: a whole GPU (every process on
it), or whole CPU packages (every process on them); the row says so (`energy_scope`).

Why not a library that measures both (Zeus, from ml-energy): the lent GPU machines have no package
index, and nvidia-ml-py is on them; RAPL is a few sysfs reads. Both counters are read the way Zeus
reads them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

POWERCAP = Path("/sys/class/powercap")


@dataclass(frozen=True)
class EnergyCounter:
    """Cumulative energy counters (one per CPU package, one per GPU): `read()` gives each in joules
    since an arbitrary origin."""

    read: Callable[[], list[float]]
    source: str  # "nvml" or "rapl"
    scope: str  # what it counts, in words
    wraps_j: tuple[float | None, ...] = (None,)  # each counter's value where it starts again from 0


def rapl_counter(root: Path | None = None) -> EnergyCounter | str:
    """The CPU packages' RAPL counters (intel-rapl:N, summed), or why there are none."""
    root = POWERCAP if root is None else root
    zones = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1) if root.is_dir() else []
    if not zones:
        return f"no RAPL counters under {root} (this machine or its kernel does not expose them)"

    def read() -> list[float]:
        return [float((z / "energy_uj").read_text()) / 1e6 for z in zones]

    try:
        wraps = tuple(float((z / "max_energy_range_uj").read_text()) / 1e6 for z in zones)
        read()
    except (OSError, ValueError) as exc:
        return f"the RAPL counters under {root} cannot be read ({exc.__class__.__name__}: {exc})"
    return EnergyCounter(read, "rapl", f"{len(zones)} CPU package(s): every process on them", wraps)


def nvml_counter(index: int, uuid: str | None = None) -> EnergyCounter | str:
    """The GPU's total-energy counter through NVML (by its UUID where known, else its index)."""
    try:
        import pynvml
    except ImportError:
        return "nvidia-ml-py is not installed (pip install nvidia-ml-py)"
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByUUID(uuid) if uuid else pynvml.nvmlDeviceGetHandleByIndex(index)
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except Exception as exc:  # NVMLError_NotSupported (GPUs before Volta), no driver, ...
        return f"NVML gives no energy counter for this GPU ({exc.__class__.__name__}: {exc})"
    return EnergyCounter(
        lambda: [pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1e3],  # millijoules
        "nvml",
        "the whole GPU: every process on it",
    )


def cuda_counter(device: torch.device) -> EnergyCounter | str:
    index = device.index if device.index is not None else torch.cuda.current_device()
    uuid = None
    with contextlib.suppress(Exception):  # older torch has no uuid property
        uuid = f"GPU-{torch.cuda.get_device_properties(index).uuid}"
    return nvml_counter(index, uuid)


class EnergyMeter:
    """Joules a device's counter gained since the meter started (plus `joules_before`, a resumed
    run's earlier sessions), sampled often enough to count each wrap."""

    def __init__(self, counter: EnergyCounter | str, joules_before: float = 0.0):
        self.counter = counter if isinstance(counter, EnergyCounter) else None
        self.why_unknown = None if self.counter is not None else str(counter)
        self.total = joules_before
        self.last = self._read()

    def _read(self) -> list[float] | None:
        if self.counter is None:
            return None
        try:
            return self.counter.read()
        except Exception as exc:  # a counter that stopped answering: the energy is unknown, training goes on
            self.why_unknown = f"the {self.counter.source} counter stopped answering ({exc.__class__.__name__}: {exc})"
            self.counter = None
            return None

    def sample(self) -> None:
        now = self._read()
        if now is None or self.last is None:
            return
        for before, after, wrap in zip(self.last, now, self.counter.wraps_j):
            delta = after - before
            if delta < 0 and wrap:  # the counter passed its maximum once since the last sample
                delta += wrap
            self.total += max(delta, 0.0)
        self.last = now

    @property
    def joules(self) -> float | None:
        """Joules so far, or None where the device has no readable counter (`why_unknown`)."""
        self.sample()
        return self.total if self.counter is not None else None

    def metrics(self, chars: int) -> dict:
        """A row's energy fields: joules, joules per training character, the counter and its scope."""
        joules = self.joules
        return {
            "energy_j": joules,
            "joules_per_char": joules / chars if joules is not None and chars else None,
            "energy_source": self.counter.source if self.counter is not None else None,
            "energy_scope": self.counter.scope if self.counter is not None else None,
            "energy_unknown": self.why_unknown,
        }
