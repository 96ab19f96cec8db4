"""Device discovery and checking, and a description of the machine for every result row.

    >>> from rnnbench.core.devices import available_devices, resolve_devices
    >>> "cpu" in available_devices()
    True
    >>> resolve_devices(["cpu"])
    ['cpu']

A device that is asked for and absent is a UsageError before any work starts: rnnbench never falls
back to another device, so a figure is always from the device it is labelled with.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import psutil
import torch

from rnnbench.config import Hardware
from rnnbench.errors import UsageError


def available_devices() -> list[str]:
    """Every device torch can use here: the CPU, each CUDA GPU, Apple's MPS."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        devices += ["cuda"] if count == 1 else [f"cuda:{i}" for i in range(count)]
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def _why_absent(kind: str) -> str:
    if kind == "cuda":
        if torch.version.cuda is None:
            return f"this torch ({torch.__version__}) is built without CUDA"
        return "torch.cuda.is_available() is False: no GPU or driver found"
    if kind == "mps":
        return "torch.backends.mps.is_available() is False"
    return "torch does not know it"


def resolve_devices(requested: list[str] | tuple[str, ...]) -> list[str]:
    """Canonical device names for a request; `auto` means every device present."""
    resolved: list[str] = []
    present = available_devices()
    for name in requested:
        name = name.strip().lower()
        if name == "auto":
            candidates = present
        else:
            try:
                device = torch.device(name)
            except RuntimeError as exc:
                raise UsageError(f"unknown device '{name}': use cpu, cuda, cuda:N, mps or auto") from exc
            if device.type == "cuda":
                count = torch.cuda.device_count() if torch.cuda.is_available() else 0
                index = device.index or 0
                if index >= count:
                    detail = _why_absent("cuda") if count == 0 else f"this machine has {count} CUDA device(s)"
                    raise UsageError(f"device '{name}' is not available: {detail}; see `rnnbench devices`")
                name = "cuda" if count == 1 else f"cuda:{index}"
            elif device.type == "mps":
                if "mps" not in present:
                    raise UsageError(f"device 'mps' is not available: {_why_absent('mps')}")
                name = "mps"
            elif device.type == "cpu":
                name = "cpu"
            else:
                raise UsageError(f"device '{name}' is not supported: use cpu, cuda, cuda:N, mps or auto")
            candidates = [name]
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
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True,
                                cwd=here).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                               timeout=5, cwd=here).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def hardware(device: str, threads: int | None = None) -> Hardware:
    """The Hardware that runs work on `device` in this process (or, on a CPU, with `threads` torch
    threads, as a worker that sets them will)."""
    kind = torch.device(device).type
    if kind == "cuda":
        return Hardware("cuda", torch.cuda.get_device_name(device), None, str(torch.__version__))
    if kind == "mps":
        return Hardware("mps", f"Apple MPS ({cpu_model()})", None, str(torch.__version__))
    return Hardware("cpu", cpu_model(), threads or torch.get_num_threads(), str(torch.__version__))


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
        return {"load_avg_1m_start": self.load_start, "load_avg_1m_end": os.getloadavg()[0],
                # Mean number of cores kept busy by other processes (other runs included) meanwhile.
                "other_cpu_cores": max(0.0, others / wall) if wall > 0 else None}
