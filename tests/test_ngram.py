"""The character n-gram baseline: a hand-computed case, normalisation, the command and the report."""

from __future__ import annotations

import math

import numpy as np
import pytest
from typer.testing import CliRunner

from rnnbench import report, results
from rnnbench.cli import app
from rnnbench.ngram import kneser_ney_loss

runner = CliRunner()


def test_a_bigram_model_computed_by_hand():
    # Train "aaab" (a=0, b=1), then score "ab". Bigram counts aa 2, ab 1: D2 = n1/(n1+2 n2) = 1/3.
    # Unigram continuation counts: a 1 (after a), b 1 (after a): D1 = 2/2 = 1, so P1 = 1/2 each.
    # P(a | b): b never starts a bigram in training: all goes to P1(a) = 1/2.
    # P(b | a) = (1 - 1/3)/3 + (1/3) * 2/3 * P1(b) = 2/9 + 1/9 = 1/3.
    ids = np.array([0, 0, 0, 1, 0, 1])
    assert kneser_ney_loss(ids, 4, 4, 6, order=2, vocab_size=2) == pytest.approx(-(math.log(1 / 2) + math.log(1 / 3)) / 2)


@pytest.mark.parametrize("order", [1, 3, 6])
def test_the_probabilities_of_every_next_byte_sum_to_one(order):
    rng = np.random.default_rng(order)
    train = rng.integers(0, 5, 400)
    total = sum(math.exp(-kneser_ney_loss(np.append(train, w), 400, 400, 401, order, 5)) for w in range(5))
    assert total == pytest.approx(1.0)


def test_higher_orders_predict_structured_text_better():
    from rnnbench.data import load_corpus

    corpus = load_corpus("synthetic")
    ids = corpus.encode().numpy()
    n_train, n_val, _ = corpus.split_sizes
    losses = [kneser_ney_loss(ids, n_train, n_train + n_val, len(ids), k, corpus.vocab_size) for k in (1, 3, 8)]
    assert losses[0] > losses[1] > losses[2] and losses[0] < math.log(corpus.vocab_size)


def test_the_command_stores_a_row_that_the_report_shows(tmp_path):
    result = runner.invoke(app, ["baseline", "ngram", "--order", "4", "--dataset", "synthetic",
                                 "--results-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (row,) = results.load(tmp_path).itertuples()
    assert row.kind == "baseline" and row.order == 4 and 0 < row.test_loss_nats < math.log(row.vocab_size)
    assert "4-gram" in result.output and f"{row.test_loss_nats:.4f}" in result.output
    text = report.render_markdown(results.load(tmp_path), results.load_curves(tmp_path))[0]
    assert "## Baselines" in text and f"{row.test_loss_nats:.3f}" in text
    bad = runner.invoke(app, ["baseline", "ngram", "--order", "0", "--dataset", "synthetic", "--results-dir", str(tmp_path)])
    assert bad.exit_code == 2 and "--order must be at least 1" in bad.output


def test_the_findings_say_whether_the_best_model_beats_the_baseline(tmp_path):
    from test_report import run_record

    results.write_run(tmp_path, run_record("lstm", 2, 64, loss=1.30))
    baseline = results.make_record("baseline", "0123456789ab", "ok",
                                   {"model": "ngram", "order": 20, "smoothing": "s", "dataset": "warpeace",
                                    "dataset_sha256": "f" * 64},
                                   {"host": "box"}, {"test_loss_nats": 1.25, "seconds": 1.0, "peak_rss_mb": 1.0})
    results.write_run(tmp_path, baseline)
    text = report.render_markdown(results.load(tmp_path), results.load_curves(tmp_path))[0]
    assert "LSTM 2x64 (1.300 nats), does not beat the stored 20-gram baseline (1.250 nats)" in text
    assert "| War and Peace | 20-gram | s | 1.250 | 1.195 |" in text  # beside the paper's
