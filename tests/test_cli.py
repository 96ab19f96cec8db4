"""The command line through Typer's CliRunner: sweeps, resume, interruption, bad input, help."""

from __future__ import annotations

import json
import sys

import pytest
import typer
from conftest import tiny_args
from typer.testing import CliRunner

from rnnbench import results
from rnnbench.cli import app
from rnnbench.sweep import driver, runs

runner = CliRunner()


def invoke(args, **kwargs):
    result = runner.invoke(app, args, **kwargs)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def stored(results_dir):
    return {r.run_id: r for r in results.iter_records(results_dir)[0]}


def test_sweep_stores_one_file_per_run_and_resume_skips_them(tiny_text, tmp_path):
    out = tmp_path / "results"
    first = invoke(tiny_args(tiny_text, out))
    assert first.exit_code == 0, first.output
    runs = stored(out)
    assert len(runs) == 3 and {r.status for r in runs.values()} == {"ok"}
    assert {r.config["cell"] for r in runs.values()} == {"rnn", "lstm", "gru"}
    assert "3 to run" in first.output and "sweep on tiny: 3 run(s)" in first.output
    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}

    again = invoke(tiny_args(tiny_text, out))
    assert again.exit_code == 0 and "3 already finished, 0 to run" in again.output
    assert {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()} == mtimes

    forced = invoke(tiny_args(tiny_text, out, cells="gru") + ["--force"])
    assert forced.exit_code == 0 and "1 to run" in forced.output


def test_interrupted_sweep_keeps_finished_runs_and_continues(tiny_text, tmp_path, monkeypatch):
    out = tmp_path / "results"
    real_train = runs.train
    calls = []

    def train_then_interrupt(cfg, corpus, *args):
        calls.append(cfg.cell)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_train(cfg, corpus, *args)

    monkeypatch.setattr(runs, "train", train_then_interrupt)
    interrupted = invoke(tiny_args(tiny_text, out))
    assert interrupted.exit_code == 130 and "interrupted" in interrupted.output
    assert [r.config["cell"] for r in stored(out).values()] == ["rnn"]

    monkeypatch.setattr(runs, "train", real_train)
    resumed = invoke(tiny_args(tiny_text, out))
    assert resumed.exit_code == 0 and "1 already finished, 2 to run" in resumed.output
    assert len(stored(out)) == 3


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tiny_text, tmp_path, monkeypatch):
    out = tmp_path / "results"
    real_train = runs.train

    def failing_lstm(cfg, corpus, *args):
        if cfg.cell == "lstm":
            raise RuntimeError("simulated kernel failure")
        return real_train(cfg, corpus, *args)

    monkeypatch.setattr(runs, "train", failing_lstm)
    result = invoke(tiny_args(tiny_text, out))
    assert result.exit_code == 0
    by_cell = {r.config["cell"]: r for r in stored(out).values()}
    assert by_cell["lstm"].status == "failed" and "simulated kernel failure" in by_cell["lstm"].error
    assert by_cell["rnn"].status == by_cell["gru"].status == "ok"
    # A failed run is tried again by the next invocation.
    monkeypatch.setattr(runs, "train", real_train)
    assert "1 to run" in invoke(tiny_args(tiny_text, out)).output


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(cells="rnn,lstn"), "unknown cell 'lstn'"),
        (dict(devices="cuda"), "device 'cuda' is not available"),
        (dict(devices="tpu"), "unknown device"),
        (dict(layers="one"), "--layers takes a comma-separated list of int"),
        (dict(size_mode="width"), "unknown size_mode"),
        (dict(batch_size=5000), "too small"),
        (dict(dataset="/no/such/file.txt"), "no corpus"),
        (dict(dropout=1.5), "dropout"),
    ],
)
def test_bad_sweep_input_is_one_line_and_exit_2(tiny_text, tmp_path, overrides, message):
    import torch

    if overrides.get("devices") == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "results"
    result = invoke(tiny_args(tiny_text, out, **overrides))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (out / "runs").exists()  # nothing trained, nothing written


def test_bad_preset_is_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("cellz = ['lstm']\n")
    assert "unknown key(s) cellz" in invoke(["sweep", "--preset", str(bad)]).output
    result = invoke(["sweep", "--preset", "nope"])
    assert result.exit_code == 2 and "no preset 'nope'" in result.output


def test_results_show_and_export(tiny_text, tmp_path):
    out = tmp_path / "results"
    invoke(tiny_args(tiny_text, out, cells="gru"))
    (out / "runs" / "junk.json").write_text("[1, 2")
    shown = invoke(["results", "--results-dir", str(out)])
    assert shown.exit_code == 0 and "gru" in shown.output and "junk.json" in shown.output
    exported = invoke(["results", "export", "--format", "jsonl", "--results-dir", str(out)])
    row = json.loads([line for line in exported.stdout.splitlines() if line.startswith("{")][0])
    assert row["cell"] == "gru" and row["status"] == "ok"
    target = tmp_path / "runs.csv"
    assert invoke(["results", "export", "--out", str(target), "--results-dir", str(out)]).exit_code == 0
    assert target.read_text().startswith("run_id,schema_version,kind,status")
    bad = invoke(["results", "export", "--format", "xml", "--results-dir", str(out)])
    assert bad.exit_code == 2 and "unknown export format" in bad.output


def test_results_of_an_empty_folder(tmp_path):
    result = invoke(["results", "--results-dir", str(tmp_path)])
    assert result.exit_code == 0 and "no runs stored" in result.output


def test_data_list_shows_every_corpus(monkeypatch, tmp_path):
    monkeypatch.delenv("RNNBENCH_DATA_DIR", raising=False)
    result = invoke(["data", "list", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0
    for name in ("warpeace", "linux", "synthetic", "500,000", "downloads on first use", "build-linux"):
        assert name in result.output


def test_data_list_shows_the_split_sizes_of_a_layout(monkeypatch, tmp_path):
    monkeypatch.delenv("RNNBENCH_DATA_DIR", raising=False)
    # synthetic: 500,000 bytes, 50 chunks of 100 x 100 per row: 40 / 5 / 5 of them.
    for args, title, sizes in (
        (["--preset", "paper"], "chunked at 100 x 100, 80/10/10", "400,000"),
        (
            ["--split", "chunked", "--batch-size", "50", "--train-fraction", "0.9", "--val-fraction", "0.05"],
            "chunked at 50 x 100, 90/5/5",
            "450,000",
        ),
        ([], "contiguous, 80/10/10", "400,000"),
    ):
        result = invoke(["data", "list", "--data-dir", str(tmp_path), *args])
        assert result.exit_code == 0 and title in result.output and sizes in result.output, (args, result.output)
    assert invoke(["data", "list", "--split", "striped"]).exit_code == 2


def test_build_linux_refuses_a_tarball_of_other_sources(tmp_path):
    from test_data import _tarball

    tarball = _tarball(tmp_path, {"kernel/a.c": b"int main;"})
    out = tmp_path / "linux.txt"
    result = invoke(["data", "build-linux", str(tarball), "--out", str(out)])
    assert result.exit_code == 2 and "is not the pinned corpus" in result.output
    assert not out.exists()
    assert invoke(["data", "build-linux", str(tmp_path / "none.tar.xz")]).exit_code == 2


def test_devices_says_when_there_is_no_cuda():
    import torch

    result = invoke(["devices"])
    assert result.exit_code == 0 and result.output.startswith("cpu: ")
    assert ("no CUDA device" in result.output) == (not torch.cuda.is_available())


def _commands(command, path=()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, path + (name,))


def test_every_command_and_option_has_help():
    root = typer.main.get_command(app)
    for path, command in _commands(root):
        assert command.help, f"command {' '.join(path)} has no help"
        for param in command.params:
            if param.param_type_name == "option" and param.name != "help":
                assert param.help, f"option {param.name} of {' '.join(path) or 'rnnbench'} has no help"
            if param.param_type_name == "argument":
                assert getattr(param, "help", None), f"argument {param.name} of {' '.join(path)} has no help"


def test_version_and_help_run():
    assert invoke(["--version"]).output.startswith("rnnbench ")
    assert "sweep" in invoke(["--help"]).output
    # Brackets in help text are not taken for rich markup.
    assert "'rnnbench[ray]'" in " ".join(invoke(["sweep", "--help"], terminal_width=400).output.split())


def test_ray_executor_without_ray_says_how_to_install(tiny_text, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    result = invoke(tiny_args(tiny_text, tmp_path / "r") + ["--executor", "ray"])
    assert result.exit_code == 2 and "pip install 'rnnbench[ray]'" in result.output
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--executor", "slurm"], "unknown executor 'slurm'"),
        (["--ray-address", "auto"], "--ray-address needs --executor ray"),
        (["--ray-cpus-per-run", "2"], "--ray-cpus-per-run needs --executor ray"),
    ],
)
def test_bad_executor_options_are_exit_2(tiny_text, tmp_path, extra, message):
    result = invoke(tiny_args(tiny_text, tmp_path / "r") + extra)
    assert result.exit_code == 2 and message in result.output


def test_results_lists_rows_of_every_kind_beside_old_sweep_rows(tiny_text, tmp_path):
    out = tmp_path / "results"
    invoke(tiny_args(tiny_text, out, cells="gru"))
    (path,) = (out / "runs").iterdir()
    record = json.loads(path.read_text())
    del record["kind"]  # written before rows had a kind: a sweep run
    path.write_text(json.dumps(record))
    results.write_run(
        out,
        results.make_record(
            "baseline", "0123456789ab", "ok", {"model": "ngram", "order": 3}, {}, {"test_loss_nats": 1.0}
        ),
    )
    shown = invoke(["results", "--results-dir", str(out)])
    assert shown.exit_code == 0 and "1 sweep runs" in shown.output and "and 1 baseline rows" in shown.output


@pytest.mark.slow
def test_threads_are_a_setting_of_a_sweep_and_combine_with_jobs(tiny_text, tmp_path):
    import os

    import torch

    from rnnbench import results

    before = torch.get_num_threads()
    cores = os.cpu_count()
    for args, expected, crowded in (
        (["--threads", "1"], 1, False),
        (["--jobs", "2", "--threads", str(cores)], cores, True),  # more threads than cores: said before the runs
        (["--jobs", "2"], max(1, before // 2), False),
    ):
        out = tmp_path / "-".join(args)
        result = invoke(tiny_args(tiny_text, out, cells="gru") + args)
        assert result.exit_code == 0, result.output
        assert set(results.load(out).torch_num_threads) == {expected}, args
        assert {r.config["hardware"]["threads"] for r in results.iter_records(out)[0]} == {expected}
        assert ("CPU runs will slow each other down" in result.output) == crowded, args
    assert torch.get_num_threads() == before  # the caller's process keeps its own count
    ray = invoke(tiny_args(tiny_text, tmp_path / "ray") + ["--executor", "ray", "--threads", "1"])
    assert ray.exit_code == 2 and "--ray-cpus-per-run" in ray.output


@pytest.mark.parametrize(
    ("jobs", "threads", "advice"),
    [(8, 1, "use --jobs 2 --threads 1"), (2, 2, "use --threads 1"), (1, 4, "use --threads 2")],
)
def test_crowded_cpu_runs_get_advice_that_fits_the_cores(tiny_text, monkeypatch, jobs, threads, advice):
    # The paper preset's 8 jobs (meant for a GPU) on a 2-core CPU: no thread count mends that.
    from types import SimpleNamespace

    from conftest import tiny_grid

    monkeypatch.setattr(driver, "busy_cores", lambda: 0.0)
    monkeypatch.setattr(driver.os, "cpu_count", lambda: 2)
    grid = tiny_grid(tiny_text, devices=("cpu",), jobs=jobs)
    (notice,) = driver.machine_notices(grid, SimpleNamespace(threads=threads))
    assert notice.endswith(f"CPU runs will slow each other down; {advice}"), notice


def test_a_busy_machine_is_said_once_before_the_runs(tiny_text, tmp_path, monkeypatch):
    monkeypatch.setattr(driver, "busy_cores", lambda: 1.5)
    result = invoke(tiny_args(tiny_text, tmp_path / "r", cells="gru"))
    assert result.exit_code == 0 and result.output.count("this machine is busy: other processes keep 1.5") == 1


def test_the_runs_table_reads_at_80_columns_and_tells_rows_apart(tmp_path):
    from rich.console import Console
    from test_results import record

    from rnnbench.cli import terminal
    from rnnbench.config import Hardware

    records = [record("lstm"), record("lstm", hardware=Hardware("cuda", "NVIDIA H200", None, "2.11.0+cu130"))]
    for width in (80, 100, 200):
        console = Console(width=width, record=True)
        console.print(terminal.runs_table(records, "runs", width=width))
        text = console.export_text()
        assert max(len(line) for line in text.splitlines()) <= width
        for r in records:
            assert r.run_id in text and f"{r.metrics['test_loss_nats']:.3f}" in text  # never cut
        assert "H200," in text and "Test," in text and "2.11.0+cu130" in text  # what tells the two apart, whole
        assert "…" not in text
        assert ("left out at" in text) == (width < 200)  # it says what it left out, and at 200 nothing is


def test_every_numeric_option_of_every_command_declares_its_range():
    """A numeric option is a setting (its Range is declared with it and checked everywhere) or a
    plain option with a Click range: none takes any number."""
    import typer

    from rnnbench.config import COMPARE_SETTINGS, GRID_SETTINGS, KERNEL_SETTINGS

    settings = {**GRID_SETTINGS, **COMPARE_SETTINGS, **KERNEL_SETTINGS}

    def commands(group, path=()):
        for name, command in getattr(group, "commands", {}).items():
            yield from commands(command, (*path, name)) if hasattr(command, "commands") else [((*path, name), command)]

    def numeric(param) -> bool:
        bare = getattr(param, "bare_type", None)  # Typer's own parameters; Click's have .type
        kind = bare() if callable(bare) else getattr(param.type, "name", "")
        return kind in (int, float, "int", "float", "integer")

    def ranged(param) -> bool:
        bounds = (getattr(param, "min", None), getattr(param, "max", None))
        return any(b is not None for b in bounds) or type(getattr(param, "type", None)).__name__.endswith("Range")

    unranged = []
    for path, command in commands(typer.main.get_command(app)):
        for param in command.params:
            if numeric(param) and not ranged(param):
                declared = settings.get(param.name)
                if declared is None or declared.valid is None:
                    unranged.append(f"{' '.join(path)} --{param.name}")
    assert unranged == []


@pytest.mark.parametrize(
    "args, said",
    [
        (["sweep", "--lr", "nan", "--results-dir", "r"], "lr (--lr) must be above 0, got nan"),
        (["sweep", "--dropout", "inf", "--results-dir", "r"], "dropout (--dropout) must be in [0, 1), got inf"),
        (["sample", "x", "--temperature", "nan", "--results-dir", "r"], "Invalid value for '--temperature'"),
        (["results", "compare", "r", "r", "--min-change", "nan"], "Invalid value for '--min-change'"),
    ],
)
def test_a_number_that_is_not_finite_is_refused_in_one_line(tmp_path, args, said):
    """NaN compares false with every bound: a setting's Range refuses it as Typer's ranges do
    (`--lr nan` trained once)."""
    result = invoke([str(tmp_path / a) if a == "r" else a for a in args])
    assert result.exit_code == 2 and said in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "r").exists()
