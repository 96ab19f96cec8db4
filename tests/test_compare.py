"""compare-devices: rows stored, thread counts recorded, the markdown report, absent devices."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from rnnbench import results
from rnnbench.cli import app
from rnnbench.measure.device_speed import CompareSpec, cpu_dtype_support

runner = CliRunner()
TINY = [
    "--cells",
    "lstm,rnn",
    "--layers",
    "1",
    "--sizes",
    "16",
    "--size-mode",
    "hidden",
    "--batch-size",
    "4",
    "--seq-len",
    "8",
    "--min-time",
    "0.01",
    "--devices",
    "cpu",
]


@pytest.mark.slow
def test_cpu_end_to_end_through_the_cli(tiny_text, tmp_path):
    out, report = tmp_path / "results", tmp_path / "devices.md"
    result = runner.invoke(
        app,
        [
            "compare-devices",
            *TINY,
            "--threads",
            "1,2",
            "--dataset",
            str(tiny_text),
            "--results-dir",
            str(out),
            "--out",
            str(report),
        ],
    )
    assert result.exit_code == 0, result.output
    df = results.load(out)
    assert set(df.kind) == {"compare"} and set(df.status) == {"ok"}
    assert set(df.workload) == {"matmul", "copy", "train", "infer", "generate"}
    assert set(df.threads) == {1, 2} and set(df.torch_num_threads) == {1, 2}
    models = df[df.workload == "train"]
    assert len(models) == 2 * 2  # two models at two thread counts
    assert (models.achieved_gflops == models.flops_per_char * models.chars_per_s / 1e9).all()
    assert models.matmul_fraction.gt(0).all()
    assert set(df[df.workload.isin(["train", "infer", "generate"])].recurrent_dtype) == {"float32"}
    text = report.read_text()
    if not torch.cuda.is_available():
        assert "Only the CPU was measured" in text and "no figure here is a GPU figure" in result.output
    assert "Speedup is against cpu, 2 threads" in text
    assert "1.00x" in text and "## Device limits" in text and "## Data path" in text
    shown = runner.invoke(app, ["results", "--results-dir", str(out)])
    assert shown.exit_code == 0 and "0 sweep runs" in shown.output and "compare-devices rows" in shown.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_absent_device_is_exit_2_before_any_measurement(tmp_path):
    out = tmp_path / "results"
    result = runner.invoke(app, ["compare-devices", *TINY[:-2], "--devices", "cpu,cuda", "--results-dir", str(out)])
    assert result.exit_code == 2 and "device 'cuda' is not available" in result.output
    assert not (out / "runs").exists()


def test_bad_dtype_and_threads_are_exit_2(tmp_path):
    for extra, message in ((["--dtype", "int8"], "unknown dtype"), (["--threads", "0"], "at least 1")):
        result = runner.invoke(app, ["compare-devices", *TINY, *extra, "--results-dir", str(tmp_path)])
        assert result.exit_code == 2 and message in result.output


def test_cpu_dtype_support_is_a_plain_answer():
    support = cpu_dtype_support()
    assert support["float32"] is None
    assert set(support) == {"float32", "bfloat16", "float16"}
    assert all(v is None or isinstance(v, str) for v in support.values())


def test_spec_defaults_are_the_issue_grid():
    spec = CompareSpec()
    assert spec.cells == ("lstm", "gru", "rnn") and spec.layers == (1, 2) and spec.sizes == (128, 512)
    assert (spec.batch_size, spec.seq_len, spec.dtype) == (100, 100, "float32")


def test_out_of_memory_is_a_row_status_and_the_rest_go_on(tiny_text, tmp_path, monkeypatch):
    from rnnbench.measure import device_speed

    real = device_speed.ModelWorkloads

    def bench(corpus, cell, *args, **kwargs):
        if cell == "rnn":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(corpus, cell, *args, **kwargs)

    monkeypatch.setattr(device_speed, "ModelWorkloads", bench)
    out = tmp_path / "results"
    result = runner.invoke(app, ["compare-devices", *TINY, "--dataset", str(tiny_text), "--results-dir", str(out)])
    assert result.exit_code == 0, result.output
    df = results.load(out)
    assert df[df.cell == "rnn"].status.tolist() == ["oom"]
    assert set(df[df.cell == "lstm"].status) == {"ok"}


def test_unsupported_cpu_dtype_is_said_not_crashed(tiny_text, tmp_path, monkeypatch):
    from rnnbench.measure import device_speed

    monkeypatch.setattr(
        device_speed,
        "cpu_dtype_support",
        lambda: {"float32": None, "bfloat16": "RuntimeError: no bf16 here", "float16": None},
    )
    out = tmp_path / "results"
    result = runner.invoke(
        app, ["compare-devices", *TINY, "--dtype", "bfloat16", "--dataset", str(tiny_text), "--results-dir", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "bfloat16 no" in result.output and "unsupported" in result.output
    assert results.load(out).status.tolist() == ["unsupported"]


def test_each_row_says_the_dtype_its_recurrent_layer_ran_in(tiny_text):
    """Autocast may run the recurrent layer in another dtype than asked (cuDNN's RNN in float16
    under bfloat16): the row records the dtype of what it returned, not the one requested."""
    from rnnbench.core.data import Corpus
    from rnnbench.measure.device_speed import ModelWorkloads

    corpus = Corpus("tiny", tiny_text.read_bytes(), "test")
    workloads = ModelWorkloads(corpus, "lstm", 8, 1, "cpu", torch.float32, 4, 8)
    workloads.infer()
    assert workloads.recurrent_dtypes == {"float32"}
    workloads.recurrent_dtypes.clear()
    workloads.model.double()  # a layer that computes in another dtype than the one asked for
    workloads.infer()
    assert workloads.recurrent_dtypes == {"float64"}


def test_the_device_report_says_which_rows_ran_in_another_dtype():
    from pathlib import Path

    from rnnbench.report.devices import device_comparison_markdown

    df = results.load(Path(__file__).resolve().parent.parent / "results")
    df = df[df.kind == "compare"].copy()
    assert "Not the dtype asked for" not in device_comparison_markdown(df)
    train = df.index[df.workload == "train"][0]
    df.loc[train, "recurrent_dtype"] = "float16"
    text = device_comparison_markdown(df)
    assert "Not the dtype asked for" in text and "the recurrent layer ran in float16" in text
