"""Checkpoints, exact resume of an interrupted run, and `rnnbench sample`."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from conftest import tiny_args, without_clock
from typer.testing import CliRunner

from rnnbench import files
from rnnbench.cli import app
from rnnbench.config import Grid
from rnnbench.core import checkpoint
from rnnbench.core.data import Corpus
from rnnbench.core.synthetic import generate
from rnnbench.core.train import train
from rnnbench.errors import UsageError

CORPUS = Corpus("tiny", generate(40_000, seed=2), "test")
runner = CliRunner()


def config(**changes):
    values = dict(
        dataset="tiny",
        cells=("lstm",),
        layers=(2,),
        sizes=(24,),
        size_mode="hidden",
        devices=("cpu",),
        batch_size=16,
        seq_len=32,
        max_steps=100,
        eval_every_steps=10,
        lr=0.01,
        dropout=0.1,
    )
    values.update(changes)
    return Grid.from_settings(**values).expand(CORPUS.sha256)[0]


# 70: after an epoch boundary (62 steps); each clipping acts on some steps and not on others
@pytest.mark.parametrize("cell, stop_at, clipping", [("lstm", 40, "norm"), ("gru", 70, "clamp")])
def test_interrupted_run_resumes_to_the_same_losses(tmp_path, cell, stop_at, clipping):
    cfg = config(cells=(cell,), grad_clip_mode=clipping, grad_clip=0.3 if clipping == "norm" else 3.0)
    uninterrupted = train(cfg, CORPUS)

    def interrupt(progress):
        if progress.step == stop_at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, CORPUS, interrupt, tmp_path)
    assert (tmp_path / "latest.pt").exists() and (tmp_path / "best.pt").exists()
    resumed = train(cfg, CORPUS, None, tmp_path)
    assert resumed.metrics["resumed_at_steps"] == [stop_at - 10 if stop_at == 40 else 62]
    # Bitwise on the CPU: weights, optimizer, hidden state, data position and RNG all came back.
    assert without_clock(resumed.curve) == without_clock(uninterrupted.curve)
    assert resumed.metrics["test_loss_nats"] == uninterrupted.metrics["test_loss_nats"]
    assert resumed.metrics["steps"] == 100 and resumed.metrics["n_timed_steps"] > 60
    assert 0 < resumed.metrics["clipped_steps"] == uninterrupted.metrics["clipped_steps"] < 100


def test_best_checkpoint_holds_the_best_weights(tmp_path):
    result = train(config(), CORPUS, None, tmp_path)
    best = checkpoint.load(tmp_path / "best.pt")
    assert best["kind"] == "best" and best["step"] == result.metrics["best_step"]
    assert best["val_loss_nats"] == result.metrics["val_loss_nats"]
    assert best["vocab"] == list(CORPUS.vocab) and best["config"]["cell"] == "lstm"
    assert all(t.device.type == "cpu" for t in best["model"].values())
    assert result.metrics["checkpoint_s"] > 0 and result.metrics["checkpoint_mb_written"] > 0


def test_a_kill_during_a_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "latest.pt"
    checkpoint.save(path, {"kind": "best", "run_id": "a", "config": {}, "vocab": [1], "hidden_size": 1, "model": {}})

    def killed(*args):
        raise KeyboardInterrupt  # the process dies between writing the temporary file and renaming it

    monkeypatch.setattr(files.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(
            path, {"kind": "best", "run_id": "b", "config": {}, "vocab": [1], "hidden_size": 1, "model": {}}
        )
    monkeypatch.undo()
    assert checkpoint.load(path)["run_id"] == "a"
    # A hidden temporary file may stay behind (a killed process cannot clean up); nothing else.
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == ["latest.pt"]


def test_corrupt_and_foreign_checkpoints_are_usage_errors(tmp_path):
    cut = tmp_path / "cut.pt"
    checkpoint.save(cut, {"kind": "best", "run_id": "a", "config": {}, "vocab": [1], "hidden_size": 1, "model": {}})
    cut.write_bytes(cut.read_bytes()[:100])
    with pytest.raises(UsageError, match="not a readable checkpoint"):
        checkpoint.load(cut)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(UsageError, match="not an rnnbench checkpoint"):
        checkpoint.load(foreign)


# --- through the CLI ------------------------------------------------------------------------------


@pytest.fixture
def trained(tiny_text, tmp_path):
    out = tmp_path / "results"
    result = runner.invoke(app, tiny_args(tiny_text, out, cells="lstm", max_steps=60, lr=0.01))
    assert result.exit_code == 0, result.output
    run_id = next((out / "checkpoints").iterdir()).name
    assert not (out / "checkpoints" / run_id / "latest.pt").exists()  # finished: only best.pt stays
    return out, run_id


def sample(out, run_id, *args):
    result = runner.invoke(app, ["sample", run_id, "--results-dir", str(out), *args])
    assert "Traceback" not in result.output
    return result


def entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(c / len(text) * math.log(c / len(text)) for c in counts.values())


def test_sample_is_seeded_and_temperature_shapes_it(trained):
    out, run_id = trained
    a = sample(out, run_id, "--seed", "3", "--length", "300")
    assert a.exit_code == 0, a.output
    assert a.stdout == sample(out, run_id, "--seed", "3", "--length", "300").stdout
    assert a.stdout != sample(out, run_id, "--seed", "4", "--length", "300").stdout
    assert len(a.stdout) == 1 + 300 + 1  # the default prime, the text, a final newline
    cold = sample(out, run_id, "--temperature", "0.3", "--length", "2000").stdout
    hot = sample(out, run_id, "--temperature", "2.0", "--length", "2000").stdout
    assert entropy(cold) < entropy(hot)
    greedy = sample(out, run_id, "--greedy", "--length", "100", "--seed", "1").stdout
    assert greedy == sample(out, run_id, "--greedy", "--length", "100", "--seed", "2").stdout
    primed = sample(out, run_id, "--prime", "begin ", "--length", "20").stdout
    assert primed.startswith("begin ")
    by_path = sample(out, str(out / "checkpoints" / run_id / "best.pt"), "--seed", "3", "--length", "300")
    assert by_path.stdout == a.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--temperature", "0"], "temperature must be above 0"),
        (["--prime", "é€"], "2 character(s) the model never saw: 'é', '€'"),
        (["--length", "0"], "Invalid value for '--length'"),
    ],
)
def test_bad_sample_input_is_exit_2(trained, args, message):
    out, run_id = trained
    result = sample(out, run_id, *args)
    assert result.exit_code == 2 and message in result.output


def test_unknown_run_suggests_close_matches(trained):
    out, run_id = trained
    typo = run_id[:-1] + ("0" if run_id[-1] != "0" else "1")
    assert run_id in sample(out, typo).output


def test_corrupt_checkpoint_through_the_cli(trained):
    out, run_id = trained
    path = out / "checkpoints" / run_id / "best.pt"
    path.write_bytes(b"garbage")
    result = sample(out, run_id)
    assert result.exit_code == 2 and "not a readable checkpoint" in result.output


def test_no_save_checkpoints_writes_none(tiny_text, tmp_path):
    out = tmp_path / "results"
    result = runner.invoke(app, tiny_args(tiny_text, out, cells="gru") + ["--no-save-checkpoints"])
    assert result.exit_code == 0 and not (out / "checkpoints").exists()


def test_a_sweep_interrupted_mid_run_continues_that_run(tiny_text, tmp_path, monkeypatch):
    from rnnbench import results
    from rnnbench.sweep import runs

    out = tmp_path / "results"
    real_train = runs.train

    def interrupted_at_step_20(cfg, corpus, on_progress, folder, *args):
        def hook(progress):
            if progress.step == 20:
                raise KeyboardInterrupt

        return real_train(cfg, corpus, hook, folder, *args)

    monkeypatch.setattr(runs, "train", interrupted_at_step_20)
    args = tiny_args(tiny_text, out, cells="gru", max_steps=30, eval_every=5)
    assert runner.invoke(app, args).exit_code == 130
    # what a plan reads of it (sweep.estimate: the rest at its own pace), from the file as it was written
    (run_dir,) = (out / "checkpoints").iterdir()
    saved = checkpoint.RunFiles(run_dir).saved_progress()
    assert saved.step == 15 and 0 < len(saved.step_samples_s) <= 15 and min(saved.step_samples_s) > 0
    assert saved.eval_chars > 0 and saved.eval_s > 0
    monkeypatch.setattr(runs, "train", real_train)
    assert runner.invoke(app, args).exit_code == 0
    (record,) = results.iter_records(out)[0]
    assert record.metrics["resumed_at_steps"] == [15] and record.metrics["steps"] == 30


def test_a_unique_prefix_names_a_run_and_the_results_folder_comes_from_the_environment(trained, monkeypatch):
    out, run_id = trained
    whole = sample(out, run_id, "--seed", "3", "--length", "50")
    short = sample(out, run_id[:4], "--seed", "3", "--length", "50")
    assert short.exit_code == 0 and short.stdout == whole.stdout
    (out / "checkpoints" / (run_id[:4] + "ffffffff")).mkdir()
    (out / "checkpoints" / (run_id[:4] + "ffffffff") / "best.pt").write_bytes(b"x")
    ambiguous = sample(out, run_id[:4])
    assert ambiguous.exit_code == 2 and "is the start of 2 run ids" in ambiguous.output and run_id in ambiguous.output
    monkeypatch.setenv("RNNBENCH_RESULTS_DIR", str(out))
    from_env = runner.invoke(app, ["sample", run_id, "--seed", "3", "--length", "50"])
    assert from_env.exit_code == 0 and from_env.stdout == whole.stdout


def test_the_fast_sampler_steps_as_the_fused_module_does():
    from rnnbench.core.models import CharRNN
    from rnnbench.measure.sample import Stepper, layer_states

    torch.manual_seed(0)
    for cell, gru_reset in (("lstm", "after"), ("gru", "after"), ("rnn", "after"), ("gru", "before")):
        model = CharRNN(20, cell, 32, 2, gru_reset=gru_reset).eval()
        seq = torch.randint(0, 20, (1, 12))
        with torch.no_grad():
            full, _ = model(seq)
            _, state = model(seq[:, :4])
            states, step = layer_states(model, state), Stepper(model)
            for t in range(4, 12):
                logits = step(torch.nn.functional.one_hot(seq[:, t], 20).float(), states)
                assert torch.allclose(logits, full[:, t], atol=1e-5), (cell, gru_reset)
