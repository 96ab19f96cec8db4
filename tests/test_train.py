"""Training: loss falls for every cell, runs repeat with a seed, budgets stop, divergence is kept."""

from __future__ import annotations

import math

import pytest

from rnnbench.config import Grid
from rnnbench.core.data import Corpus
from rnnbench.core.models import CELLS
from rnnbench.core.synthetic import generate
from rnnbench.core.train import evaluate, train

CORPUS = Corpus("tiny", generate(40_000, seed=2), "test")


def config(**changes):
    values = dict(
        dataset="tiny",
        cells=("lstm",),
        layers=(1,),
        sizes=(32,),
        size_mode="hidden",
        devices=("cpu",),
        batch_size=8,
        seq_len=32,
        max_steps=60,
        eval_every_steps=20,
        lr=0.01,
        warmup_steps=2,
    )
    values.update(changes)
    return Grid.from_settings(**values).expand(CORPUS.sha256)[0]


@pytest.mark.parametrize("cell", list(CELLS))
def test_loss_falls_for_every_cell(cell):
    result = train(config(cells=(cell,)), CORPUS)
    assert result.status == "ok"
    uniform = math.log(CORPUS.vocab_size)
    first, last = result.curve[0]["val_loss_nats"], result.curve[-1]["val_loss_nats"]
    assert last < first < uniform
    m = result.metrics
    assert m["test_loss_nats"] < 0.8 * uniform
    assert m["test_bpc"] == pytest.approx(m["test_loss_nats"] / math.log(2))


def test_metrics_are_complete_and_consistent():
    m = train(config(), CORPUS).metrics
    assert m["steps"] == 60 and m["chars_trained"] == 60 * 8 * 32 and m["stop_reason"] == "max_steps"
    assert m["n_timed_steps"] == 58  # warm-up steps are not timed
    assert m["step_ms_q1"] <= m["step_ms_median"] <= m["step_ms_q3"]
    assert m["train_chars_per_s"] == pytest.approx(8 * 32 / (m["step_ms_median"] / 1e3))
    assert m["train_chars_per_s_iqr"] > 0  # 58 timed steps are never all equally long
    assert m["achieved_gflops"] == pytest.approx(m["flops_per_char"] * m["train_chars_per_s"] / 1e9)
    assert m["peak_rss_mb"] > 50 and m["peak_cuda_mb"] is None
    assert m["val_loss_nats"] == min(p["val_loss_nats"] for p in train(config(), CORPUS).curve)


def test_same_seed_same_losses_other_seed_differs():
    a, b, c = (train(config(seeds=(s,)), CORPUS).metrics for s in (0, 0, 1))
    assert a["test_loss_nats"] == b["test_loss_nats"]
    assert a["test_loss_nats"] != c["test_loss_nats"]


def test_budgets_stop_training():
    m = train(config(max_steps=None, max_chars=8 * 32 * 15 - 1), CORPUS).metrics
    assert m["steps"] == 15 and m["stop_reason"] == "max_chars"
    m = train(config(max_steps=None, epochs=1), CORPUS).metrics
    assert m["stop_reason"] == "epochs" and m["epochs_trained"] == 1.0
    m = train(config(max_steps=None, epochs=None, time_budget_s=0.5), CORPUS).metrics
    assert m["stop_reason"] == "time_budget" and m["wall_s"] < 5


def test_early_stopping_on_validation():
    # A learning rate this high makes validation loss stop improving quickly.
    result = train(config(max_steps=2000, eval_every_steps=5, patience_evals=2, lr=0.5, cells=("rnn",)), CORPUS)
    m, vals = result.metrics, [p["val_loss_nats"] for p in result.curve]
    assert m["stop_reason"] == "early_stop" and m["steps"] < 2000
    # Stopped after `patience` evaluations no better than the best; the best weights were tested.
    assert min(vals[-2:]) >= min(vals[:-2]) and m["val_loss_nats"] == min(vals)


def test_divergence_is_a_status_not_an_exception():
    # RMSProp normalises the gradient, so only a step near float32's largest number makes the
    # weights' products overflow (an infinite one is out of --lr's range).
    result = train(config(lr=1e38, cells=("rnn",)), CORPUS)
    assert result.status == "diverged"
    assert math.isnan(result.metrics["test_loss_nats"])


def test_evaluate_scores_every_character_but_the_last_of_each_stream():
    from rnnbench.core.data import streams
    from rnnbench.core.models import CharRNN

    model = CharRNN(CORPUS.vocab_size, "gru", 8, 1)
    data = streams(CORPUS.splits()["val"], 4)
    loss, n_chars, seconds = evaluate(model, data, seq_len=7)
    assert n_chars == 4 * (data.size(1) - 1)
    assert loss == pytest.approx(math.log(CORPUS.vocab_size), rel=0.05)  # untrained: near uniform


@pytest.mark.slow
def test_synthetic_corpus_separates_gated_cells_from_the_vanilla_rnn():
    """The smoke preset's claim, at its settings for one layer: memory pays on `synthetic`."""
    from rnnbench.config import load_preset
    from rnnbench.core.data import load_corpus

    corpus = load_corpus("synthetic")
    grid = load_preset("smoke").replace(cells=("rnn", "lstm"), layers=(1,))
    loss = {cfg.cell: train(cfg, corpus).metrics["test_loss_nats"] for cfg in grid.expand(corpus.sha256, ("cpu",))}
    assert loss["lstm"] < loss["rnn"] - 0.02


def test_a_chunked_run_trains_bit_for_bit_as_a_contiguous_run_on_the_text_rearranged_by_hand(tmp_path):
    """char-rnn's layout, by hand: each of 8 rows of 20 chunks of 16 bytes is cut into 16 train, 2
    val and 2 test chunks; the file of every row's train part, then every val part, then every
    test part, split contiguously 80/10/10, is the same streams; so are the whole run's losses."""
    batch, seq, chunks = 8, 16, 20
    text = generate(batch * seq * chunks, seed=5)
    row = seq * chunks
    rows = [text[b * row : (b + 1) * row] for b in range(batch)]
    rearranged = (
        b"".join(r[: 16 * seq] for r in rows)
        + b"".join(r[16 * seq : 18 * seq] for r in rows)
        + b"".join(r[18 * seq :] for r in rows)
    )
    chunked, contiguous = Corpus("t", text, "test"), Corpus("t", rearranged, "test")
    assert chunked.vocab == contiguous.vocab
    runs = {}
    for name, corpus, split in (("chunked", chunked, "chunked"), ("contiguous", contiguous, "contiguous")):
        cfg = Grid.from_settings(
            dataset="t",
            cells=("lstm",),
            layers=(2,),
            sizes=(16,),
            size_mode="hidden",
            devices=("cpu",),
            batch_size=batch,
            seq_len=seq,
            max_steps=40,
            eval_every_steps=10,
            split=split,
        ).expand(corpus.sha256)[0]
        runs[name] = train(cfg, corpus)
    a, b = runs["chunked"], runs["contiguous"]
    assert [(p["step"], p["train_loss_nats"], p["val_loss_nats"]) for p in a.curve] == [
        (p["step"], p["train_loss_nats"], p["val_loss_nats"]) for p in b.curve
    ]
    assert a.metrics["test_loss_nats"] == b.metrics["test_loss_nats"]
    assert a.metrics["steps"] == 40 and len(a.curve) >= 4  # several epochs of 15 steps: state across them
    assert [a.metrics[f"{s}_split_bytes"] for s in ("train", "val", "test")] == [2048, 256, 256]


def test_the_layout_and_the_initialisation_are_part_of_the_run_identity():
    ids = {
        config(**change).run_id
        for change in (
            {},
            {"split": "chunked"},
            {"train_fraction": 0.7},
            {"lstm_forget_bias": "uniform"},
            {"gru_reset": "before"},
            {"grad_clip_mode": "clamp"},
        )
    }
    assert len(ids) == 6


@pytest.mark.parametrize(
    "setting, value",
    [("split", "shuffled"), ("lstm_forget_bias", "2"), ("gru_reset", "middle"), ("grad_clip_mode", "value")],
)
def test_unknown_choices_are_usage_errors(setting, value):
    from rnnbench.errors import UsageError

    with pytest.raises(UsageError, match=f"unknown {setting} '{value}'"):
        config(**{setting: value})


def test_the_reset_before_gru_trains_and_its_loss_falls():
    result = train(config(cells=("gru",), layers=(2,), gru_reset="before", dropout=0.1), CORPUS)
    assert result.status == "ok"
    assert result.curve[-1]["val_loss_nats"] < result.curve[0]["val_loss_nats"] < math.log(CORPUS.vocab_size)


def _gradients(model, x, y, time_summed: bool) -> list:
    """The gradient of the mean loss, or of char-rnn's loss: each step's batch-mean loss, added up."""
    import torch.nn.functional as F

    model.zero_grad(set_to_none=True)
    logits, _ = model(x)
    if time_summed:
        loss = sum(F.cross_entropy(logits[:, t], y[:, t]) for t in range(x.size(1)))
    else:
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
    loss.backward()
    return [p.grad.clone() for p in model.parameters()]


def test_clamp_clips_each_element_of_the_time_summed_gradient_as_char_rnn_did():
    import torch

    from rnnbench.core.models import CharRNN
    from rnnbench.core.train import GradClip

    torch.manual_seed(0)
    model = CharRNN(CORPUS.vocab_size, "rnn", 16, 2)
    data = CORPUS.encode()[: 4 * 21].reshape(4, 21).long()
    x, y = data[:, :-1], data[:, 1:]
    summed = _gradients(model, x, y, time_summed=True)
    largest = max(g.abs().max().item() for g in summed)
    for threshold, acted in ((largest / 4, 1), (largest * 2, 0)):
        expected = [g.clamp(-threshold, threshold) for g in summed]
        _gradients(model, x, y, time_summed=False)
        clip = GradClip("clamp", threshold, seq_len=20, device="cpu")
        clip(model.parameters())
        for p, e in zip(model.parameters(), expected):
            torch.testing.assert_close(p.grad, e)
        assert int(clip.acted_steps) == acted
    assert any((e.abs() < largest / 4).any() for e in summed)  # the clamp left some elements alone


def test_norm_clipping_counts_only_the_steps_it_scaled():
    import torch

    from rnnbench.core.train import GradClip

    param = torch.nn.Parameter(torch.zeros(2))
    clip = GradClip("norm", 5.0, seq_len=100, device="cpu")
    for grad, after in (([3.0, 4.0], [3.0, 4.0]), ([6.0, 8.0], [3.0, 4.0]), ([0.3, 0.4], [0.3, 0.4])):
        param.grad = torch.tensor(grad)
        clip([param])
        torch.testing.assert_close(param.grad, torch.tensor(after))
    assert int(clip.acted_steps) == 1


@pytest.mark.parametrize("mode", ["norm", "clamp"])
def test_a_run_records_the_share_of_steps_its_clipping_changed(mode):
    always = train(config(grad_clip_mode=mode, grad_clip=1e-6), CORPUS).metrics
    never = train(config(grad_clip_mode=mode, grad_clip=1e6), CORPUS).metrics
    assert (always["clipped_steps"], always["clipped_step_share"]) == (60, 1.0)
    assert (never["clipped_steps"], never["clipped_step_share"]) == (0, 0.0)
