"""The report: golden markdown for fixed rows, the paper's layout, figures, formats, the committed report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from rnnbench import report, results
from rnnbench.cli import app
from rnnbench.config import Grid, content_id

GOLDEN = Path(__file__).parent / "golden" / "report.md"
REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


STARTS = iter(range(10_000))  # one run after another, as a sweep trains them


def run_record(cell, layers, size, seed=0, status="ok", loss=1.5, error=None):
    minute = next(STARTS) % 50
    cfg = Grid.from_settings(
        dataset="warpeace",
        cells=(cell,),
        layers=(layers,),
        sizes=(size,),
        devices=("cpu",),
        seeds=(seed,),
        epochs=1,
        eval_every_steps=100,
    ).expand("f" * 64)[0]
    metrics = (
        {}
        if status == "failed"
        else {
            "vocab_size": 87,
            "hidden_size": size,
            "n_params": 1000 * size * layers,
            "test_loss_nats": loss if status == "ok" else None,
            "val_loss_nats": loss,
            "train_chars_per_s": 10_000.0 / layers,
            "achieved_gflops": 50.0 + layers,
            "step_ms_median": 100.0,
        }
    )
    return results.Record.from_stored(
        {
            "schema_version": 1,
            "run_id": cfg.run_id,
            "kind": "sweep",
            "status": status,
            "error": error,
            "started_at": f"2026-01-02T03:{minute:02d}:05+00:00",
            "finished_at": f"2026-01-02T03:{minute:02d}:59+00:00",
            "config": cfg.as_dict(),
            "env": {
                "host": "box",
                "cpu_model": "Test CPU",
                "cpu_cores_logical": 2,
                "gpu_name": None,
                "torch_version": "2.13.0",
                "cuda_version": None,
                "cudnn_version": None,
                "git_commit": "abc123",
            },
            "metrics": metrics,
            "curve": [
                {"step": 100, "epoch": 0.4, "train_loss_nats": loss + 0.2, "val_loss_nats": loss + 0.1},
                {"step": 260, "epoch": 1.0, "train_loss_nats": loss + 0.1, "val_loss_nats": loss},
            ],
        }
    )


@pytest.fixture
def fixed_results(tmp_path) -> Path:
    records = [
        run_record("lstm", 1, 64, seed=0, loss=1.50),
        run_record("lstm", 1, 64, seed=1, loss=1.52),  # two seeds: mean and standard deviation
        run_record("lstm", 2, 64, loss=1.40),
        run_record("gru", 1, 64, loss=1.45),
        run_record("rnn", 3, 64, status="failed", error="RuntimeError: boom"),
        run_record("rnn", 1, 512, status="diverged", loss=9.0),
        run_record("gru", 2, 512, loss=1.10),
    ]
    for r in records:
        results.write_run(tmp_path, r)
    return tmp_path


def render(folder: Path) -> str:
    return report.render_markdown(results.load(folder), results.load_curves(folder))[0]


def test_golden_markdown(fixed_results):
    # After a deliberate change of the report, `python tests/golden/render.py` writes the file anew.
    assert render(fixed_results) == GOLDEN.read_text()


def test_grid_has_the_papers_layout_and_marks(fixed_results):
    text = render(fixed_results)
    assert "| size | LSTM 1 | LSTM 2 | LSTM 3 | RNN 1 | RNN 2 | RNN 3 | GRU 1 | GRU 2 | GRU 3 |" in text
    ours = text.split("### Test loss")[1].split("###")[0]
    row64 = next(line for line in ours.splitlines() if line.startswith("| 64 |"))
    assert "1.510 ± 0.014" in row64 and "**1.400**" in row64 and "| failed |" in row64 and "not run" in row64
    row512 = next(line for line in ours.splitlines() if line.startswith("| 512 |"))
    assert "| diverged |" in row512 and "**1.100**" in row512
    assert "not published" in text  # the paper's RNN 512 cells
    assert "budget run, not the paper's protocol" in text and "**budget**" in text


def test_paper_comparison_statistics(fixed_results):
    df = results.load(fixed_results)
    exp = report.experiments(df)[0]
    joined, stats = report.paper_comparison(exp, report.cell_values(exp))
    both = joined.dropna(subset=["test_loss_nats", "paper_loss_nats"])
    assert stats["n"] == 4 == len(both)
    # LSTM 1x64 1.51 (the mean of two seeds) vs 1.449, LSTM 2x64 1.40 vs 1.442, GRU 1x64 1.45 vs 1.398,
    # GRU 2x512 1.10 vs 1.201: (0.061 + 0.042 + 0.052 + 0.101) / 4.
    assert stats["mad"] == pytest.approx(0.064)
    paper = report.paper_table()
    assert len(paper) == 72 and paper.test_loss_nats.isna().sum() == 6


def test_spearman_is_rank_correlation():
    a, b = pd.Series([1.0, 2.0, 3.0, 4.0]), pd.Series([10.0, 20.0, 40.0, 30.0])
    assert report.spearman(a, a**3) == pytest.approx(1.0)
    assert report.spearman(a, -a) == pytest.approx(-1.0)
    assert report.spearman(a, b) == pytest.approx(0.8)


def test_cli_writes_markdown_and_figures(fixed_results, tmp_path):
    out = tmp_path / "out" / "REPORT.md"
    result = runner.invoke(app, ["report", "--results-dir", str(fixed_results), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == render(fixed_results)
    figures = sorted((out.parent / "figures").iterdir())
    assert len(figures) == 4 and all(f.stat().st_size > 5_000 for f in figures)
    assert all(f"figures/{f.name}" in out.read_text() for f in figures)


def test_cli_html_and_csv(fixed_results, tmp_path):
    page = tmp_path / "r.html"
    assert (
        runner.invoke(
            app, ["report", "--results-dir", str(fixed_results), "--format", "html", "--out", str(page)]
        ).exit_code
        == 0
    )
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<table>" in html and html.count("data:image/png;base64,") == 4
    csv = runner.invoke(app, ["report", "--results-dir", str(fixed_results), "--format", "csv"])
    assert csv.exit_code == 0
    grid = pd.read_csv(pd.io.common.StringIO(csv.stdout))
    assert len(grid) == 6 and set(grid.protocol) == {"budget"}
    assert grid.set_index(["cell", "num_layers", "size"]).loc[("lstm", 1, 64), "paper_loss_nats"] == 1.449


def test_a_run_lost_with_its_ray_task_renders_without_a_machine(fixed_results):
    """A lost Ray task's record has no machine description; its experiment has nothing to plot."""
    lost = run_record("lstm", 1, 64, status="failed", error="WorkerCrashedError: died (Ray task, 2 attempt(s))")
    lost.config["dataset"] = "other"
    lost.run_id = "0123456789ab"
    lost.env, lost.curve = {"executor": "ray"}, []
    results.write_run(fixed_results, lost)
    text, figures = report.render_markdown(results.load(fixed_results), results.load_curves(fixed_results))
    assert "## other on cpu" in text and "| 64 | failed |" in text
    assert "nan" not in text and not any(name.startswith("other-") for name in figures)


def test_runs_on_other_hardware_are_other_experiments_named_by_it(tmp_path):
    for threads, cell in [(2, "lstm"), (2, "gru"), (1, "rnn")]:
        record = run_record(cell, 1, 64)
        record.env["torch_num_threads"] = threads
        results.write_run(tmp_path, record)
    text = render(tmp_path)
    assert "## War and Peace on cpu (Test CPU, 2 threads, torch 2.13.0): " in text
    assert "## War and Peace on cpu (Test CPU, 1 thread, torch 2.13.0): " in text
    assert "on cpu (Test CPU, 1 thread, torch 2.13.0)." in text


def test_empty_results_is_a_clear_message(tmp_path):
    result = runner.invoke(app, ["report", "--results-dir", str(tmp_path)])
    assert result.exit_code == 2 and "no runs stored" in result.output
    assert not (tmp_path / "REPORT.md").exists()


@pytest.mark.slow
def test_committed_report_is_what_rnnbench_renders(tmp_path):
    """Rendered from the committed rows only, so runs a developer adds locally do not count."""
    import shutil
    import subprocess

    committed = REPO / "results" / "REPORT.md"
    if not committed.exists():
        pytest.skip("no committed report")
    try:
        tracked = subprocess.run(
            ["git", "ls-files", "results/runs"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: cannot tell committed rows from local ones")
    (tmp_path / "runs").mkdir()
    for name in tracked:
        shutil.copy(REPO / name, tmp_path / "runs")
    text, figures = report.render_markdown(results.load(tmp_path), results.load_curves(tmp_path))
    assert committed.read_text() == text
    for name in figures:
        assert (REPO / "results" / "figures" / name).stat().st_size > 5_000


def test_the_readme_headline_is_the_committed_reports():
    """README.md quotes the report's "Table 1 reproduced" lines, which the test above ties to the rows."""
    import re

    committed = (REPO / "results" / "REPORT.md").read_text()
    section = re.search(r"## Table 1 reproduced\n\n(.*?)\n\n", committed, re.S)
    quoted = re.search(r"<!-- headline[^\n]*-->\n(.*?)\n<!-- /headline -->", (REPO / "README.md").read_text(), re.S)
    assert section and quoted
    assert quoted.group(1) == section.group(1)


def test_each_model_takes_the_dropout_its_validation_loss_chose(tmp_path):
    """As the paper chose: by validation loss, even where another value's test loss is lower."""
    for dropout, val, test in ((0.0, 1.30, 1.20), (0.25, 1.25, 1.28), (0.5, 1.40, 1.35)):
        record = run_record("lstm", 1, 64, loss=test)
        record.config["train"]["dropout"] = dropout
        record.run_id = f"{int(dropout * 100):012d}"
        record.metrics["val_loss_nats"] = val
        results.write_run(tmp_path, record)
    df = results.load(tmp_path)
    (exp,) = report.experiments(df)  # the dropout values are one experiment
    (value,) = report.cell_values(exp).itertuples()
    assert (value.dropout, value.test_loss_nats) == (0.25, 1.28)
    text = render(tmp_path)
    assert "among 0, 0.25, 0.5, with the lowest mean validation loss" in text
    assert "| 64 | 0.25 |" in text and "### Test loss by dropout" in text and "Dropout 0.5:" in text
    csv = pd.read_csv(pd.io.common.StringIO(report.render_csv(df)))
    assert len(csv) == 3 and csv[csv.chosen].dropout.tolist() == [0.25]


def test_a_list_of_dropout_values_is_a_grid_axis(tmp_path):
    grid = Grid.from_settings(cells=("gru",), layers=(1,), sizes=(64,), devices=("cpu",), dropout=(0.0, 0.5))
    runs = grid.expand("0" * 64)
    assert [r.train.dropout for r in runs] == [0.0, 0.5] and len({r.run_id for r in runs}) == 2
    from rnnbench.config import load_preset

    assert load_preset("paper").dropout == (0.0, 0.25, 0.5)
    preset = tmp_path / "one.toml"
    preset.write_text("dropout = 0.25\nepochs = 1\n")  # one value is a list of one
    assert load_preset(str(preset)).dropout == (0.25,)


def test_the_papers_findings_are_tested_on_the_rows():
    from rnnbench.report.grids import depth_helps, gated_beat_rnn, verdict

    values = pd.DataFrame(
        [
            # size 64: 2 layers beat 1 for LSTM and GRU, not for the RNN; both gated cells beat the RNN at depth 1.
            ("lstm", 1, 64, 1.50),
            ("lstm", 2, 64, 1.40),
            ("gru", 1, 64, 1.55),
            ("gru", 3, 64, 1.45),
            ("rnn", 1, 64, 1.60),
            ("rnn", 2, 64, 1.70),
            ("lstm", 3, 64, float("nan")),
        ],
        columns=["cell", "num_layers", "size", "test_loss_nats"],
    )
    assert depth_helps(values) == (2, 3)
    assert gated_beat_rnn(values) == (1, 1)  # only depth 1 has all three cells
    assert verdict(2, 3) == "yes (2 of 3)" and verdict(1, 2) == "no (1 of 2)" and verdict(0, 0) == "-"


def test_findings_head_the_report(fixed_results):
    text = render(fixed_results)
    assert text.index("## Findings") < text.index("## What was run")
    row = next(line for line in text.splitlines() if line.startswith("| War and Peace on cpu"))
    assert "| 4 |" in row and "no baseline stored" in row  # 4 cells beside the paper's; no n-gram row here


def paper_record(cell, layers, seed=0, dropout=0.0, loss=1.45, **settings):
    """A row of the `paper` preset's War and Peace grid at size 64, as a sweep on a CPU stores it."""
    from rnnbench.config import load_preset

    grid = load_preset("paper").replace(
        cells=(cell,), layers=(layers,), sizes=(64,), devices=("cpu",), seeds=(seed,), dropout=(dropout,), **settings
    )
    record = run_record(cell, layers, 64, seed=seed, loss=loss)
    record.config = grid.expand("f" * 64)[0].as_dict()
    record.run_id = content_id(record.config)
    record.metrics |= {
        "train_split_bytes": 2_600_000,
        "val_split_bytes": 320_000,
        "test_split_bytes": 330_000,
        "stop_reason": "epochs",
        "epochs_trained": 50.0,
    }
    return record


@pytest.fixture
def paper_results(tmp_path) -> Path:
    records = [paper_record("lstm", 1, seed=s, loss=1.46 + 0.01 * s) for s in (0, 1, 2)]
    records += [
        paper_record("lstm", 1, dropout=0.25, loss=1.50),
        paper_record("gru", 2, loss=1.40),
        paper_record("rnn", 3, loss=1.47),
    ]
    for r in records:
        results.write_run(tmp_path, r)
    return tmp_path


def test_the_protocol_checklist_is_read_from_the_rows(paper_results):
    from rnnbench.report.grids import experiments
    from rnnbench.report.protocol import checklist

    (exp,) = experiments(results.load(paper_results))
    verdicts = {c.name: c.verdict for c in checklist(exp)}
    assert verdicts["data layout"] == "same" and verdicts["LSTM forget-gate bias"] == "same"
    assert verdicts["gradient clipping"] == "differs" and verdicts["GRU reset gate"] == "differs"
    assert verdicts["dropout"] == "partly"  # one model of three had two values to choose from
    assert verdicts["seeds"] == "partly" and verdicts["training length"] == "same"
    ours = {c.name: c.ours for c in checklist(exp)}
    assert ours["split fractions"] == "80/10/10 (2,600,000 / 320,000 / 330,000 bytes)"
    assert ours["steps per epoch"].startswith("259: each stream's last 100 bytes are never an input")
    assert "tried 0, 0.25; chosen on validation: 0 for 3 models" in ours["dropout"]
    text = render(paper_results)
    assert "### Protocol checklist" in text and "| data layout |" in text
    # A different choice in the rows shows as a difference.
    (exp,) = experiments(results.load(paper_results).assign(split="contiguous", lstm_forget_bias="1"))
    verdicts = {c.name: c.verdict for c in checklist(exp)}
    assert verdicts["data layout"] == "differs" and verdicts["LSTM forget-gate bias"] == "differs"


def test_the_seed_spread_stands_beside_the_distance_to_the_paper(paper_results):
    text = render(paper_results)
    diff = text.split("### Ours minus the paper")[1].split("###")[0]
    row64 = next(line for line in diff.splitlines() if line.startswith("| 64 |"))
    # LSTM 1x64: mean of 1.46, 1.47, 1.48 is 1.470 against the paper's 1.449, sd 0.010.
    assert "+0.021 ± 0.010" in row64
    assert "Seed spread (standard deviation of the test loss over seeds" in text and "LSTM 1x64 0.010 (3 seeds)" in text


def test_the_report_tracks_the_paper_campaign(paper_results):
    text = render(paper_results)
    assert "4 of 108 runs of the `paper` preset's grid are stored (36 models x dropout 0, 0.25, 0.5)" in text
    assert "0 of 36 models have every dropout value." in text
    results.write_run(paper_results, paper_record("lstm", 1, dropout=0.5, loss=1.55))
    text = render(paper_results)
    part = text.split("### The paper grid so far")[1].split("###")[0]
    assert "5 of 108 runs" in part and "1 of 36 models have every dropout value" in part
    row64 = next(line for line in part.splitlines() if line.startswith("| 64 |"))
    assert "1.470" in row64 and "1.400" not in row64  # the complete model (dropout 0 chose), not the others


def test_the_report_opens_with_its_summary_then_its_contents():
    """The first screen a reader sees holds results: the summary sections come before the list of sections."""
    committed = (REPO / "results" / "REPORT.md").read_text()
    headings = [line for line in committed.splitlines() if line.startswith(("## ", "**Contents**"))]
    assert headings[:3] == ["## Table 1 reproduced", "## At a glance", "**Contents**"]


def test_an_experiment_of_too_few_cells_for_a_rank_correlation_prints_none(tmp_path):
    """Spearman needs three cells: with fewer, the report says so or leaves it blank, never nan."""
    for record in (paper_record("lstm", 1, loss=1.46), paper_record("gru", 2, loss=1.40)):
        results.write_run(tmp_path, record)
    text = render(tmp_path)
    assert "nan" not in text
    assert "no rank correlation (it needs three cells)" in text
    assert "Against the paper's 2 published cells: mean absolute difference" in text


def unigram_record(val_loss: float, test_loss: float, split: str = "chunked"):
    """A stored 1-gram of War and Peace, as `rnnbench baseline ngram` writes it: the characters' frequencies."""
    config = {"model": "ngram", "order": 1, "smoothing": "kn", "dataset": "warpeace", "split": split}
    config |= {"train_fraction": 0.8, "val_fraction": 0.1, "batch_size": 100, "seq_len": 100}
    metrics = {"val_loss_nats": val_loss, "test_loss_nats": test_loss, "vocab_size": 87, "max_order": 1}
    metrics |= {"seconds": 1.0, "peak_rss_mb": 500.0}
    return results.make_record("baseline", content_id(config), "ok", config, {"host": "box"}, metrics)


def test_a_model_no_better_than_the_characters_frequencies_is_named_and_the_rest_measured_without_it(tmp_path):
    """A model that learned nothing from the context (its test loss at the stored 1-gram's) stands
    out in the headline and the findings, and the distance to the paper is given over the others too."""
    records = [
        paper_record("lstm", 1, loss=1.46),  # paper 1.449: +0.011
        paper_record("gru", 1, loss=1.40),  # paper 1.398: +0.002
        paper_record("rnn", 2, loss=1.41),  # paper 1.401: +0.009
        paper_record("rnn", 3, loss=3.15),  # paper 1.396: stuck at the characters' frequencies
    ]
    for r in records:
        results.write_run(tmp_path, r)
    from rnnbench.report.grids import reproduction_headline

    df = results.load(tmp_path)
    (before,) = reproduction_headline(df)  # without a 1-gram stored, nothing tells it apart
    assert "the farthest RNN 3x64 at +1.754" in before and "learned nothing" not in before
    results.write_run(tmp_path, unigram_record(3.13, 3.12))
    results.write_run(tmp_path, unigram_record(3.10, 3.05, split="contiguous"))  # another layout's: not read
    text = render(tmp_path)
    headline = text.split("## Table 1 reproduced")[1].split("##")[0]
    assert "mean absolute difference 0.444 nats, 3 of 4 within 0.05, the farthest RNN 3x64 at +1.754" in headline
    assert "RNN 3x64 (3.150 nats) learned nothing from the context: no lower than the characters' " in headline
    assert "(3.120). Over the other 3: mean absolute difference 0.007 nats, the farthest LSTM 1x64 at" in headline
    assert (
        "RNN 3x64 ended no lower than the characters' frequencies alone (3.150 against the stored 1-gram's "
        "3.120 nats, same layout): it learned nothing from the context." in text
    )
