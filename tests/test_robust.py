"""Failing before training, never after: unwritable folders, full disks, odd corpora, shared
folders, interrupted writes, and reports of folders with nothing to show."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import tiny_args
from test_cli import invoke, stored

from rnnbench import files, results
from rnnbench.config import Grid, Hardware
from rnnbench.core.data import Corpus, load_corpus
from rnnbench.core.devices import is_out_of_memory
from rnnbench.errors import StorageError, UsageError
from rnnbench.results.claims import Claims

REPO = Path(__file__).resolve().parents[1]


def one_line_error(result, *words):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    for word in words:
        assert word in lines[0], lines[0]


# --- writes -----------------------------------------------------------------------------------------


def test_an_unwritable_results_folder_is_one_line_before_training(tiny_text, tmp_path):
    started = time.perf_counter()
    result = invoke(tiny_args(tiny_text, Path("/proc/rnnbench-forbidden")))
    one_line_error(result, "/proc/rnnbench-forbidden", "cannot be written")
    assert time.perf_counter() - started < 10  # no run trained
    results.write_run(tmp_path, sweep_row("lstm", "ok", 1.5))
    for command in (
        ["report", "--results-dir", str(tmp_path), "--out", "/proc/x/REPORT.md"],
        ["results", "merge", str(tmp_path), "--into", "/proc/x"],
        ["results", "export", "--results-dir", str(tmp_path), "--out", "/proc/x/runs.csv"],
        ["baseline", "ngram", "--order", "2", "--dataset", "synthetic", "--results-dir", "/proc/x"],
    ):
        one_line_error(invoke(command), "cannot be written")


def test_a_write_that_fails_mid_sweep_stops_it_keeping_what_is_stored(tiny_text, tmp_path, monkeypatch):
    out = tmp_path / "results"
    real_fsync, records_written = os.fsync, []

    def fsync(fd):  # the disk fills up after the first run's record
        name = os.readlink(f"/proc/self/fd/{fd}")
        if "/runs/" in name and not name.endswith("probe"):
            if records_written:
                raise OSError(errno.ENOSPC, "No space left on device")
            records_written.append(name)
        return real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", fsync)
    result = invoke(tiny_args(tiny_text, out))
    assert result.exit_code == 2
    assert "error: cannot write" in result.output and "No space left on device (ENOSPC)" in result.output
    assert len(stored(out)) == 1  # the first run is kept, whole
    assert not [p for p in out.rglob("*.tmp")]  # no partial file
    monkeypatch.setattr(files.os, "fsync", real_fsync)
    again = invoke(tiny_args(tiny_text, out))
    assert again.exit_code == 0 and "1 already finished, 2 to run" in again.output


def test_stray_temporaries_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = tmp_path / "checkpoints" / "abc"
    folder.mkdir(parents=True)
    gone = folder / f".latest.pt.{files.HOST}.{dead.pid}.x1y2.tmp"
    old_style = folder / ".best.pt.q9w8e7.tmp"  # written before temporaries named their writer
    live = folder / f".latest.pt.{files.HOST}.{os.getpid()}.z3.tmp"
    elsewhere = folder / f".latest.pt.other-host.{dead.pid}.z4.tmp"
    for path in (gone, old_style, live, elsewhere):
        path.write_bytes(b"x" * 100)
    assert sorted(files.remove_stray_temporaries(tmp_path)) == sorted([gone, old_style])
    assert live.exists() and elsewhere.exists()


def test_a_corrupt_latest_checkpoint_is_moved_aside_and_an_unreadable_best_reported(tiny_text, tmp_path):
    out = tmp_path / "results"
    assert invoke(tiny_args(tiny_text, out)).exit_code == 0
    run_id = next(r.run_id for r in stored(out).values() if r.config["cell"] == "lstm")
    (out / "runs" / f"{run_id}.json").unlink()  # as if it was interrupted
    latest = out / "checkpoints" / run_id / "latest.pt"
    latest.write_bytes(b"not a checkpoint")
    other = next(r.run_id for r in stored(out).values() if r.config["cell"] == "gru")
    best = out / "checkpoints" / other / "best.pt"
    best.write_bytes(best.read_bytes()[:100])  # cut short
    result = invoke(tiny_args(tiny_text, out))
    assert result.exit_code == 0, result.output
    assert "moved to" in result.output and (latest.parent / "latest.pt.corrupt").exists()
    assert stored(out)[run_id].status == "ok"
    assert f"run {other} is finished but its" in result.output and "unreadable" in result.output


# --- shared folders ------------------------------------------------------------------------------------


def test_a_claim_of_a_live_sweep_is_respected_and_a_dead_ones_taken_over(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        folder = tmp_path / "claims"
        folder.mkdir()
        (folder / "live.claim").write_text(json.dumps({"host": files.HOST, "pid": sleeper.pid}))
        (folder / "dead.claim").write_text(json.dumps({"host": files.HOST, "pid": dead.pid}))
        (folder / "old.claim").write_text(json.dumps({"host": "another-machine", "pid": 1}))
        os.utime(folder / "old.claim", (time.time() - 3600, time.time() - 3600))  # no heartbeat for an hour
        (folder / "fresh.claim").write_text(json.dumps({"host": "another-machine", "pid": 1}))
        with Claims(tmp_path) as claims:
            assert not claims.take("live") and "pid" in claims.holder("live")
            assert claims.take("dead") and claims.take("old") and not claims.take("fresh")
            assert claims.take("new") and not Claims(tmp_path).take("new")  # held by this live sweep
            assert json.loads((folder / "dead.claim").read_text())["pid"] == os.getpid()
        assert not (folder / "dead.claim").exists()  # released at the end
        assert (folder / "live.claim").exists()
    finally:
        sleeper.kill()


@pytest.mark.slow
def test_two_sweeps_on_one_folder_train_each_run_once(tiny_text, tmp_path):
    out = tmp_path / "results"
    args = [sys.executable, "-m", "rnnbench"] + tiny_args(
        tiny_text, out, cells="rnn,lstm,gru", layers="1,2", max_steps=150
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}  # one core each
    sweeps = [
        subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)
        for _ in range(2)
    ]
    outputs = [s.communicate(timeout=240)[0] for s in sweeps]
    assert [s.returncode for s in sweeps] == [0, 0], outputs
    trained = [line for o in outputs for line in o.splitlines() if ": test " in line and "nats" in line]
    assert len(trained) == 6, outputs  # each of the 6 runs trained by one sweep only
    assert len(stored(out)) == 6 and not list((out / "claims").glob("*.claim"))


# --- corpora ---------------------------------------------------------------------------------------


def test_a_fifo_or_folder_as_corpus_is_refused_in_one_line(tmp_path):
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    started = time.perf_counter()
    with pytest.raises(UsageError, match="FIFO"):
        load_corpus(str(fifo))
    assert time.perf_counter() - started < 5
    one_line_error(invoke(["sweep", "--dataset", str(fifo), "--results-dir", str(tmp_path / "r")]), "FIFO")
    with pytest.raises(UsageError, match="directory"):
        load_corpus(str(tmp_path))


def test_a_corpus_is_held_as_bytes_and_encoded_one_byte_per_character():
    data = bytes(range(256)) * 10 + b"hello"
    corpus = Corpus("all", data, "test")
    assert corpus.vocab == tuple(range(256))
    encoded = corpus.encode()
    assert encoded.dtype.itemsize == 1 and len(encoded) == len(data)
    assert bytes(corpus.vocab[i] for i in encoded.tolist()) == data
    small = Corpus("small", b"abcabc\n", "test")
    assert small.vocab == (10, 97, 98, 99) and small.encode().tolist() == [1, 2, 3, 1, 2, 3, 0]


# --- small things ---------------------------------------------------------------------------------------


def test_an_empty_list_item_is_an_error(tiny_text, tmp_path):
    one_line_error(invoke(tiny_args(tiny_text, tmp_path, cells="lstm,,gru")), "--cells", "empty item")
    one_line_error(invoke(tiny_args(tiny_text, tmp_path, sizes="16,")), "--sizes", "empty item")


def test_a_cpu_allocation_failure_is_stored_as_oom(tiny_text, tmp_path):
    out = tmp_path / "results"
    result = invoke(tiny_args(tiny_text, out, cells="rnn", sizes="200000"))  # a 160 GB weight matrix
    assert result.exit_code == 0, result.output
    (record,) = stored(out).values()
    assert record.status == "oom", record.error
    assert is_out_of_memory(
        RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")
    )
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


def test_a_big_sweep_says_its_size_and_duration_first(tmp_path):
    from rnnbench.results import ResultsFolder
    from rnnbench.sweep.driver import big_sweep_notice

    grid = Grid.from_settings(
        cells=("lstm",),
        layers=(1,),
        sizes=(64,),
        devices=("cpu",),
        seeds=tuple(range(1500)),
        time_budget_s=60.0,
        jobs=2,
    )
    runs = grid.expand("0" * 64, hardware={"cpu": Hardware("cpu", "Test CPU", 1, "t")})
    text = big_sweep_notice(grid, runs, ResultsFolder(tmp_path))
    assert text.startswith(
        "1,500 runs to train, 2 at a time: 60.0 s per run (the time budget per run) makes at most 12.5 hours"
    )
    no_budget = Grid.from_settings(
        cells=("lstm",), layers=(1,), sizes=(64,), devices=("cpu",), seeds=tuple(range(1500))
    )
    assert "no estimate of the time yet" in big_sweep_notice(no_budget, runs, ResultsFolder(tmp_path))


def test_storage_errors_name_the_file_and_the_cause(tmp_path):
    target = tmp_path / "ro" / "x.json"
    target.parent.mkdir()
    target.parent.chmod(0o500)
    try:
        if os.access(target.parent, os.W_OK):  # root writes anyway: use a path that cannot exist
            target = Path("/proc/rnnbench-nowhere/x.json")
        with pytest.raises(StorageError, match="cannot write .*x.json"):
            files.write_atomic(target, b"{}")
    finally:
        (tmp_path / "ro").chmod(0o700)


# --- reports of any folder ---------------------------------------------------------------------------


def sweep_row(cell: str, status: str, loss: float | None = None) -> dict:
    cfg = Grid.from_settings(
        dataset="warpeace", cells=(cell,), layers=(1,), sizes=(64,), devices=("cpu",), epochs=1
    ).expand("f" * 64, hardware={"cpu": Hardware("cpu", "Test CPU", 2, "t")})[0]
    metrics = (
        {}
        if loss is None
        else {
            "test_loss_nats": loss,
            "val_loss_nats": loss,
            "train_chars_per_s": 1e4,
            "step_ms_median": 10.0,
            "hidden_size": 64,
            "n_params": 1000,
            "vocab_size": 87,
        }
    )
    error = None if status == "ok" else f"{status}: something"
    return results.make_record("sweep", cfg.run_id, status, cfg.as_dict(), {"host": "h"}, metrics, error)


_COMPARE_ROWS: list[dict] = []


def compare_row() -> dict:
    """A real compare-devices row (measured once, tiny)."""
    if not _COMPARE_ROWS:
        import tempfile

        from rnnbench.config import CompareSpec
        from rnnbench.measure.device_speed import run_compare

        with tempfile.TemporaryDirectory() as folder:
            spec = CompareSpec(
                dataset="synthetic",
                devices=("cpu",),
                cells=("lstm",),
                layers=(1,),
                sizes=(16,),
                size_mode="hidden",
                batch_size=8,
                seq_len=16,
                threads=(1,),
                min_time_s=0.01,
                warmup=1,
            )
            _COMPARE_ROWS.extend(run_compare(spec, folder))
    return _COMPARE_ROWS[-1]


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param(lambda: [sweep_row("lstm", "failed"), sweep_row("gru", "failed")], id="failed-only"),
        pytest.param(lambda: [sweep_row("lstm", "oom")], id="oom-only"),
        pytest.param(lambda: [compare_row()], id="compare-only"),
        pytest.param(lambda: [sweep_row("lstm", "ok", 1.5), sweep_row("gru", "failed"), compare_row()], id="mixed"),
    ],
)
@pytest.mark.parametrize("fmt", ["markdown", "html", "csv"])
def test_a_report_of_any_folder_renders_or_refuses_in_one_line(tmp_path, rows, fmt):
    for record in rows():
        results.write_run(tmp_path, record)
    result = invoke(["report", "--results-dir", str(tmp_path), "--format", fmt, "--out", str(tmp_path / f"r.{fmt}")])
    assert result.exit_code == 0, result.output  # every folder renders, whatever it holds
    text = (tmp_path / f"r.{fmt}").read_text()
    stored = rows()
    sweeps = [r for r in stored if r.kind == "sweep"]
    if fmt == "csv":  # the loss grids: a header and a row per grid cell, or nothing without sweep runs
        assert text.splitlines()[0].startswith("dataset,device") if sweeps else text == ""
        return
    statuses = {r.status for r in sweeps} - {"ok"}
    assert all(status in text for status in statuses)  # says what is missing
    assert ("Device comparison" in text) == any(r.kind == "compare" for r in stored)
