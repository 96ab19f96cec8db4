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

from rnnbench import results

REPO = Path(__file__).resolve().parent.parent


def lent_machine_python(tmp_path: Path) -> dict:
    """The environment of a lent GPU machine: a python3 with torch and the dependencies importable and
    rnnbench not installed. Here: the base interpreter, with this venv's site-packages on PYTHONPATH
    (where the editable install of rnnbench does not apply: .pth files are read only in site dirs)."""
    import site

    bin_dir = tmp_path / "lent-bin"
    bin_dir.mkdir()
    base = Path(sys._base_executable if hasattr(sys, "_base_executable") else sys.executable)
    (bin_dir / "python3").symlink_to(base)
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": os.pathsep.join(site.getsitepackages()),
        "PYTHONNOUSERSITE": "1",
    }


@pytest.mark.slow
@pytest.mark.skipif(real_corpus_dir() is None, reason=REAL_CORPORA_REASON)
def test_a_dry_gpu_session_runs_the_campaign_then_the_checks_and_packs_only_its_new_rows(tmp_path):
    results_dir, out = tmp_path / "results", tmp_path / "out"
    (results_dir / "runs").mkdir(parents=True)
    earlier = sorted((REPO / "results" / "runs").glob("*.json"))[0]  # a row stored before the window
    shutil.copy(earlier, results_dir / "runs")
    env = (
        os.environ
        | lent_machine_python(tmp_path)
        | {
            "RNNBENCH_GPU_SESSION_DRY": "1",
            "RNNBENCH_SESSION_RESULTS": str(results_dir),
            "OMP_NUM_THREADS": "1",
        }
    )
    said = subprocess.run(
        ["python3", "-c", "import rnnbench.config"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert "No module named 'rnnbench" in said.stderr  # as on the lent machine: nothing installs it
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
    assert log.index("the paper campaign") < log.index("the recurrent layers") < log.index("the GPU checks")
    assert log.index("the GPU checks") < log.index("packing")
    assert "3 new row(s) in campaign-rows.tgz" in log
    assert log.index("3 new row(s)") < log.index("the recurrent layers")  # packed before the next stage
    assert log.index("4 new row(s)") < log.index("the GPU checks")  # and the layer's row too
    assert "No module named" not in log and "Traceback" not in log

    with tarfile.open(out / "campaign-rows.tgz") as packed:
        rows = [results.Record.from_stored(json.load(packed.extractfile(m))) for m in packed.getmembers() if m.isfile()]
    assert earlier.name not in {f"{r.run_id}.json" for r in rows}  # only what this window wrote
    kernels = [r for r in rows if r.kind == "kernel"]
    assert [(r.config["cell"], r.config["hidden"], r.status) for r in kernels] == [("gru", 512, "ok")]
    rows = [r for r in rows if r.kind == "sweep"]
    assert sorted((r.config["cell"], r.config["train"]["dropout"]) for r in rows) == [
        ("rnn", dropout) for dropout in (0.0, 0.25, 0.5)
    ]
    assert all(r.status == "ok" and r.config["train"]["split"] == "chunked" for r in rows)
    assert all(r.env["estimate_source"] in ("probe", "stored") and r.env["estimated_s"] > 0 for r in rows)
    with tarfile.open(out / "gpu-check.tgz") as packed:
        names = [m.name for m in packed.getmembers() if m.name.endswith(".json")]
    assert any(n.startswith("gpu-check/check/runs/") for n in names)
    assert any(n.startswith("gpu-check/profile/runs/") for n in names)  # step_profile ran too
    assert not list(out.glob("campaign-state.tgz.*"))  # every run finished: no state to bring back
    assert sorted(p.name for p in out.iterdir()) == ["campaign-rows.tgz", "gpu-check.tgz", "log.txt"]


def test_a_window_with_no_time_left_skips_its_stages_instead_of_running_them_unbounded(tmp_path):
    """`timeout 0` means no limit: a stage with under 5 s left is skipped and says so."""
    out = tmp_path / "out"
    env = (
        os.environ
        | lent_machine_python(tmp_path)
        | {
            "RNNBENCH_GPU_SESSION_DRY": "1",
            "RNNBENCH_SESSION_RESULTS": str(tmp_path / "results"),
        }
    )
    done = subprocess.run(
        ["bash", "benchmarks/gpu_session.sh", str(out), str(tmp_path), "3"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    log = (out / "log.txt").read_text()
    assert done.returncode == 0, log
    assert "skipped" in log and "gpu_check.py" in log.split("skipped", 1)[1]
    assert "0 new row(s) in campaign-rows.tgz" in log
