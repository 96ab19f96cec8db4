"""The CUDA MPS daemon a sweep of several CUDA jobs starts and stops, with a stand-in for
nvidia-cuda-mps-control on the PATH (this machine has no GPU): what it is asked, and what the
sweep says."""

from __future__ import annotations

import os
import stat
from types import SimpleNamespace

import pytest

from rnnbench.sweep import cuda_mps as mps

CUDA_RUNS = [SimpleNamespace(device="cuda"), SimpleNamespace(device="cuda")]


@pytest.fixture
def control(tmp_path, monkeypatch):
    """A stand-in control program that writes each call (its arguments, then what it read) to a log."""
    log = tmp_path / "calls.log"
    program = tmp_path / "bin" / mps.CONTROL
    program.parent.mkdir()
    program.write_text(f'#!/bin/bash\nread -t 1 line; echo "$* | $line" >> {log}\nexit ${{FAKE_MPS_EXIT:-0}}\n')
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{program.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(mps, "daemon_running", lambda: False)
    return log


def calls(log):
    return log.read_text().splitlines() if log.exists() else []


def test_several_cuda_jobs_start_the_daemon_and_stop_it_at_the_end(control):
    said = []
    with mps.daemon_for(CUDA_RUNS, jobs=4, wanted=True, tell=said.append):
        assert calls(control) == ["-d | "]  # started before the jobs
    assert calls(control) == ["-d | ", " | quit"]  # and stopped after them
    assert "started the CUDA MPS daemon for the 4 jobs" in said[0].text


@pytest.mark.parametrize(
    "runs, jobs, wanted",
    [
        (CUDA_RUNS, 1, True),  # one job: nothing to share
        ([SimpleNamespace(device="cpu")], 4, True),  # no GPU in the sweep: as before
        (CUDA_RUNS, 4, False),  # --no-mps
    ],
)
def test_the_daemon_is_left_alone_unless_several_jobs_share_a_gpu(control, runs, jobs, wanted):
    said = []
    with mps.daemon_for(runs, jobs=jobs, wanted=wanted, tell=said.append):
        pass
    assert calls(control) == [] and said == []


def test_a_daemon_already_running_is_left_running(control, monkeypatch):
    monkeypatch.setattr(mps, "daemon_running", lambda: True)
    said = []
    with mps.daemon_for(CUDA_RUNS, jobs=4, wanted=True, tell=said.append):
        pass
    assert calls(control) == [] and "runs already" in said[0].text


def test_a_daemon_that_cannot_start_is_said_and_the_sweep_goes_on(control, monkeypatch):
    monkeypatch.setenv("FAKE_MPS_EXIT", "1")
    said = []
    with mps.daemon_for(CUDA_RUNS, jobs=4, wanted=True, tell=said.append):
        pass
    assert calls(control) == ["-d | "]  # tried once, and no quit for a daemon it did not start
    assert "could not start the CUDA MPS daemon" in said[0].text and "take turns" in said[0].text


def test_without_the_control_program_the_sweep_says_the_jobs_take_turns(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    said = []
    with mps.daemon_for(CUDA_RUNS, jobs=4, wanted=True, tell=said.append):
        pass
    assert "no nvidia-cuda-mps-control on the PATH" in said[0].text


def test_a_daemon_that_keeps_its_output_open_does_not_hold_the_start(control, tmp_path):
    """`-d` forks the daemon, which keeps the descriptors it inherited: the start must not wait on them."""
    import time

    program = tmp_path / "bin" / mps.CONTROL
    program.write_text(f'#!/bin/bash\necho "$* |" >> {control}\nif [ "$1" = -d ]; then sleep 20 & fi\nexit 0\n')
    start = time.monotonic()
    with mps.daemon_for(CUDA_RUNS, jobs=4, wanted=True, tell=lambda notice: None):
        assert time.monotonic() - start < 5
    assert calls(control) == ["-d |", " |"]


def test_the_end_of_a_sweep_waits_until_the_daemon_is_gone(control, monkeypatch):
    """`quit` returns while the daemon shuts down; the next stage's CUDA program must not start meanwhile."""
    left = iter([True, True, True, False])
    monkeypatch.setattr(mps, "daemon_running", lambda: False)
    with mps.daemon_for(CUDA_RUNS, jobs=4, wanted=True, tell=lambda notice: None):
        monkeypatch.setattr(mps, "daemon_running", lambda: next(left))
    assert next(left, "all read") == "all read"  # polled until it was gone


def test_a_daemon_that_does_not_quit_is_said(control, monkeypatch):
    monkeypatch.setattr(mps, "STOP_WAIT_S", 0.3)
    said = []
    with mps.daemon_for(CUDA_RUNS, jobs=4, wanted=True, tell=said.append):
        monkeypatch.setattr(mps, "daemon_running", lambda: True)
    assert "still runs after 0.3 s" in said[-1].text
