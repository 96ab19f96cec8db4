"""The one command of a GPU window, run dry on the CPU: the campaign, the checks, the rows packed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import REAL_CORPORA_REASON, real_corpus_dir

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(real_corpus_dir() is None, reason=REAL_CORPORA_REASON)
def test_a_dry_gpu_session_runs_the_campaign_then_the_checks_and_packs_only_its_new_rows(tmp_path):
    results_dir, out = tmp_path / "results", tmp_path / "out"
    (results_dir / "runs").mkdir(parents=True)
    earlier = sorted((REPO / "results" / "runs").glob("*.json"))[0]  # a row stored before the window
    shutil.copy(earlier, results_dir / "runs")
    env = os.environ | {
        "RNNBENCH_GPU_SESSION_DRY": "1",
        "RNNBENCH_SESSION_RESULTS": str(results_dir),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # this python3
        "OMP_NUM_THREADS": "1",
    }
    done = subprocess.run(
        ["bash", "benchmarks/gpu_session.sh", str(out), str(real_corpus_dir()), "150"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    log = (out / "log.txt").read_text()
    assert "DRY RUN on the CPU" in log and "no figure below is a GPU figure" in log
    assert log.index("the paper campaign") < log.index("the GPU checks") < log.index("packing")
    assert "3 new row(s) in campaign-rows.tgz" in log

    with tarfile.open(out / "campaign-rows.tgz") as packed:
        rows = [json.load(packed.extractfile(m)) for m in packed.getmembers() if m.isfile()]
    assert earlier.name not in {f"{r['run_id']}.json" for r in rows}  # only what this window wrote
    assert sorted((r["config"]["cell"], r["config"]["train"]["dropout"]) for r in rows) == [
        ("rnn", dropout) for dropout in (0.0, 0.25, 0.5)
    ]
    assert all(r["status"] == "ok" and r["config"]["train"]["split"] == "chunked" for r in rows)
    assert all(r["env"]["estimate_source"] in ("probe", "stored") and r["env"]["estimated_s"] > 0 for r in rows)
    with tarfile.open(out / "gpu-check.tgz") as packed:
        assert any(m.name.endswith(".json") for m in packed.getmembers())
    assert not list(out.glob("campaign-state.tgz.*"))  # every run finished: no state to bring back
    assert sorted(p.name for p in out.iterdir()) == ["campaign-rows.tgz", "gpu-check.tgz", "log.txt"]
