"""`rnnbench kernels`: DeepBench's shapes timed on this machine, stored as rows, resumed, reported."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from rnnbench import results
from rnnbench.cli import app
from rnnbench.config import KernelSpec
from rnnbench.deepbench import published
from rnnbench.errors import UsageError
from rnnbench.measure import kernels
from rnnbench.measure.kernels import Shape, plan_kernels, run_kernels, select, suite_shapes

runner = CliRunner()
# The quickest shapes of the set: one GRU step, and the smallest LSTM.
QUICK = ["--cells", "gru,lstm", "--hidden", "512", "--batch", "16,32", "--timesteps", "1,25", "--devices", "cpu"]
QUICK += ["--threads", "1", "--min-time", "0.01", "--warmup", "1"]


def test_the_suites_hold_deepbench_s_53_shapes_and_the_paper_s_36_stacks():
    shapes = suite_shapes("deepbench")
    assert len(shapes) == 53 and [sum(s.cell == c for s in shapes) for c in ("rnn_relu", "lstm", "gru")] == [12, 22, 19]
    assert all(s.input_size == 1 and s.layers == 1 for s in shapes)  # the input product kept out
    paper = suite_shapes("paper")
    assert len(paper) == 36 and {s.batch for s in paper} == {100} and {s.input_size for s in paper} == {87}
    lstm = next(s for s in paper if (s.cell, s.layers) == ("lstm", 1) and s.hidden == 512)
    assert lstm.flops() == 2 * 4 * 512 * (87 + 512) * 100 * 100  # every product, the one-hot input's too


def test_deepbench_s_flop_count_is_the_one_behind_its_published_rates():
    v100 = published().query("processor == 'NVIDIA V100' and precision == 'fp32'")
    for row in v100.itertuples():
        shape = Shape(row.cell, row.hidden, row.batch, row.timesteps)
        assert shape.deepbench_flops() / (row.fwd_ms / 1e3) / 1e12 == pytest.approx(row.tflops_fwd, rel=0.02)


@pytest.mark.slow
def test_rows_are_stored_resumed_and_reported(tmp_path):
    out = tmp_path / "results"
    first = runner.invoke(app, ["kernels", *QUICK, "--results-dir", str(out), "--no-progress"])
    assert first.exit_code == 0, first.output
    df = results.load(out)
    assert len(df) == 3 and set(df.kind) == {"kernel"} and set(df.status) == {"ok"}  # gru 512x32x1, lstm 512x16/32x25
    row = df[df.cell == "lstm"].iloc[0]
    assert row.total_ms_median > row.fwd_ms_median > 0 and row.total_calls >= 3 and 0 < row.share_of_matmul
    assert row.deepbench_tflops_total == pytest.approx(
        3 * Shape("lstm", 512, int(row.batch), 25).deepbench_flops() / (row.total_ms_median / 1e3) / 1e12
    )
    again = run_kernels(
        KernelSpec(
            cells=("gru", "lstm"),
            hidden=(512,),
            batch=(16, 32),
            timesteps=(1, 25),
            devices=("cpu",),
            threads=1,
            min_time_s=0.01,
        ),
        out,
    )
    assert again == []  # every row stored: nothing measured again
    planned = plan_kernels(
        KernelSpec(cells=("lstm",), hidden=(512, 1024), batch=(16,), devices=("cpu",), threads=1, min_time_s=0.01), out
    )
    assert [(p.shape.hidden, p.stored, p.seconds is not None and p.seconds > 0) for p in planned] == [
        (512, True, False),
        (1024, False, True),
    ]
    page = tmp_path / "REPORT.md"
    reported = runner.invoke(app, ["report", "--results-dir", str(out), "--out", str(page)])
    assert reported.exit_code == 0, reported.output
    text = page.read_text()
    assert "## Recurrent layers beside DeepBench" in text and "3 layer timings" in text
    line = next(x for x in text.splitlines() if x.startswith("| lstm 512, batch 16, 25 steps"))
    assert "| 2.2 |" in line  # the V100's published forward + backward of that shape, beside ours
    assert (tmp_path / "figures" / "kernels-tflops.png").stat().st_size > 10_000


def test_a_shape_that_does_not_fit_is_recorded_and_the_rest_go_on(tmp_path, monkeypatch):
    real = kernels.measure

    def measure(shape, *args):
        if shape.timesteps == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real(shape, *args)

    monkeypatch.setattr(kernels, "measure", measure)
    spec = KernelSpec(
        cells=("gru", "lstm"),
        hidden=(512,),
        batch=(32,),
        timesteps=(1, 25),
        devices=("cpu",),
        threads=1,
        min_time_s=0.01,
    )
    records = run_kernels(spec, tmp_path)
    assert [(r.config["cell"], r.status) for r in records] == [("gru", "oom"), ("lstm", "ok")]
    assert "out of memory" in records[0].error


@pytest.mark.parametrize(
    "args, message",
    [
        (["--hidden", "333"], "no shape of the deepbench suite matches --hidden 333"),
        (["--cells", "lstm", "--min-time=-1"], "min_time_s (--min-time-s) must be above 0"),
        (["--cells", "lstm", "--dtype", "float64"], "unknown dtype 'float64'"),
        (["--suite", "imagenet"], "unknown suite 'imagenet'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_and_stores_nothing(tmp_path, args, message):
    result = runner.invoke(app, ["kernels", *args, "--devices", "cpu", "--results-dir", str(tmp_path / "r")])
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "r" / "runs").exists()


def test_a_dtype_the_device_lacks_is_exit_2_before_anything_is_stored(tmp_path, monkeypatch):
    real = kernels.Layer.total

    def total(self):
        if self.x.dtype == torch.float16:
            raise RuntimeError("\"addmm_impl_cpu_\" not implemented for 'Half'")
        return real(self)

    monkeypatch.setattr(kernels.Layer, "total", total)
    result = runner.invoke(app, ["kernels", *QUICK, "--dtype", "float32,float16", "--results-dir", str(tmp_path)])
    assert result.exit_code == 2 and "cpu cannot run a gru layer in float16" in result.output, result.output
    assert not (tmp_path / "runs").exists()


def test_select_names_what_the_suite_offers():
    with pytest.raises(UsageError, match="it has cell: gru,lstm,rnn_relu"):
        select(KernelSpec(batch=(7,)))


def test_the_paper_suite_times_a_model_s_stack_and_the_report_shows_it(tmp_path):
    stack = next(s for s in suite_shapes("paper") if (s.cell, s.layers) == ("rnn", 1))  # the smallest size first
    out, page = tmp_path / "results", tmp_path / "REPORT.md"
    args = ["--suite", "paper", "--cells", "rnn", "--hidden", str(stack.hidden), "--devices", "cpu", "--threads", "1"]
    measured = runner.invoke(app, ["kernels", *args, "--min-time", "0.01", "--results-dir", str(out), "--no-progress"])
    assert measured.exit_code == 0, measured.output
    (row,) = results.load(out).itertuples()
    assert (row.suite, row.batch, row.timesteps, row.input_size) == ("paper", 100, 100, 87)
    assert runner.invoke(app, ["report", "--results-dir", str(out), "--out", str(page)]).exit_code == 0
    text = page.read_text()
    assert "### The paper's recurrent stacks on cpu" in text and f"| RNN 1x{stack.hidden} |" in text
