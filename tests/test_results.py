"""The results store: atomic files, tidy load, bad files reported by name, export."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from rnnbench import results
from rnnbench.config import Grid

REQUIRED_COLUMNS = ["run_id", "schema_version", "status", "dataset", "cell", "num_layers", "size", "size_mode",
                    "hidden_size", "n_params", "device", "seed", "test_loss_nats", "val_loss_nats",
                    "train_chars_per_s", "step_ms_median", "peak_rss_mb"]


def record(cell="lstm", status="ok", test_loss=1.5):
    cfg = Grid.from_settings(dataset="x", cells=(cell,), layers=(2,), sizes=(64,), devices=("cpu",)).expand("0" * 64)[0]
    metrics = {"hidden_size": 64, "n_params": 1000, "test_loss_nats": test_loss, "val_loss_nats": float("nan"),
               "train_chars_per_s": 1e4, "step_ms_median": 3.0, "peak_rss_mb": 300.0}
    return {"schema_version": results.SCHEMA_VERSION, "run_id": cfg.run_id, "status": status, "error": None,
            "config": cfg.as_dict(), "env": {"host": "h", "torch_version": "t"}, "metrics": metrics,
            "curve": [{"step": 10, "epoch": 0.5, "train_loss_nats": 2.0, "val_loss_nats": 1.9}]}


def test_write_then_load_one_tidy_row(tmp_path):
    path = results.write_run(tmp_path, record())
    assert path.parent == tmp_path / "runs" and json.loads(path.read_text())["metrics"]["val_loss_nats"] is None
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary left
    df = results.load(tmp_path)
    assert len(df) == 1
    assert list(df.columns[:6]) == ["run_id", "schema_version", "kind", "status", "error", "dataset"]
    assert set(REQUIRED_COLUMNS) <= set(df.columns)
    row = df.iloc[0]
    assert (row.cell, row.num_layers, row.batch_size, row.host) == ("lstm", 2, 100, "h")
    assert pd.isna(row.val_loss_nats)
    curves = results.load_curves(tmp_path)
    assert curves.to_dict("records") == [{"run_id": row.run_id, "step": 10, "epoch": 0.5,
                                          "train_loss_nats": 2.0, "val_loss_nats": 1.9}]


def test_bad_files_are_named_and_do_not_stop_the_rest(tmp_path):
    results.write_run(tmp_path, record("lstm"))
    results.write_run(tmp_path, record("gru"))
    runs = tmp_path / "runs"
    (runs / "corrupt.json").write_text("{not json")
    (runs / "foreign.json").write_text(json.dumps({"hello": "world"}))
    future = record("rnn") | {"schema_version": 99}
    (runs / f"{future['run_id']}.json").write_text(json.dumps(future))
    (runs / "notes.txt").write_text("hi")
    with pytest.warns(UserWarning) as warned:
        df = results.load(tmp_path)
    assert len(warned) == 4 and any("corrupt.json" in str(w.message) for w in warned)
    assert sorted(df.cell) == ["gru", "lstm"]
    problems = "\n".join(df.attrs["problems"])
    for name in ("corrupt.json", "foreign.json", f"{future['run_id']}.json", "notes.txt"):
        assert name in problems


def test_finished_ids_exclude_failed_runs(tmp_path):
    ok, failed = record("lstm"), record("gru", status="failed")
    results.write_run(tmp_path, ok)
    results.write_run(tmp_path, failed)
    assert results.finished_run_ids(tmp_path) == {ok["run_id"]}


def test_empty_results_load_with_the_columns(tmp_path):
    df = results.load(tmp_path)
    assert df.empty and "test_loss_nats" in df.columns


def test_export_formats(tmp_path):
    results.write_run(tmp_path, record())
    df = results.load(tmp_path)
    assert pd.read_csv(io.StringIO(results.export(df, "csv"))).loc[0, "cell"] == "lstm"
    assert json.loads(results.export(df, "jsonl").splitlines()[0])["cell"] == "lstm"
