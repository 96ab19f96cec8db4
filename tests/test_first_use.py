"""What a new user meets first: README's commands, run with the default folders from a checkout,
leave the checkout as it was."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rnnbench import results
from rnnbench.cli import app
from rnnbench.files import default_results_dir

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def git(*args, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A fresh clone of this repository's committed state."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout")
    clone = tmp_path / "rnnbench"
    git("clone", "--quiet", "--local", "--no-hardlinks", str(REPO), str(clone), cwd=tmp_path)
    return clone


def test_readmes_commands_leave_a_fresh_checkout_clean(checkout, monkeypatch):
    monkeypatch.chdir(checkout)
    assert git("status", "--porcelain", cwd=checkout) == ""
    swept = runner.invoke(app, ["sweep", "--preset", "smoke", "--max-chars", "20000", "--no-progress"])
    assert swept.exit_code == 0, swept.output
    where = default_results_dir()
    assert not where.is_relative_to(checkout) and len(list(results.runs_dir(where).glob("*.json"))) == 6
    reported = runner.invoke(app, ["report"])
    assert reported.exit_code == 0 and (where / "REPORT.md").exists(), reported.output
    run_id = results.load(where).run_id.iloc[0]
    sampled = runner.invoke(app, ["sample", run_id, "--length", "20"])
    assert sampled.exit_code == 0, sampled.output
    assert git("status", "--porcelain", "--ignored", cwd=checkout) == ""  # nothing written, ignored or not
    # The published rows are where they were, and the user's runs are not among them.
    published = {p.name for p in (checkout / "results" / "runs").glob("*.json")}
    assert published and not published & {p.name for p in results.runs_dir(where).glob("*.json")}
