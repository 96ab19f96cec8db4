"""The CUDA MPS daemon for a sweep of several jobs on one GPU.

Without it a GPU time-slices between processes; with it their kernels run side by side (on the
H200: 8 processes of LSTM 1x128 gave about 1,900 steps/s together without MPS, about 2,900 with
it; README, "Runs side by side"). A sweep with --jobs above 1 on CUDA starts the daemon when none
runs and the control program is on the PATH, says so, and stops it when the sweep ends; one that
runs already (started by the GPU's owner, another sweep) is left as it is. Processes that made
their CUDA context before the daemon started (this driver's, if it probed a model) do not go
through it; the workers, started afterwards, do.

    >>> from types import SimpleNamespace
    >>> cpu_runs = [SimpleNamespace(device="cpu")]
    >>> with daemon_for(cpu_runs, jobs=4, wanted=True, tell=print):   # nothing to do off CUDA
    ...     pass
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Callable, Iterator

import psutil

from rnnbench.events import Notice

CONTROL = "nvidia-cuda-mps-control"


def daemon_running() -> bool:
    """A control daemon runs on this machine (the program is also its own client: `-d` starts it)."""
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] == CONTROL or (cmdline and cmdline[0].endswith(CONTROL) and "-d" in cmdline):
            return True
    return False


@contextlib.contextmanager
def daemon_for(runs, jobs: int, wanted: bool, tell: Callable[[Notice], None]) -> Iterator[None]:
    """The MPS daemon running while the block runs, where runs on CUDA share a GPU (see above)."""
    if not (wanted and jobs > 1 and any(str(cfg.device).startswith("cuda") for cfg in runs)):
        yield
        return
    control = shutil.which(CONTROL)
    if control is None:
        tell(Notice(f"no {CONTROL} on the PATH: the {jobs} jobs take turns on the GPU (no MPS)"))
        yield
        return
    if daemon_running():
        tell(Notice(f"the CUDA MPS daemon runs already: the {jobs} jobs share the GPU through it"))
        yield
        return
    try:
        started = subprocess.run([control, "-d"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        started = subprocess.CompletedProcess([control, "-d"], 1, "", str(exc))
    if started.returncode != 0:
        why = (started.stderr or started.stdout).strip().splitlines()[-1:] or [f"exit {started.returncode}"]
        tell(Notice(f"could not start the CUDA MPS daemon ({why[0]}): the {jobs} jobs take turns on the GPU"))
        yield
        return
    tell(Notice(f"started the CUDA MPS daemon for the {jobs} jobs (stopped when the sweep ends; --no-mps not to)"))
    try:
        yield
    finally:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run([control], input="quit\n", capture_output=True, text=True, timeout=30)
