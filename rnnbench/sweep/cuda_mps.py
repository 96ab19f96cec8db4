"""The CUDA MPS daemon for a sweep of several jobs on one GPU.

Without it a GPU time-slices between processes; with it their kernels run side by side (on the
H200: 8 processes of LSTM 1x128 gave about 1,900 steps/s together without MPS, about 2,900 with
it; docs/devices-and-gpus.md, "Runs side by side"). A sweep with --jobs above 1 on CUDA starts the daemon when none
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
import tempfile
import time
from collections.abc import Callable, Iterator

import psutil

from rnnbench.events import Notice

CONTROL = "nvidia-cuda-mps-control"
STOP_WAIT_S = 30.0  # how long the end of a sweep waits for the daemon it started to be gone


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
    code, said = _start(control)
    if code != 0:
        why = said.strip().splitlines()[-1:] or [f"exit {code}"]
        tell(Notice(f"could not start the CUDA MPS daemon ({why[0]}): the {jobs} jobs take turns on the GPU"))
        yield
        return
    tell(Notice(f"started the CUDA MPS daemon for the {jobs} jobs (stopped when the sweep ends; --no-mps not to)"))
    try:
        yield
    finally:
        if not _stop(control):
            tell(Notice(f"the CUDA MPS daemon was asked to quit and still runs after {STOP_WAIT_S:g} s"))


def _start(control: str) -> tuple[int, str]:
    """(exit code, what it said) of `control -d`. Its output goes to a file, not a pipe: the daemon
    it forks keeps the descriptors it inherits open, and reading a pipe would wait for them."""
    with tempfile.TemporaryFile(mode="w+") as said:
        try:
            done = subprocess.run([control, "-d"], stdin=subprocess.DEVNULL, stdout=said, stderr=said, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return 1, str(exc)
        said.seek(0)
        return done.returncode, said.read()


def _stop(control: str) -> bool:
    """Ask the daemon to quit and wait until it has: `quit` returns at once, while the daemon shuts
    down, and a CUDA program started meanwhile (the next stage's) may find no GPU. True once gone."""
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(
            [control], input="quit\n", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True, timeout=30
        )
    deadline = time.monotonic() + STOP_WAIT_S
    while daemon_running():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True
