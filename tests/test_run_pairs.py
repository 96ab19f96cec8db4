"""Hardware in the identity of runs, and `rnnbench results compare` (rnnbench.report.run_pairs)."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_args
from test_cli import invoke, stored

from rnnbench import results
from rnnbench.config import Grid, Hardware
from rnnbench.errors import UsageError
from rnnbench.report import run_pairs

CPU2 = Hardware("cpu", "Test CPU", 2, "2.13.0+cpu")
GPU = Hardware("cuda", "Test GPU", None, "2.11.0+cu130")


def row(cell: str, hardware: Hardware, step_ms: tuple[float, float, float], loss: float = 1.5, shared: int = 1) -> dict:
    device = "cuda" if hardware.device_kind == "cuda" else "cpu"
    cfg = Grid.from_settings(
        dataset="warpeace", cells=(cell,), layers=(1,), sizes=(64,), devices=(device,), epochs=1
    ).expand("f" * 64, hardware={device: hardware})[0]
    q1, median, q3 = step_ms
    metrics = {
        "test_loss_nats": loss,
        "val_loss_nats": loss,
        "step_ms_q1": q1,
        "step_ms_median": median,
        "step_ms_q3": q3,
        "train_chars_per_s": 1e7 / median,
        "hidden_size": 64,
        "n_params": 1000,
        "vocab_size": 87,
        "achieved_gflops": 1.0,
    }
    return results.make_record(
        "sweep", cfg.run_id, "ok", cfg.as_dict(), {"host": "h", "runs_sharing_device": shared}, metrics
    )


def folder(tmp_path, name: str, records: list[dict]):
    for record in records:
        results.write_run(tmp_path / name, record)
    return results.load(tmp_path / name)


def test_runs_match_across_hardware_and_noise_decides_the_verdict(tmp_path):
    base = folder(
        tmp_path, "base", [row("lstm", CPU2, (9, 10, 11)), row("gru", CPU2, (9, 10, 11)), row("rnn", CPU2, (9, 10, 11))]
    )
    new = folder(
        tmp_path,
        "new",
        [
            row("lstm", GPU, (1, 1, 1), loss=1.4),  # far faster: quartiles apart
            row("gru", GPU, (10, 10.5, 12)),  # quartiles overlap: same
            row("rnn", GPU, (20, 21, 22)),
        ],
    )  # slower
    table = run_pairs.compare_runs(base, new).set_index("cell")
    assert table.loc["lstm", "verdict"] == "faster" and table.loc["lstm", "speedup"] == pytest.approx(10)
    assert table.loc["lstm", "test_loss_change_nats"] == pytest.approx(-0.1)
    assert table.loc["gru", "verdict"] == "same" and table.loc["rnn", "verdict"] == "slower"
    assert table.loc["lstm", "base"] == "cpu: Test CPU, 2 threads, torch 2.13.0+cpu"
    assert list(run_pairs.slowdowns(table.reset_index(), 0.05).cell) == ["rnn"]
    assert run_pairs.slowdowns(table.reset_index(), 1.5).empty  # 2.1x slower is within a 150% allowance


def test_a_run_measured_beside_others_is_shared_and_never_slower(tmp_path):
    base = folder(tmp_path, "base", [row("lstm", CPU2, (9, 10, 11))])
    new = folder(tmp_path, "new", [row("lstm", GPU, (20, 21, 22), shared=8)])
    assert list(run_pairs.compare_runs(base, new).verdict) == ["shared"]


def test_one_folder_split_by_filters_and_bad_filters_are_usage_errors(tmp_path):
    df = folder(tmp_path, "both", [row("lstm", CPU2, (9, 10, 11)), row("lstm", GPU, (1, 1, 1))])
    with pytest.raises(UsageError, match="more than one machine"):
        run_pairs.compare_runs(df, df)
    table = run_pairs.compare_runs(
        df, df, [run_pairs.Filter.parse("device=cpu")], [run_pairs.Filter.parse("hardware~Test GPU")]
    )
    assert list(table.verdict) == ["faster"]
    with pytest.raises(UsageError, match="no such column"):
        run_pairs.compare_runs(df, df, [run_pairs.Filter.parse("colour=red")])
    with pytest.raises(UsageError, match="KEY=VALUE"):
        run_pairs.Filter.parse("device")
    assert run_pairs.parse_percent("5%") == pytest.approx(0.05) and run_pairs.parse_percent("0.1") == 0.1


def test_compare_command_prints_writes_markdown_and_fails_if_slower(tmp_path):
    for name, records in (
        ("base", [row("lstm", CPU2, (9, 10, 11)), row("rnn", CPU2, (9, 10, 11))]),
        ("new", [row("lstm", GPU, (1, 1, 1)), row("rnn", GPU, (20, 21, 22))]),
    ):
        for record in records:
            results.write_run(tmp_path / name, record)
    args = ["results", "compare", str(tmp_path / "base"), str(tmp_path / "new"), "--out", str(tmp_path / "cmp.md")]
    ok = invoke(args)
    assert ok.exit_code == 0, ok.output
    assert "2 runs in both: 1 faster, 1 slower" in ok.output
    text = (tmp_path / "cmp.md").read_text()
    assert "| warpeace | LSTM 1x64 | 0 | 1.5000 | 1.5000 | +0.0000 | 10 ± 2 | 1 ± 0 | x10.00 | faster |" in text
    failed = invoke(args + ["--fail-if-slower", "5%"])
    assert failed.exit_code == 1 and "1 run(s) slower by more than 5%: rnn 1x64 x0.48" in failed.output
    assert invoke(args + ["--fail-if-slower", "200%"]).exit_code == 0
    bad = invoke(args + ["--fail-if-slower", "fast"])
    assert bad.exit_code == 2 and "percentage" in bad.output
    missing = invoke(["results", "compare", str(tmp_path / "nowhere"), str(tmp_path / "new")])
    assert missing.exit_code == 2 and "holds no results" in missing.output


@pytest.fixture
def two_threads():
    """Torch's thread count as a fresh process on 2 cores has it (other tests may have changed it)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
@pytest.mark.skipif((__import__("os").cpu_count() or 1) < 2, reason="needs 2 cores to make two hardware identities")
def test_the_same_grid_on_two_thread_counts_is_two_sets_of_rows_in_one_folder(tiny_text, tmp_path, two_threads):
    out = tmp_path / "results"
    assert invoke(tiny_args(tiny_text, out)).exit_code == 0  # torch's threads (2 here)
    one_thread = invoke(tiny_args(tiny_text, out, jobs=2))  # a worker each, one thread each
    assert one_thread.exit_code == 0 and "0 already finished, 3 to run" in one_thread.output
    again = invoke(tiny_args(tiny_text, out, jobs=2))
    assert "3 already finished, 0 to run" in again.output
    runs = stored(out)
    assert len(runs) == 6
    assert sorted(r.config["hardware"]["threads"] for r in runs.values()) == [1, 1, 1, 2, 2, 2]
    compared = invoke(
        [
            "results",
            "compare",
            str(out),
            str(out),
            "--base-filter",
            "hardware~2 threads",
            "--new-filter",
            "hardware~1 thread",
        ]
    )
    assert compared.exit_code == 0 and "3 runs in both" in compared.output


def test_time_to_target_reads_the_curves_clock_and_says_not_reached(tmp_path):
    from rnnbench.report import experiments, time_to_target

    fast, slow = row("lstm", CPU2, (9, 10, 11)), row("gru", CPU2, (9, 10, 11))
    fast.curve = [
        {"step": 100, "epoch": 0.5, "train_loss_nats": 2.0, "val_loss_nats": 1.5, "train_s": 3.0, "wall_s": 4.0},
        {"step": 200, "epoch": 1.0, "train_loss_nats": 1.5, "val_loss_nats": 1.1, "train_s": 6.0, "wall_s": 8.0},
    ]
    slow.curve = [
        {"step": 100, "epoch": 0.5, "train_loss_nats": 2.0, "val_loss_nats": 1.4, "train_s": 5.0, "wall_s": 6.0}
    ]
    for r in (fast, slow):
        results.write_run(tmp_path, r)
    (exp,) = experiments(results.load(tmp_path))
    found = time_to_target(exp, results.load_curves(tmp_path), 1.195).set_index("cell")
    assert found.loc["lstm", "train_s_to_target"] == 6.0 and found.loc["lstm", "wall_s_to_target"] == 8.0
    assert found.loc["gru", "text"] == "not reached (best 1.400)"
    text = invoke(["report", "--results-dir", str(tmp_path), "--target-loss", "warpeace=1.45"]).output
    report = (tmp_path / "REPORT.md").read_text()
    assert "### Time to a validation loss of 1.45 nats" in report and "(set with --target-loss)" in report
    assert "| 64 | 6 s | **5 s** |" in report and "wrote" in text
    assert len(list((tmp_path / "figures").glob("*-loss-vs-time.png"))) == 1
    bad = invoke(["report", "--results-dir", str(tmp_path), "--target-loss", "warpeace"])
    assert bad.exit_code == 2 and "CORPUS=NATS" in bad.output


@pytest.mark.slow
def test_cross_hardware_table_with_a_named_baseline(tmp_path):
    for r in (row("lstm", CPU2, (9, 10, 11)), row("lstm", GPU, (1, 1, 1)), row("gru", CPU2, (9, 10, 11))):
        results.write_run(tmp_path, r)
    invoke(["report", "--results-dir", str(tmp_path)])
    report = (tmp_path / "REPORT.md").read_text()
    assert "## Training throughput across hardware" in report
    assert "**A** = cpu: Test CPU, 2 threads, torch 2.13.0+cpu; **B** = cuda: Test GPU, torch 2.11.0+cu130" in report
    assert "| warpeace | LSTM 1x64 (hidden 64) | 100 x 100 | 1,000,000 | 10,000,000 (x10.0) |" in report
    invoke(["report", "--results-dir", str(tmp_path), "--baseline-hardware", "GPU"])
    assert (
        "| warpeace | LSTM 1x64 (hidden 64) | 100 x 100 | 10,000,000 | 1,000,000 (x0.1) |"
        in (tmp_path / "REPORT.md").read_text()
    )
    bad = invoke(["report", "--results-dir", str(tmp_path), "--baseline-hardware", "torch"])
    assert bad.exit_code == 2 and "names 2 of the hardware present" in bad.output
