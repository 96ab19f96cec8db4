"""Static sharding of a grid (`sweep --shard I/N`) and merging result folders (`results merge`)."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
from conftest import tiny_args
from test_cli import invoke, stored

from rnnbench import results
from rnnbench.config import Grid
from rnnbench.sweep import Shard

SIX_RUNS = dict(layers="1,2")  # 3 cells x 2 depths


def outcome(results_dir):
    """What a sweep found, independent of when and how long: run id -> (status, test loss)."""
    return {run_id: (r.status, r.metrics.get("test_loss_nats")) for run_id, r in stored(results_dir).items()}


def test_shards_cover_the_grid_once_and_merge_to_the_single_sweep(tiny_text, tmp_path):
    single = tmp_path / "single"
    assert invoke(tiny_args(tiny_text, single, **SIX_RUNS)).exit_code == 0
    shard_ids = []
    for index in (1, 2, 3):
        out = tmp_path / f"shard{index}"
        result = invoke(tiny_args(tiny_text, out, **SIX_RUNS) + ["--shard", f"{index}/3"])
        assert result.exit_code == 0 and f"shard {index}/3: 2 of 6 runs" in result.output, result.output
        shard_ids.append(set(stored(out)))
    assert all(len(ids) == 2 for ids in shard_ids)
    assert set.union(*shard_ids) == set(stored(single)) and sum(map(len, shard_ids)) == 6  # disjoint, complete

    merged = tmp_path / "merged"
    result = invoke(["results", "merge", *(str(tmp_path / f"shard{i}") for i in (1, 2, 3)), "--into", str(merged)])
    assert result.exit_code == 0 and "added 6 run(s)" in result.output and "0 conflict(s)" in result.output
    assert outcome(merged) == outcome(single)  # same runs, same statuses, same losses (CPU training is deterministic)
    assert {p.name for p in (merged / "checkpoints").iterdir()} == set(stored(single))

    again = invoke(["results", "merge", str(tmp_path / "shard1"), "--into", str(merged)])
    assert again.exit_code == 0 and "added 0 run(s)" in again.output and "2 duplicate(s)" in again.output


def test_shard_selection_is_a_deterministic_round_robin():
    runs = Grid.from_settings(cells=("rnn", "lstm", "gru"), layers=(1, 2, 3), sizes=(64, 128), devices=("cpu",)).expand(
        "0" * 64
    )
    slices = [Shard(i, 4).select(runs) for i in (1, 2, 3, 4)]
    assert sorted(len(s) for s in slices) == [4, 4, 5, 5]
    assert sorted(cfg.run_id for s in slices for cfg in s) == sorted(cfg.run_id for cfg in runs)
    assert Shard.parse(" 2 / 4 ").select(runs) == slices[1]


@pytest.mark.parametrize("text", ["0/3", "4/3", "a/b", "3", "1/0", "-1/3"])
def test_bad_shard_is_one_line_and_exit_2(tiny_text, tmp_path, text):
    result = invoke(tiny_args(tiny_text, tmp_path / "r") + ["--shard", text])
    assert result.exit_code == 2 and "--shard takes I/N" in result.output
    assert not (tmp_path / "r").exists()


def edited_copy(source, dest, run_id, **metrics):
    """A copy of a result folder in which one run's record says something else."""
    shutil.copytree(source, dest)
    path = dest / "runs" / f"{run_id}.json"
    record = json.loads(path.read_text())
    record["metrics"].update(metrics)
    record["finished_at"] = "2030-01-01T00:00:00+00:00"
    path.write_text(json.dumps(record))
    return record


def test_two_results_for_one_run_id_are_reported_not_resolved(tiny_text, tmp_path):
    first = tmp_path / "a"
    assert invoke(tiny_args(tiny_text, first)).exit_code == 0
    run_id = sorted(stored(first))[0]
    edited_copy(first, tmp_path / "b", run_id, test_loss_nats=9.0)
    merged = tmp_path / "merged"
    result = invoke(["results", "merge", str(first), str(tmp_path / "b"), "--into", str(merged)])
    assert result.exit_code == 1
    assert f"conflict: {run_id}:" in result.output and "test 9.0000 nats" in result.output
    assert "added 2 run(s)" in result.output and "1 conflict(s)" in result.output
    assert run_id not in stored(merged) and len(stored(merged)) == 2  # the others merged, the conflict left out

    # What INTO already holds is never written over: merging the other version into it is a conflict too.
    before = (first / "runs" / f"{run_id}.json").read_bytes()
    result = invoke(["results", "merge", str(tmp_path / "b"), "--into", str(first)])
    assert result.exit_code == 1 and (first / "runs" / f"{run_id}.json").read_bytes() == before


def test_a_finished_run_replaces_a_failed_attempt_and_says_so(tiny_text, tmp_path):
    good = tmp_path / "good"
    assert invoke(tiny_args(tiny_text, good, cells="lstm")).exit_code == 0
    (run_id,) = stored(good)
    failed = tmp_path / "failed"
    shutil.copytree(good, failed)
    record = dataclasses.replace(
        stored(failed)[run_id], status="failed", error="RuntimeError: node lost", metrics={}, curve=[]
    )
    results.write_run(failed, record)
    shutil.rmtree(failed / "checkpoints")

    result = invoke(["results", "merge", str(good), "--into", str(failed)])
    assert result.exit_code == 0 and f"replaced: {run_id}:" in result.output and "node lost" not in str(stored(failed))
    assert stored(failed)[run_id] == stored(good)[run_id]
    assert (failed / "checkpoints" / run_id / "best.pt").read_bytes() == (
        good / "checkpoints" / run_id / "best.pt"
    ).read_bytes()


def test_merge_dry_run_writes_nothing_and_bad_sources_are_exit_2(tiny_text, tmp_path):
    source = tmp_path / "a"
    assert invoke(tiny_args(tiny_text, source)).exit_code == 0
    merged = tmp_path / "merged"
    dry = invoke(["results", "merge", str(source), "--into", str(merged), "--dry-run"])
    assert dry.exit_code == 0 and "would add 3 run(s)" in dry.output and not merged.exists()

    missing = invoke(["results", "merge", str(source), str(tmp_path / "nowhere"), "--into", str(merged)])
    assert missing.exit_code == 2 and "holds no results" in missing.output and not merged.exists()

    (source / "runs" / "junk.json").write_text("{")
    result = invoke(["results", "merge", str(source), "--into", str(merged)])
    assert result.exit_code == 0 and "skipped" in result.output and len(stored(merged)) == 3
