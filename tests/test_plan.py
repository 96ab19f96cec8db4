"""Planning a sweep from measurements: estimates from stored rows or a probe, --plan, and a deadline
that never starts a run it cannot finish."""

from __future__ import annotations

import re

import pytest
from conftest import tiny_args, tiny_grid
from typer.testing import CliRunner

from rnnbench import results
from rnnbench.cli import app
from rnnbench.sweep import estimate as estimates
from rnnbench.sweep.estimate import Estimate, lanes_wall_s

runner = CliRunner()


def test_plan_trains_nothing_and_estimates_from_a_probe_then_from_stored_rows(tiny_text, tmp_path):
    out = tmp_path / "results"
    planned = runner.invoke(app, [*tiny_args(tiny_text, out), "--plan"])
    assert planned.exit_code == 0, planned.output
    assert "plan: 3 run(s) to train, 0 stored already" in planned.output and planned.output.count("probe") >= 3
    assert not (out / "runs").exists()  # nothing trained; only the probes are kept
    assert len(results.ResultsFolder(out).probes()) == 3
    assert runner.invoke(app, tiny_args(tiny_text, out)).exit_code == 0
    stored = results.load(out)
    # The same models at another seed: their shapes are stored now, so no probe is needed.
    again = runner.invoke(app, [*tiny_args(tiny_text, out), "--seeds", "0,1", "--plan"])
    assert "plan: 3 run(s) to train, 3 stored already" in again.output and "stored" in again.output
    assert "probe" not in again.output.split("┃ from")[-1]
    # Each stored row carries what was expected of it beside what it took: the first runs the plan's
    # probes (kept in the folder, not measured again), the next ones the stored rows'.
    assert set(stored.estimate_source) == {"probe"} and (stored.estimated_s > 0).all()
    assert runner.invoke(app, [*tiny_args(tiny_text, out), "--seeds", "1"]).exit_code == 0
    second = results.load(out)
    second = second[second.seed == 1]
    assert set(second.estimate_source) == {"stored"} and (second.estimated_s > 0).all()
    # and per step, by which a run resumed or stopped early is judged: the stored rows' step time
    assert (stored.estimated_step_ms > 0).all()
    expected = stored.set_index("cell").step_ms_median.to_dict()
    assert second.set_index("cell").estimated_step_ms.to_dict() == pytest.approx(expected)


def test_the_plan_lists_a_stopped_run_first_with_the_steps_it_has_done(tiny_text, tmp_path):
    out = tmp_path / "results"
    first = runner.invoke(app, [*tiny_args(tiny_text, out), "--plan"])
    last = re.findall(r"│ ([0-9a-f]{12}) │", first.output)[-1]
    results.ResultsFolder(out).run_files(last).save_latest({"run_id": last, "step": 7})  # as a stop leaves it
    again = runner.invoke(app, [*tiny_args(tiny_text, out), "--plan"])
    rows = [line for line in again.output.splitlines() if re.search(r"│ [0-9a-f]{12} │", line)]
    assert last in rows[0] and "20 (7 done)" in rows[0], again.output
    assert not any("done" in row for row in rows[1:])


def test_a_plan_whose_cpu_runs_outnumber_the_cores_says_what_fits(tiny_text, tmp_path, monkeypatch):
    # The paper preset's 8 jobs, meant for a GPU, on a 2-core CPU: the plan's wall time assumes the
    # runs do not slow each other, so it says so, and what to give instead.
    from rnnbench.sweep import driver

    monkeypatch.setattr(driver.os, "cpu_count", lambda: 2)
    out = tmp_path / "results"
    crowded = runner.invoke(app, [*tiny_args(tiny_text, out), "--jobs", "8", "--threads", "1", "--plan"])
    assert crowded.exit_code == 0, crowded.output
    assert "slow each other down; use --jobs 2 --threads 1" in crowded.output
    fits = runner.invoke(app, [*tiny_args(tiny_text, out), "--jobs", "2", "--threads", "1", "--plan"])
    assert fits.exit_code == 0 and "slow each other down" not in fits.output


def test_the_estimate_of_a_run_is_its_steps_times_its_step_time_plus_its_evaluations(tiny_text, tmp_path):
    from rnnbench.core.data import load_corpus
    from rnnbench.results import ResultsFolder

    corpus = load_corpus(str(tiny_text))
    grid = tiny_grid(tiny_text, cells=("gru",), max_steps=300, eval_every_steps=100, time_budget_s=1e6)
    cfg = grid.expand(corpus.sha256, dataset_name=corpus.name)[0]
    estimator = estimates.Estimator(ResultsFolder(tmp_path), corpus, probe_steps=5)
    e = estimator.estimate(cfg)
    assert e.source == "probe" and e.steps == 300 and e.seconds == e.steps * e.step_s + e.eval_s
    capped = estimator.estimate(grid.replace(time_budget_s=0.001).expand(corpus.sha256, dataset_name=corpus.name)[0])
    assert capped.seconds == 0.001  # a time budget bounds it
    # Without probing: the probe kept in the folder, else only the time budget.
    assert estimates.Estimator(ResultsFolder(tmp_path), corpus, probe=False).estimate(cfg).source == "probe"
    elsewhere = ResultsFolder(tmp_path / "elsewhere")
    assert estimates.Estimator(elsewhere, corpus, probe=False).estimate(cfg).source == "time budget"
    # A run stopped at step 200 (its saved state) has 100 steps left, and one evaluation interval.
    ResultsFolder(tmp_path).run_files(cfg.run_id).save_latest({"run_id": cfg.run_id, "step": 200})
    resumed = estimator.estimate(cfg)
    assert resumed.done_steps == 200 and resumed.seconds == 100 * e.step_s + resumed.eval_s
    assert 0 < resumed.eval_s < e.eval_s
    restarted = estimates.Estimator(ResultsFolder(tmp_path), corpus, probe_steps=5, resume=False).estimate(cfg)
    assert restarted.done_steps == 0 and restarted.steps == 300  # --force starts it over
    # A stopped run that timed enough steps is estimated at its own pace, as loaded as it was,
    # rather than the probe's: the median of its steps, and its evaluations' rate.
    few = {"step_samples_s": [0.5] * (estimates.OWN_MIN_STEPS - 1), "eval_chars": 1000, "eval_s": 2.0}
    ResultsFolder(tmp_path).run_files(cfg.run_id).save_latest({"run_id": cfg.run_id, "step": 200, "loop": few})
    assert estimator.estimate(cfg).source == "probe"  # too few to go by
    timed = [0.5] * estimates.OWN_MIN_STEPS + [9.0]
    loop = {"step_samples_s": timed, "eval_chars": 1000, "eval_s": 2.0}
    ResultsFolder(tmp_path).run_files(cfg.run_id).save_latest({"run_id": cfg.run_id, "step": 200, "loop": loop})
    own = estimator.estimate(cfg)
    assert (own.source, own.done_steps, own.step_s) == ("so far", 200, 0.5)
    probed_rate = estimator.measured[estimates.shape(cfg, corpus.vocab_size)][1]
    assert own.eval_s * (1000 / 2.0) == pytest.approx(resumed.eval_s * probed_rate)  # the same characters
    assert own.seconds == 100 * 0.5 + own.eval_s
    # even where nothing else knows its shape (no rows, no probe kept, no probing)
    elsewhere.run_files(cfg.run_id).save_latest({"run_id": cfg.run_id, "step": 200, "loop": loop})
    alone = estimates.Estimator(elsewhere, corpus, probe=False).estimate(cfg)
    assert (alone.source, alone.seconds) == ("so far", own.seconds)


def test_runs_on_lanes_longest_first():
    assert lanes_wall_s([5, 1, 3, 3], 2) == 6  # 5 + 1 on one lane, 3 + 3 on the other
    assert lanes_wall_s([5, 1, 3, 3], 1) == 12 and lanes_wall_s([], 4) == 0


def fixed_estimates(monkeypatch, seconds: dict[str, float]):
    """Every run's estimate by its cell, instead of a probe."""

    def estimate(self, cfg):
        return Estimate(seconds[cfg.cell], "probe", 20, seconds[cfg.cell] / 20, 0.0)

    monkeypatch.setattr(estimates.Estimator, "estimate", estimate)


def test_a_deadline_starts_the_longest_runs_first_and_never_one_that_cannot_finish(tiny_text, tmp_path, monkeypatch):
    fixed_estimates(monkeypatch, {"rnn": 2.0, "lstm": 10_000.0, "gru": 5.0})
    out = tmp_path / "results"
    result = runner.invoke(app, [*tiny_args(tiny_text, out), "--stop-after", "120"])
    assert result.exit_code == 75, result.output  # stopped, resumable
    assert "would not finish before the deadline" in result.output
    assert "1 run(s) left, about 2.8 hours of device time" in result.output  # the closing line
    stored = results.load(out)
    assert sorted(stored.cell) == ["gru", "rnn"]
    # One run at a time, so the order in which they finished is the order in which they started
    # (started_at has whole seconds: two short runs share one).
    finished = re.findall(r"\b(gru|rnn|lstm) \d+x\d+ .*: test", result.output)
    assert finished == ["gru", "rnn"]  # the longest that fits first
    assert stored.set_index("cell").estimated_s.to_dict() == {"gru": 5.0, "rnn": 2.0}
    # Without a deadline every run trains, and the same command continues where the last stopped.
    monkeypatch.setattr(estimates.Estimator, "estimate", lambda self, cfg: Estimate(1.0, "probe"))
    assert runner.invoke(app, tiny_args(tiny_text, out)).exit_code == 0
    assert sorted(results.load(out).cell) == ["gru", "lstm", "rnn"]


def test_a_probe_is_measured_once_per_shape_and_kept_for_the_next_plan(tiny_text, tmp_path, monkeypatch):
    out = tmp_path / "results"
    probed = []
    real = estimates.Estimator._probe
    monkeypatch.setattr(estimates.Estimator, "_probe", lambda self, cfg: probed.append(cfg) or real(self, cfg))
    monkeypatch.setattr(estimates, "busy_cores", lambda: 0.1)  # other processes' load on the cores
    first = runner.invoke(app, [*tiny_args(tiny_text, out), "--seeds", "0,1", "--plan"])
    assert first.exit_code == 0 and len(probed) == 3  # six runs, three shapes
    assert {p["other_cpu_cores"] for p in results.ResultsFolder(out).probes().values()} == {0.1}
    second = runner.invoke(app, [*tiny_args(tiny_text, out), "--plan"])
    assert second.exit_code == 0 and len(probed) == 3 and second.output.count("probe") >= 3
    assert "rest on probes taken while" not in second.output
    # On cores loaded otherwise (a test suite beside it, now gone), a kept probe would mislead: again,
    # and the plan says its probes ran beside other work.
    monkeypatch.setattr(estimates, "busy_cores", lambda: 0.1 + estimates.BUSY_CORES)
    third = runner.invoke(app, [*tiny_args(tiny_text, out), "--plan"])
    assert third.exit_code == 0 and len(probed) == 6
    assert "3 estimate(s) rest on probes taken while other processes kept up to 0.6 cores busy" in third.output
    # and a sweep, which does not probe without a deadline, takes what is kept
    monkeypatch.setattr(estimates.Estimator, "_probe", lambda self, cfg: pytest.fail("a sweep probed"))
    monkeypatch.setattr(estimates, "busy_cores", lambda: 1.9)
    assert runner.invoke(app, tiny_args(tiny_text, out)).exit_code == 0
    assert set(results.load(out).estimate_source) == {"probe"}


class FixedTimer:
    """A StepTimer whose every kept step took `step_s` (the probe's decisions, not this machine's speed)."""

    step_s = 0.0

    def __init__(self, device, warmup=0):
        self.warmup, self.seen = warmup, 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.seen += 1

    def samples_s(self):
        return [FixedTimer.step_s] * max(0, self.seen - self.warmup)


def test_a_slow_shape_is_probed_at_a_quarter_of_its_sequence_and_scaled(tiny_text, monkeypatch):
    from rnnbench.config import Grid
    from rnnbench.core.data import load_corpus

    corpus = load_corpus(str(tiny_text))
    grid = Grid.from_settings(dataset=str(tiny_text), cells=("gru",), layers=(1,), sizes=(16,), size_mode="hidden")
    cfg = grid.replace(devices=("cpu",), batch_size=8, seq_len=100).expand(corpus.sha256)[0]
    lengths = []
    monkeypatch.setattr(estimates, "StepTimer", FixedTimer)
    monkeypatch.setattr(
        estimates, "train_step", lambda model, opt, x, y, carried, clip: lengths.append(x.size(1)) or (None, None)
    )
    FixedTimer.step_s = 0.4  # a slow shape: its short steps take PROBE_SLOW_STEP_S or more
    step_s, _ = estimates.probe(cfg, corpus)
    assert lengths == [estimates.PROBE_SHORT_LEN] * (estimates.PROBE_WARMUP + estimates.PROBE_MIN_STEPS)
    assert step_s == 0.4 * 100 / estimates.PROBE_SHORT_LEN  # its steps timed short, scaled to the run's
    lengths.clear()
    FixedTimer.step_s = 0.1  # a fast one: timed at its own length, after a warm-up step of it
    step_s, _ = estimates.probe(cfg, corpus)
    short = [estimates.PROBE_SHORT_LEN] * (estimates.PROBE_WARMUP + 1)
    assert lengths == short + [100] * (estimates.PROBE_WARMUP + 5) and step_s == 0.1  # 5 x 0.1 s: PROBE_TIME_S
