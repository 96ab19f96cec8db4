"""The kinds of device, device discovery and checking, and the machine of every result row.

    >>> from rnnbench.core.devices import available_devices, resolve_devices
    >>> "cpu" in available_devices()
    True
    >>> resolve_devices(["cpu"])
    ['cpu']

A device that is asked for and absent is a UsageError before any work starts: rnnbench never falls
back to another device, so a figure is always from the device it is labelled with.

Everything that differs between kinds of device (how to wait for queued work, time a step, free
cached memory, recognise and read out memory, save the generator's state, name the hardware) is
one DeviceKind in DEVICE_KINDS, which timing, training, the sweep, compare-devices and the error
handling read; a new kind of device is one entry (`register_kind`).

    >>> kind_of("cpu").threads, kind_of("cuda").event_timing
    (True, True)
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import torch

from rnnbench.config import Hardware
from rnnbench.core.energy import EnergyCounter, cuda_counter, rapl_counter
from rnnbench.errors import UsageError


def _nothing(*_) -> None:
    return None


@dataclass(frozen=True)
class DeviceKind:
    """What rnnbench needs of one kind of device (torch.device(name).type)."""

    name: str
    synchronize: Callable[[torch.device], None]  # wait until the work queued on it has run
    empty_cache: Callable[[torch.device], None] = _nothing  # give cached memory back (after a run)
    reset_peak_memory: Callable[[torch.device], None] = _nothing
    peak_memory_bytes: Callable[[torch.device], int | None] = _nothing  # None: not tracked
    out_of_memory: tuple[type[BaseException], ...] = ()  # the exceptions of a failed allocation
    model_name: Callable[[torch.device], str] | None = None  # None: the CPU's model
    rng_state: Callable[[torch.device], torch.Tensor | None] = _nothing  # its generator, for resuming
    set_rng_state: Callable[[torch.Tensor, torch.device], None] = _nothing
    # Discovery: the devices of this kind present here, by canonical name ("cuda", or "cuda:0",
    # "cuda:1" where there are several), and why there are none, for the error that says so.
    present: Callable[[], list[str]] = lambda: []
    why_absent: Callable[[], str] = lambda: "torch does not know it"
    # A timing event recorded on its stream (time steps without a host sync per step); None: the
    # host's clock, after a synchronize.
    timing_event: Callable[[], object] | None = None
    graphs: bool = False  # training steps can be captured in a graph and replayed (CUDA graphs)
    threads: bool = False  # its speed depends on the torch thread count (part of its hardware)
    matmul_sizes: tuple[int, ...] = (512, 1024, 2048)  # square sizes of compare-devices' matmul limit
    # Its energy counter (core.energy), or why it has none.
    energy_counter: Callable[[torch.device], EnergyCounter | str] = lambda d: "no energy counter for this kind"
    ray_resource: str | None = None  # what a Ray task of a run on it asks for ("GPU"); None: CPUs only

    @property
    def event_timing(self) -> bool:
        return self.timing_event is not None


def _cuda_present() -> list[str]:
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ["cuda"] if count == 1 else [f"cuda:{i}" for i in range(count)]


def _cuda_why_absent() -> str:
    if torch.version.cuda is None:
        return f"this torch ({torch.__version__}) is built without CUDA"
    return "torch.cuda.is_available() is False: no GPU or driver found"


def _mps_present() -> list[str]:
    return ["mps"] if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available() else []


def _mps_synchronize(device: torch.device) -> None:
    torch.mps.synchronize()


DEVICE_KINDS: dict[str, DeviceKind] = {
    "cpu": DeviceKind("cpu", _nothing, present=lambda: ["cpu"], threads=True, energy_counter=lambda d: rapl_counter()),
    "cuda": DeviceKind(
        "cuda",
        torch.cuda.synchronize,
        empty_cache=lambda d: torch.cuda.empty_cache(),
        reset_peak_memory=torch.cuda.reset_peak_memory_stats,
        peak_memory_bytes=torch.cuda.max_memory_allocated,
        out_of_memory=(torch.cuda.OutOfMemoryError,),
        model_name=torch.cuda.get_device_name,
        rng_state=torch.cuda.get_rng_state,
        set_rng_state=torch.cuda.set_rng_state,
        present=_cuda_present,
        why_absent=_cuda_why_absent,
        timing_event=lambda: torch.cuda.Event(enable_timing=True),
        graphs=True,
        matmul_sizes=(2048, 4096, 8192),
        energy_counter=cuda_counter,
        ray_resource="GPU",
    ),
    "mps": DeviceKind(
        "mps",
        _mps_synchronize,
        empty_cache=lambda d: torch.mps.empty_cache(),
        model_name=lambda d: f"Apple MPS ({cpu_model()})",
        present=_mps_present,
        why_absent=lambda: "torch.backends.mps.is_available() is False",
    ),
}


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch's thread count set to `threads` for the block (None: left as it is), then put back: the
    one place rnnbench sets it (a CPU run's threads are part of its hardware).

        >>> before = torch.get_num_threads()
        >>> with torch_threads(1):
        ...     torch.get_num_threads()
        1
        >>> torch.get_num_threads() == before
        True
    """
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def kind_of(device: str | torch.device) -> DeviceKind:
    """The DeviceKind of a device name or torch.device; UsageError for a kind rnnbench does not know."""
    name = torch.device(device).type
    if name not in DEVICE_KINDS:
        raise UsageError(f"device kind '{name}' is not supported: use {_kinds_text()}")
    return DEVICE_KINDS[name]


def is_out_of_memory(exc: BaseException) -> bool:
    """An allocation that failed, on any kind of device or on the host (torch's CPU allocator raises
    a plain RuntimeError for it, Python a MemoryError)."""
    if isinstance(exc, MemoryError) or any(isinstance(exc, kind.out_of_memory) for kind in DEVICE_KINDS.values()):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text.lower())


def register_kind(kind: DeviceKind) -> None:
    """Add (or replace) a kind of device: everything device-specific reads it from here."""
    DEVICE_KINDS[kind.name] = kind


def available_devices() -> list[str]:
    """Every device torch can use here, kind by kind (DEVICE_KINDS): the CPU, each CUDA GPU, Apple's MPS."""
    return [name for kind in DEVICE_KINDS.values() for name in kind.present()]


def _kinds_text() -> str:
    return ", ".join(f"{name}, {name}:N" if name == "cuda" else name for name in DEVICE_KINDS) + " or auto"


def resolve_devices(requested: list[str] | tuple[str, ...]) -> list[str]:
    """Canonical device names for a request; `auto` means every device present."""
    resolved: list[str] = []
    for name in requested:
        name = name.strip().lower()
        if name == "auto":
            candidates = available_devices()
        else:
            try:
                device = torch.device(name)
            except RuntimeError as exc:
                raise UsageError(f"unknown device '{name}': use {_kinds_text()}") from exc
            if device.type not in DEVICE_KINDS:
                raise UsageError(f"device '{name}' is not supported: use {_kinds_text()}")
            kind = DEVICE_KINDS[device.type]
            present = kind.present()
            index = device.index or 0
            # One device of a kind is named by its kind alone; several by kind:index.
            canonical = kind.name if present == [kind.name] and index == 0 else f"{kind.name}:{index}"
            if canonical not in present:
                detail = kind.why_absent() if not present else f"this machine has {len(present)} {kind.name} device(s)"
                raise UsageError(f"device '{name}' is not available: {detail}; see `rnnbench devices`")
            candidates = [canonical]
        resolved += [c for c in candidates if c not in resolved]
    return resolved


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the checkout rnnbench is imported from, with '-dirty' for uncommitted changes;
    None for an installed wheel. Asked in the package's folder, not the current one, which for a
    Ray worker or a user's shell is anywhere."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True, cwd=here
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=here,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def hardware(device: str, threads: int | None = None) -> Hardware:
    """The Hardware that runs work on `device` in this process (or, on a CPU, with `threads` torch
    threads, as a worker that sets them will)."""
    kind = kind_of(device)
    model = kind.model_name(torch.device(device)) if kind.model_name else cpu_model()
    return Hardware(
        kind.name, model, (threads or torch.get_num_threads()) if kind.threads else None, str(torch.__version__)
    )


def environment(device: str) -> dict:
    """Environment columns of a result row: machine, software, and the device itself."""
    kind = torch.device(device).type
    env = {
        "host": platform.node(),
        "os": platform.platform(),
        "python_version": sys.version.split()[0],
        "cpu_model": cpu_model(),
        "cpu_cores_physical": psutil.cpu_count(logical=False),
        "cpu_cores_logical": psutil.cpu_count(logical=True),
        "torch_version": torch.__version__,
        "torch_num_threads": torch.get_num_threads(),
        "cuda_version": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "cudnn_version": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "gpu_name": torch.cuda.get_device_name(device) if kind == "cuda" else None,
        "git_commit": git_commit(),
        "device_kind": kind,
    }
    if kind == "cuda":
        # What float32 products may round to: TF32 changes both the speed and the losses of a CUDA run.
        env |= {
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            "cuda_matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        }
    return env


def _busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy since boot, all cores together."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def _own_cpu_s() -> float:
    t = psutil.Process().cpu_times()
    return t.user + t.system


def last_level_cache_bytes(device: str) -> int | None:
    """The size of the device's largest cache, where the platform tells it: the CPU's from Linux's
    sysfs (the largest cache of cpu0), a GPU's L2 from torch; None when unknown."""
    if torch.device(device).type == "cuda":
        return getattr(torch.cuda.get_device_properties(torch.device(device)), "L2_cache_size", None) or None
    sizes = []
    for entry in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        text = entry.read_text().strip().upper()
        units = {"K": 2**10, "M": 2**20, "G": 2**30}
        try:
            sizes.append(int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text))
        except (ValueError, IndexError):
            continue
    return max(sizes) if sizes else None


BUSY_CORES = 0.5  # other processes' mean CPU use, in cores, above which a CPU timing is not clean


def busy_cores(seconds: float = 0.25) -> float:
    """The mean number of cores other processes keep busy, over `seconds` from now."""
    load = MachineLoad()
    time.sleep(seconds)
    return load.stop()["other_cpu_cores"] or 0.0


class MachineLoad:
    """How busy the machine was around a measurement, by anything but this process: a run timed
    while other work ran is not a clean measurement (on 2 cores a second torch process slows a
    sweep ten-fold), and its row must say so.

        load = MachineLoad()
        ...                     # the run
        env |= load.stop()      # load averages at start and end, other processes' CPU use
    """

    def __init__(self):
        self.load_start = os.getloadavg()[0]
        self.wall_start = time.perf_counter()
        self.busy_start = _busy_cpu_s()
        self.own_start = _own_cpu_s()

    def stop(self) -> dict:
        wall = time.perf_counter() - self.wall_start
        others = (_busy_cpu_s() - self.busy_start) - (_own_cpu_s() - self.own_start)
        return {
            "load_avg_1m_start": self.load_start,
            "load_avg_1m_end": os.getloadavg()[0],
            # Mean number of cores kept busy by other processes (other runs included) meanwhile.
            "other_cpu_cores": max(0.0, others / wall) if wall > 0 else None,
        }
