"""The CPU paper campaign script: two lanes that never train one run twice nor wait while work is
left, SIGTERM stops it resumable, a second start finishes what is left, and the dropout rule reads
validation from the stored rows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REAL_CORPORA_REASON, real_corpus_dir

from rnnbench import results

REPO = Path(__file__).resolve().parent.parent
# Each run a few steps of a tiny model: the campaign's stages and lanes, not its training, are tested.
TINY = ["--cells", "rnn", "--size-mode", "hidden", "--max-steps", "3"]


def campaign(results_dir: Path, sizes: str, **env_vars: str) -> subprocess.Popen:
    env = (
        os.environ
        | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "NGRAM_ORDER": "1"}
        | env_vars
    )
    return subprocess.Popen(
        ["bash", "benchmarks/cpu_paper_campaign.sh", str(results_dir), sizes, *TINY],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


@pytest.mark.slow
@pytest.mark.skipif(real_corpus_dir() is None, reason=REAL_CORPORA_REASON)
def test_two_lanes_stop_on_sigterm_and_a_second_start_finishes_the_rest(tmp_path):
    first = campaign(tmp_path, "8")
    deadline = time.monotonic() + 120
    while not sweep_rows(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    # As `pkill -f cpu_paper_campaign.sh` does: the script and its two lane subshells all get SIGTERM,
    # and no lane may die leaving its sweep running on.
    script = subprocess.run(["pgrep", "-f", f"cpu_paper_campaign.sh {tmp_path} "], capture_output=True, text=True)
    assert len(script.stdout.split()) == 3, script.stdout  # the script and its two lanes
    for pid in script.stdout.split():
        os.kill(int(pid), signal.SIGTERM)
    first.wait(timeout=120)  # not communicate(): that waits until every holder of its pipe is gone
    assert sweeps_of(tmp_path) == ""
    output, _ = first.communicate(timeout=120)
    assert first.returncode == 75, output
    assert "stopped: run the same command again to go on" in output
    assert 1 <= sweep_rows(tmp_path) < 4

    second = campaign(tmp_path, "8")
    output, _ = second.communicate(timeout=240)
    assert second.returncode == 0, output
    df = results.load(tmp_path)
    # The 1-gram, stored once before the lanes started (the dropout rule reads it), and the runs.
    assert sorted(df[df.kind == "baseline"].order) == [1, 1]  # two smoothings
    df = df[df.kind == "sweep"]
    # RNN 1 layer at dropout 0 and 0.25, 2 and 3 layers at 0; no run twice
    assert len(df) == df.run_id.nunique() == 4
    assert sorted(zip(df["size"], df.num_layers, df.dropout)) == sorted(
        (size, layers, dropout) for size in (8,) for layers, dropout in ((1, 0.0), (1, 0.25), (2, 0.0), (3, 0.0))
    )
    assert (df.status == "ok").all() and (df.split == "chunked").all()


def sweep_rows(results_dir: Path) -> int:
    """The runs stored in `results_dir` (not the n-gram rows stored before them)."""
    return sum('"kind": "sweep"' in path.read_text() for path in (results_dir / "runs").glob("*.json"))


def sweeps_of(results_dir: Path) -> str:
    """The pids of rnnbench sweeps still running on `results_dir`."""
    return subprocess.run(["pgrep", "-f", "--", f"--results-dir {results_dir} "], capture_output=True, text=True).stdout


@pytest.mark.slow
@pytest.mark.skipif(real_corpus_dir() is None, reason=REAL_CORPORA_REASON)
def test_stop_after_ends_the_campaign_as_a_sigterm_would(tmp_path):
    # Its sweeps get no deadline of their own (they would leave a lane idle rather than start a run
    # that cannot finish); the campaign's timer stops them, each saving its state.
    started = time.monotonic()
    first = campaign(tmp_path, "8", STOP_AFTER="6")
    first.wait(timeout=120)
    assert 6 <= time.monotonic() - started < 60
    assert sweeps_of(tmp_path) == ""
    output, _ = first.communicate(timeout=10)
    assert first.returncode == 75, output
    assert "stopped: run the same command again to go on" in output


def with_stand_in(tmp_path: Path, script: str, sizes: str, timeout_s: float, **env_vars: str):
    """The campaign run to its end with `script` as `rnnbench` (a stand-in that trains nothing and logs
    to SWEEP_LOG): only the script's order is under test. Returns the finished process and the log."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "rnnbench").write_text(script)
    (fake / "rnnbench").chmod(0o755)
    log = tmp_path / "sweeps.log"
    path = f"{fake}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    done = subprocess.run(
        ["bash", "benchmarks/cpu_paper_campaign.sh", str(tmp_path / "results"), sizes],
        cwd=REPO,
        env=os.environ | {"PATH": path, "SWEEP_LOG": str(log)} | env_vars,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    return done, log


FAKE_RNNBENCH = """#!/usr/bin/env bash
# Logs each sweep it is asked for. The first sweep of size 8's 1-layer models is a lane's long run: it
# lasts until the other lane has asked for size 128's last check (at most 60 s); every other sweep
# returns at once, as one whose runs are stored or claimed by the other lane does.
echo "start $$ $*" >> "$SWEEP_LOG"
case "$*" in
  *"--sizes 8 "*)
    if [[ "$*" == *"--layers 1 "* ]] && mkdir "$SWEEP_LOG.slow" 2>/dev/null; then
      for _ in $(seq 600); do [ -e "$SWEEP_LOG.reached" ] && break; sleep 0.1; done
      [ -e "$SWEEP_LOG.reached" ] && echo "end slow" >> "$SWEEP_LOG" || echo "end slow, alone" >> "$SWEEP_LOG"
    fi ;;
  *"--sizes 128 "*"--seeds 1"*) touch "$SWEEP_LOG.reached" ;;
esac
"""


@pytest.mark.slow
@pytest.mark.skipif(real_corpus_dir() is None, reason=REAL_CORPORA_REASON)  # the dropout rule plans on it
def test_a_lane_with_nothing_left_goes_on_without_waiting_for_the_other(tmp_path):
    done, log = with_stand_in(tmp_path, FAKE_RNNBENCH, "8,128", 180, RNNBENCH_DATA_DIR=str(real_corpus_dir()))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = log.read_text().splitlines()
    # While one lane trains its long run of size 8, the other goes through size 8's other stages and
    # size 128's, its checks included.
    assert "end slow" in lines, lines
    # The n-gram baselines first, once (the folder has none); then each lane asks for every stage of
    # every size, all on one thread.
    asked = [line.split(" ", 2)[2] for line in lines if line.startswith("start")]
    assert asked[0].startswith("baseline ngram --preset paper --order 20 ")
    assert sum(a.startswith("baseline") for a in asked) == 1
    sweeps = [a for a in asked if a.startswith("sweep")]
    assert all("--jobs 1 --threads 1" in sweep for sweep in sweeps)
    for size in (8, 128):
        assert sum(f"--sizes {size} --layers 1 --dropout 0,0.25" in s for s in sweeps) == 2
        assert sum(f"--sizes {size} --layers 2,3 --dropout 0" in s for s in sweeps) == 2
    assert sum("--grad-clip-mode clamp" in s for s in sweeps) == 2


FAKE_STOPPED_SWEEP = """#!/usr/bin/env bash
# The first sweep asked for trains until SIGTERM (then saves and exits 75, as a sweep does); the
# next one, the other lane's, ends at once with 75, as a sweep stopped from outside the campaign does.
[ "$1" = baseline ] && exit 0  # the n-gram baselines before the lanes: nothing to store here
if mkdir "$SWEEP_LOG.long" 2>/dev/null; then
  trap 'echo "long run stopped" >> "$SWEEP_LOG"; exit 75' TERM
  for _ in $(seq 600); do sleep 0.1; done
  echo "long run ended alone" >> "$SWEEP_LOG"
else
  echo "stopped from outside" >> "$SWEEP_LOG"
  exit 75
fi
"""


def test_a_sweep_stopped_from_outside_stops_the_other_lane_at_once(tmp_path):
    started = time.monotonic()
    done, log = with_stand_in(tmp_path, FAKE_STOPPED_SWEEP, "8", 120)
    assert done.returncode == 75, done.stdout + done.stderr
    assert "stopped: run the same command again to go on" in done.stderr
    assert sorted(log.read_text().splitlines()) == ["long run stopped", "stopped from outside"]
    assert time.monotonic() - started < 30  # not after the long run's 60 s


def dropout_rule():
    import importlib.util

    spec = importlib.util.spec_from_file_location("paper_dropout_choice", REPO / "benchmarks/paper_dropout_choice.py")
    rule = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rule)
    return rule


def test_the_dropout_rule_reads_a_cells_choice_off_its_1_layer_model_unless_a_deeper_one_learned_nothing():
    rule = dropout_rule()
    losses = {  # (cell, layers, dropout) -> validation loss; None: not stored yet
        ("rnn", 1, 0.0): 1.30,
        ("rnn", 1, 0.25): 1.28,  # chose 0.25: its 2- and 3-layer models run at 0.25 too
        ("lstm", 1, 0.0): 1.20,
        ("lstm", 1, 0.25): 1.22,  # chose 0 ...
        ("lstm", 2, 0.0): 1.15,
        ("lstm", 3, 0.0): 3.16,  # ... but its 3-layer model at 0 ends at the characters' frequencies
        ("gru", 1, 0.0): 1.19,
        ("gru", 1, 0.25): None,  # undecided: a lane that gets here early leaves it to the other
        ("gru", 2, 0.0): 1.17,
    }
    sweeps, lines = rule.sweeps_at_0_25(losses, 256, floor=3.13)
    assert sweeps == ["--cells rnn --layers 2,3", "--cells lstm --layers 3"]
    assert "gru 1x256: validation loss at dropout 0: 1.1900, 0.25: not stored" in lines
    assert any(line.startswith("lstm 3x256: validation loss 3.1600 at dropout 0, no lower than") for line in lines)
    # Without a 1-gram stored, only the 1-layer reading is made.
    assert rule.sweeps_at_0_25(losses, 256, floor=None)[0] == ["--cells rnn --layers 2,3"]


@pytest.mark.skipif(real_corpus_dir() is None, reason=REAL_CORPORA_REASON)  # the rule plans on it
def test_the_dropout_rule_finds_the_runs_by_the_identity_a_sweep_gives_them(monkeypatch):
    from types import SimpleNamespace

    from rnnbench.config import load_preset
    from rnnbench.sweep import plan
    from rnnbench.sweep.runs import LocalExecutor

    rule = dropout_rule()
    monkeypatch.setenv("RNNBENCH_DATA_DIR", str(real_corpus_dir()))
    grid = load_preset("paper").replace(sizes=(256,), dropout=(0.0, 0.25), devices=("cpu",), threads=1)
    _, runs = plan(grid, executor=LocalExecutor(1))
    val = {("rnn", 1, 0.0): 1.30, ("rnn", 3, 0.25): 1.28, ("gru", 2, 0.0): 1.19}
    stored = [  # as the sweep stores them
        SimpleNamespace(
            identity=results.identity("sweep", cfg.as_dict(), cfg.hardware),
            status="ok",
            metrics={"val_loss_nats": val[cfg.cell, cfg.num_layers, cfg.train.dropout]},
        )
        for cfg in runs
        if (cfg.cell, cfg.num_layers, cfg.train.dropout) in val
    ]
    monkeypatch.setattr(rule, "iter_records", lambda folder: (stored, []))
    losses = rule.validation_losses("any folder", 256)
    assert {k: v for k, v in losses.items() if v is not None} == val
    assert len(losses) == 18  # 3 cells x 3 depths x 2 dropout values
