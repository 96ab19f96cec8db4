"""Stopping on time for batch schedulers: --stop-after and SIGTERM stop gracefully, and the same
command resumes to the losses of a sweep never stopped."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import pytest
from conftest import TINY, tiny_args
from test_cli import invoke, stored

from rnnbench.sweep.estimate import Estimate, Estimator


def losses_of(folder):
    return {run_id: r.metrics["test_loss_nats"] for run_id, r in stored(folder).items()}


@pytest.mark.slow
def test_stop_after_saves_the_run_in_flight_and_resume_matches_a_run_never_stopped(tiny_text, tmp_path, monkeypatch):
    # An estimate that fits the deadline, so that the run starts and the deadline falls inside it.
    monkeypatch.setattr(Estimator, "estimate", lambda self, cfg: Estimate(0.5, "probe"))
    args = dict(cells="gru", max_steps=1500, eval_every=500)
    whole = tmp_path / "whole"
    assert invoke(tiny_args(tiny_text, whole, **args)).exit_code == 0
    out = tmp_path / "stopped"
    first = invoke(tiny_args(tiny_text, out, **args) + ["--stop-after", "1"])
    assert first.exit_code == 75, first.output
    assert "stopped:" in first.output and "saved their state" in first.output
    assert not stored(out) and list(out.glob("checkpoints/*/latest.pt"))  # nothing finished, state kept
    resumed = invoke(tiny_args(tiny_text, out, **args))
    assert resumed.exit_code == 0, resumed.output
    (record,) = stored(out).values()
    # Stopped at the step in progress (not at an evaluation), and continued from exactly there.
    assert record.metrics["resumed_at_steps"][0] > 0
    assert losses_of(out) == losses_of(whole)


@pytest.mark.slow
def test_sigterm_stops_every_job_and_resume_matches_a_sweep_never_stopped(tiny_text, tmp_path):
    whole, out = tmp_path / "whole", tmp_path / "stopped"
    command = [sys.executable, "-m", "rnnbench"]

    def sweep(folder):
        return command + tiny_args(tiny_text, folder, max_steps=600, eval_every=150) + ["--jobs", "2", "--threads", "1"]

    # The sweep never stopped runs in this process (one thread, as each job of the others).
    assert invoke(tiny_args(tiny_text, whole, max_steps=600, eval_every=150) + ["--threads", "1"]).exit_code == 0
    running = subprocess.Popen(sweep(out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not list(out.glob("checkpoints/*/latest.pt")):  # runs are under way
        assert running.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    running.send_signal(signal.SIGTERM)  # what Slurm sends before a time limit
    output, _ = running.communicate(timeout=60)
    assert running.returncode == 75, output
    assert "stopped:" in output and "Traceback" not in output
    assert "run(s) left, without an estimate" in output  # no deadline, so no plan: no "about 0 s"
    resumed = subprocess.run(sweep(out), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert any(r.metrics["resumed_at_steps"] for r in stored(out).values())
    assert losses_of(out) == losses_of(whole)


def test_a_run_stopped_part_way_trains_first_when_the_sweep_starts_again(tiny_text, tmp_path, monkeypatch):
    """Its row lands soonest, and its saved state stops being the only copy of the work."""
    monkeypatch.setattr(Estimator, "estimate", lambda self, cfg: Estimate(0.5, "probe"))
    out, long = tmp_path / "r", dict(max_steps=1500, eval_every=500)  # a run that the stop falls inside

    def planned() -> list[str]:  # the run ids of the plan's table, in its order
        result = invoke(tiny_args(tiny_text, out, **long) + ["--plan"])
        assert result.exit_code == 0, result.output
        return re.findall(r"│ ([0-9a-f]{12}) │", result.output)

    fresh = planned()
    assert len(fresh) == 3
    stopped = invoke(tiny_args(tiny_text, out, cells=TINY["cells"].split(",")[-1], **long) + ["--stop-after", "1"])
    assert stopped.exit_code == 75, stopped.output
    (saved,) = [p.parent.name for p in out.glob("checkpoints/*/latest.pt")]
    assert fresh[0] != saved  # the grid's order would train it last
    assert planned() == [saved] + [run for run in fresh if run != saved]
