"""The results store: atomic files, tidy load, bad files reported by name, export."""

from __future__ import annotations

import copy
import dataclasses
import io
import json

import pandas as pd
import pytest

from rnnbench import results
from rnnbench.config import Grid, Hardware, content_id

REQUIRED_COLUMNS = [
    "run_id",
    "schema_version",
    "status",
    "dataset",
    "cell",
    "num_layers",
    "size",
    "size_mode",
    "hidden_size",
    "n_params",
    "device",
    "seed",
    "test_loss_nats",
    "val_loss_nats",
    "train_chars_per_s",
    "step_ms_median",
    "peak_rss_mb",
]


CPU = Hardware("cpu", "Test CPU", 2, "2.13.0+cpu")


def record(cell="lstm", status="ok", test_loss=1.5, hardware=CPU):
    cfg = Grid.from_settings(dataset="x", cells=(cell,), layers=(2,), sizes=(64,), devices=("cpu",)).expand(
        "0" * 64, hardware={"cpu": hardware}
    )[0]
    metrics = {
        "hidden_size": 64,
        "n_params": 1000,
        "test_loss_nats": test_loss,
        "val_loss_nats": float("nan"),
        "train_chars_per_s": 1e4,
        "step_ms_median": 3.0,
        "peak_rss_mb": 300.0,
    }
    return results.Record.from_stored(
        {
            "schema_version": results.SCHEMA_VERSION,
            "run_id": cfg.run_id,
            "status": status,
            "error": None,
            "config": cfg.as_dict(),
            "env": {"host": "h", "torch_version": "t"},
            "metrics": metrics,
            "curve": [
                {"step": 10, "epoch": 0.5, "train_loss_nats": 2.0, "val_loss_nats": 1.9, "train_s": 3.0, "wall_s": 4.0}
            ],
        }
    )


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
    assert curves.to_dict("records") == [
        {
            "run_id": row.run_id,
            "step": 10,
            "epoch": 0.5,
            "train_loss_nats": 2.0,
            "val_loss_nats": 1.9,
            "train_s": 3.0,
            "wall_s": 4.0,
        }
    ]


def test_bad_files_are_named_and_do_not_stop_the_rest(tmp_path):
    results.write_run(tmp_path, record("lstm"))
    results.write_run(tmp_path, record("gru"))
    runs = tmp_path / "runs"
    (runs / "corrupt.json").write_text("{not json")
    (runs / "foreign.json").write_text(json.dumps({"hello": "world"}))
    future = record("rnn").stored() | {"schema_version": 99}
    (runs / f"{future['run_id']}.json").write_text(json.dumps(future))
    (runs / "notes.txt").write_text("hi")
    with pytest.warns(UserWarning) as warned:
        df = results.load(tmp_path)
    assert len(warned) == 4 and any("corrupt.json" in str(w.message) for w in warned)
    assert sorted(df.cell) == ["gru", "lstm"]
    problems = "\n".join(df.attrs["problems"])
    for name in ("corrupt.json", "foreign.json", f"{future['run_id']}.json", "notes.txt"):
        assert name in problems


def test_finished_identities_exclude_failed_runs(tmp_path):
    ok, failed = record("lstm"), record("gru", status="failed")
    results.write_run(tmp_path, ok)
    results.write_run(tmp_path, failed)
    assert set(results.stored_identities(tmp_path).values()) == {ok.run_id}


def schema_1(rec: results.Record) -> results.Record:
    """The record as schema 1 wrote it: no hardware in the config (it is in env), no clock in the curve."""
    config = {k: v for k, v in rec.config.items() if k != "hardware"}
    hw = rec.config["hardware"]
    env = rec.env | {
        "device_kind": hw["device_kind"],
        "cpu_model": hw["model"],
        "torch_num_threads": hw["threads"],
        "torch_version": hw["torch"],
        "gpu_name": None,
    }
    curve = [{k: v for k, v in p.items() if k not in ("train_s", "wall_s")} for p in rec.curve]
    old_id = content_id(config)
    return dataclasses.replace(rec, schema_version=1, run_id=old_id, config=config, env=env, curve=curve)


def test_hardware_is_part_of_the_identity_and_schema_1_rows_keep_theirs(tmp_path):
    one, two = record("lstm"), record("lstm", hardware=Hardware("cpu", "Test CPU", 1, "2.13.0+cpu"))
    gpu = record("lstm", hardware=Hardware("cuda", "NVIDIA H200", None, "2.11.0+cu130"))
    assert len({one.run_id, two.run_id, gpu.run_id}) == 3
    old = schema_1(one)
    assert old.run_id != one.run_id and old.identity == one.identity
    for rec in (old, two, gpu):
        results.write_run(tmp_path, rec)
    df = results.load(tmp_path).set_index("run_id")
    assert df.loc[old.run_id, "hardware"] == "Test CPU, 2 threads, torch 2.13.0+cpu"
    assert df.loc[two.run_id, "hardware"] == "Test CPU, 1 thread, torch 2.13.0+cpu"
    assert df.loc[gpu.run_id, "hardware"] == "NVIDIA H200, torch 2.11.0+cu130"
    curves = results.load_curves(tmp_path).set_index("run_id")
    assert pd.isna(curves.loc[old.run_id, "train_s"]) and curves.loc[two.run_id, "train_s"] == 3.0
    # The same run today: finished already, under its schema-1 id.
    assert results.stored_identities(tmp_path)[one.identity] == old.run_id


def test_a_row_stored_before_a_setting_existed_trained_with_its_default(tmp_path):
    new = record("lstm")
    old = copy.deepcopy(new)
    for name in ("split", "train_fraction", "val_fraction", "lstm_forget_bias", "gru_reset"):
        del old.config["train"][name]
    old.run_id = content_id(old.config)
    assert old.identity == new.identity  # a sweep finds it finished
    results.write_run(tmp_path, old)
    row = results.load(tmp_path).iloc[0]
    assert (row.split, row.train_fraction, row.lstm_forget_bias, row.gru_reset) == ("contiguous", 0.8, "1", "after")
    chunked = copy.deepcopy(new)
    chunked.config["train"]["split"] = "chunked"
    assert chunked.identity != old.identity


def test_merge_keeps_two_machines_runs_and_replaces_a_schema_1_failure(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    results.write_run(a, record("lstm"))
    results.write_run(b, record("lstm", hardware=Hardware("cuda", "NVIDIA H200", None, "2.11.0+cu130")))
    plan = results.plan_merge([b], a)
    assert not plan.conflicts and len(plan.writes) == 1
    results.apply_merge(plan)
    assert len(results.load(a)) == 2
    # A schema-1 failed attempt at a run, and the same run finished today: one row after the merge.
    c, d = tmp_path / "c", tmp_path / "d"
    results.write_run(c, schema_1(record("gru", status="failed")))
    results.write_run(d, record("gru"))
    results.apply_merge(results.plan_merge([d], c))
    df = results.load(c)
    assert list(df.status) == ["ok"] and list(df.schema_version) == [2]


def test_empty_results_load_with_the_columns(tmp_path):
    df = results.load(tmp_path)
    assert df.empty and "test_loss_nats" in df.columns


def test_export_formats(tmp_path):
    results.write_run(tmp_path, record())
    df = results.load(tmp_path)
    assert pd.read_csv(io.StringIO(results.export(df, "csv"))).loc[0, "cell"] == "lstm"
    assert json.loads(results.export(df, "jsonl").splitlines()[0])["cell"] == "lstm"


def test_integer_columns_stay_integers_beside_compare_rows_in_load_and_exports(tmp_path):
    results.write_run(tmp_path, record("lstm"))
    compare = {
        "dataset": "x",
        "device": "cpu",
        "threads": 2,
        "dtype": "float32",
        "batch_size": 8,
        "seq_len": 16,
        "workload": "matmul",
        "cell": None,
        "num_layers": None,
        "size": None,
        "size_mode": "params",
    }
    results.write_run(
        tmp_path, results.make_record("compare", "c0ffee000002", "ok", compare, {"host": "h"}, {"gflops": 5.0})
    )
    df = results.load(tmp_path)
    for column in ("num_layers", "size", "hidden_size", "n_params", "seed", "batch_size"):
        assert str(df[column].dtype) == "Int64", column
    assert str(df.started_at.dtype).startswith("datetime64")
    sweep = df[df.kind == "sweep"].iloc[0]
    csv_row = pd.read_csv(io.StringIO(results.export(df, "csv")), dtype=str).set_index("kind").loc["sweep"]
    assert (csv_row.num_layers, csv_row["size"], csv_row.n_params, csv_row.seed) == ("2", "64", "1000", "0")
    lines = [json.loads(x) for x in results.export(df, "jsonl").splitlines()]
    line = next(x for x in lines if x["kind"] == "sweep")
    assert line["num_layers"] == 2 and isinstance(line["num_layers"], int)
    assert next(x for x in lines if x["kind"] == "compare")["started_at"].startswith("20")  # ISO 8601
    assert sweep.num_layers == 2


def test_a_metric_is_one_entry_that_the_export_and_the_runs_table_show(tmp_path, monkeypatch):
    from rich.console import Console

    from rnnbench.cli.terminal import runs_table
    from rnnbench.results.metrics import METRICS, Metric, shown

    monkeypatch.setitem(
        METRICS,
        "grams_co2_per_char",
        Metric(
            "grams_co2_per_char",
            "g/char",
            "energy",
            "CO2 per character.",
            label="gCO2/char",
            fmt=".2g",
            shown_in=("table",),
            drop=13,
        ),
    )
    rec = record()
    rec.metrics |= {"grams_co2_per_char": 0.5, "joules_per_char": 0.0125}
    results.write_run(tmp_path, rec)
    df = results.load(tmp_path)
    columns = list(df.columns)
    assert columns.index("grams_co2_per_char") == columns.index("energy_j") + 1  # led by the declared metrics
    assert "grams_co2_per_char" in results.export(df, "csv").splitlines()[0]
    console = Console(width=400, record=True)
    console.print(runs_table([rec], "runs", width=400))
    text = console.export_text()
    assert "gCO2/char" in text and "0.5" in text and "J/char" in text and "0.0125" in text
    assert [m.name for m in shown("table")][0] == "test_loss_nats"  # the column that says a failed run's status
    # a metric no run has is no column
    console = Console(width=400, record=True)
    console.print(runs_table([record()], "runs", width=400))
    assert "J/char" not in console.export_text()
