"""The character n-gram baseline: a hand-computed case, normalisation, the command and the report."""

from __future__ import annotations

import math

import numpy as np
import pytest
from typer.testing import CliRunner

from rnnbench import report, results
from rnnbench.cli import app
from rnnbench.core.data import Layout
from rnnbench.errors import UsageError
from rnnbench.measure.ngram import SMOOTHINGS, discounts, ngram_losses, run_baseline

runner = CliRunner()


def test_a_bigram_model_computed_by_hand():
    # Train "aaab" (a=0, b=1), then score the row "bab": a after b, then b after a. Bigram counts aa 2,
    # ab 1: D = n1/(n1+2 n2) = 1/3. Unigram continuation counts: a 1 (after a), b 1 (after a):
    # D1 = 2/2 = 1, so P1 = 1/2 each. P(a | b): b never starts a bigram in training: all goes to
    # P1(a) = 1/2. P(b | a) = (1 - 1/3)/3 + (1/3) * 2/3 * P1(b) = 2/9 + 1/9 = 1/3.
    losses = ngram_losses(np.array([[0, 0, 0, 1]]), {"test": np.array([[1, 0, 1]])}, 2, 2, ("kn",))
    assert losses["kn"]["test"][1] == pytest.approx(-(math.log(1 / 2) + math.log(1 / 3)) / 2)


def test_modified_kneser_ney_discounts_by_hand():
    # Counts of counts n1..n4 = 4, 2, 1, 1: Y = 4/8 = 1/2, D1 = 1 - 2 (1/2) 2/4 = 1/2,
    # D2 = 2 - 3 (1/2) 1/2 = 5/4, D3+ = 3 - 4 (1/2) 1/1 = 1.
    counts = np.array([1, 1, 1, 1, 2, 2, 3, 4])
    assert discounts(counts, "mkn").tolist() == [0.5, 1.25, 1.0]
    assert discounts(counts, "kn").tolist() == [0.5, 0.5, 0.5]
    # n1, n2, n3 = 1, 2, 0: Y = 1/5, and with no n-gram seen three times D3+ has no estimate: the
    # one discount Y stands for all three.
    assert discounts(np.array([1, 2, 2]), "mkn").tolist() == [0.2, 0.2, 0.2]


@pytest.mark.parametrize("smoothing", list(SMOOTHINGS))
@pytest.mark.parametrize("order", [1, 2, 3, 6])
def test_the_probabilities_of_every_next_byte_sum_to_one(order, smoothing):
    rng = np.random.default_rng(order)
    train = rng.integers(0, 5, (3, 400))
    context = rng.integers(0, 5, order)

    def summed_loss(row):  # over every byte of the row but its first
        return (len(row) - 1) * ngram_losses(train, {"t": np.array([row])}, order, 5, (smoothing,))[smoothing]["t"][-1]

    before = summed_loss(context) if order > 1 else 0.0  # the same bytes, the same history
    total = sum(math.exp(-(summed_loss(np.append(context, w)) - before)) for w in range(5))
    assert total == pytest.approx(1.0)


def test_counts_stay_inside_a_row_and_scoring_starts_each_row_afresh():
    # Rows "ab" and "ab": the bigram "ba" across the rows' join must not be counted. So P(a | b)
    # comes from the unigrams alone, as if b had never been seen as a context.
    joined = ngram_losses(np.array([[0, 1, 0, 1]]), {"t": np.array([[1, 0]])}, 2, 2, ("kn",))["kn"]["t"][1]
    apart = ngram_losses(np.array([[0, 1], [0, 1]]), {"t": np.array([[1, 0]])}, 2, 2, ("kn",))["kn"]["t"][1]
    unigram = ngram_losses(np.array([[0, 1], [0, 1]]), {"t": np.array([[1, 0]])}, 1, 2, ("kn",))["kn"]["t"][0]
    assert joined < apart and apart == pytest.approx(unigram)
    # The second row's first byte is context only: two rows of two bytes score two bytes, not three.
    one = ngram_losses(np.array([[0, 1, 0, 1]]), {"t": np.array([[0, 1]])}, 2, 2)["mkn"]["t"]
    two = ngram_losses(np.array([[0, 1, 0, 1]]), {"t": np.array([[0, 1], [0, 1]])}, 2, 2)["mkn"]["t"]
    assert one == pytest.approx(two)


def test_higher_orders_predict_structured_text_better_and_modified_kn_is_better_still():
    from rnnbench.core.data import Layout, load_corpus

    corpus = load_corpus("synthetic")
    parts = {k: v.numpy() for k, v in Layout("chunked").streams(corpus.encode()).items()}
    losses = ngram_losses(parts["train"], {"val": parts["val"]}, 8, corpus.vocab_size)
    kn, mkn = losses["kn"]["val"], losses["mkn"]["val"]
    assert kn[0] > kn[2] > kn[7] and kn[0] < math.log(corpus.vocab_size)
    assert mkn[7] < kn[7]


def test_the_command_stores_a_row_per_order_and_smoothing_that_the_report_shows(tmp_path):
    result = runner.invoke(
        app,
        [
            "baseline",
            "ngram",
            "--order",
            "4",
            "--dataset",
            "synthetic",
            "--split",
            "chunked",
            "--results-dir",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = results.load(tmp_path)
    assert len(rows) == 8 and set(rows.order) == {1, 2, 3, 4} and set(rows.split) == {"chunked"}
    assert (rows.kind == "baseline").all() and ((0 < rows.test_loss_nats) & (rows.test_loss_nats < math.log(39))).all()
    four = rows[(rows.order == 4) & (rows.smoothing == SMOOTHINGS["mkn"])].iloc[0]
    assert f"{four.test_loss_nats:.4f}" in result.output and "mkn val" in result.output
    assert four.train_split_bytes == 400_000  # 50 chunks of 100 x 100 per row, 40 of them train
    text = report.render_markdown(rows, results.load_curves(tmp_path))[0]
    assert "## Baselines" in text and f"{four.test_loss_nats:.3f}" in text
    for args, message in (
        (["--order", "0"], "Invalid value for '--order'"),
        (["--order", "100000"], "Invalid value for '--order'"),
        (["--smoothing", "kn,witten-bell"], "unknown smoothing witten-bell"),
        (["--split", "random"], "unknown split 'random'"),
        (["--train-fraction", "0.95"], "add up to less than 1"),
    ):
        bad = runner.invoke(app, ["baseline", "ngram", "--dataset", "synthetic", "--results-dir", str(tmp_path), *args])
        assert bad.exit_code == 2 and message in bad.output, (args, bad.output)


def test_an_n_gram_count_that_would_not_fit_says_its_memory_before_counting(tmp_path, monkeypatch):
    import psutil

    from rnnbench.core.data import load_corpus

    class Scarce:
        available = 64 * 2**20

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Scarce())
    with pytest.raises(UsageError, match=r"--order must be in \[1, 100\], got 101"):
        run_baseline(load_corpus("synthetic"), Layout(batch_size=10, seq_len=10), 101)
    with pytest.raises(UsageError, match=r"needs about 72 MB, whatever the order, and this machine has 64 MB free"):
        run_baseline(load_corpus("synthetic"), Layout(batch_size=10, seq_len=10), 5)


def test_the_findings_say_whether_the_best_model_beats_the_baseline(tmp_path):
    from test_report import run_record

    results.write_run(tmp_path, run_record("lstm", 2, 64, loss=1.30))
    for run_id, split, smoothing, loss in (
        ("0123456789ab", "contiguous", "s", 1.25),
        ("0123456789ac", "contiguous", "t", 1.27),  # the better one counts
        ("0123456789ad", "chunked", "s", 1.10),
    ):  # another layout
        baseline = results.make_record(
            "baseline",
            run_id,
            "ok",
            {
                "model": "ngram",
                "order": 20,
                "smoothing": smoothing,
                "dataset": "warpeace",
                "dataset_sha256": "f" * 64,
                "split": split,
            },
            {"host": "box"},
            {"test_loss_nats": loss, "val_loss_nats": loss + 0.01, "seconds": 1.0, "peak_rss_mb": 1.0},
        )
        results.write_run(tmp_path, baseline)
    text = report.render_markdown(results.load(tmp_path), results.load_curves(tmp_path))[0]
    assert "LSTM 2x64 (1.300 nats), does not beat the stored 20-gram baseline (1.250 nats, s, same layout)" in text
    # Beside the paper's, with the order validation picks.
    assert "| War and Peace | contiguous 80/10/10 | s | 20-gram | 1.260 | 1.250 | 20: 1.250 | 1.195 |" in text
    assert "| War and Peace | chunked 80/10/10 | s | 20-gram | 1.110 | 1.100 | 20: 1.100 | 1.195 |" in text
