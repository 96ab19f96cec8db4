"""Shared fixtures: a small real text on disk, a tiny grid, isolated cache and results folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rnnbench.core.synthetic import generate

# The real corpora, for the tests of their exact sizes: wherever $RNNBENCH_DATA_DIR says (those
# tests are skipped, and say how to run them, when it is not set).
SHARED_DATASETS = Path(os.environ["RNNBENCH_DATA_DIR"]) if os.environ.get("RNNBENCH_DATA_DIR") else None


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """No test reads or writes the user's cache or the user's results folder."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("RNNBENCH_CACHE_DIR", str(cache))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))  # files.default_results_dir()
    monkeypatch.delenv("RNNBENCH_RESULTS_DIR", raising=False)
    return cache / "datasets"


@pytest.fixture
def tiny_text(tmp_path) -> Path:
    """30 kB of the generated corpus as a plain file: enough for batch 8 x 16 in every split."""
    path = tmp_path / "tiny.txt"
    path.write_bytes(generate(30_000, seed=1))
    return path


# A grid small enough that a run takes well under a second on one core.
TINY = dict(
    cells="rnn,lstm,gru",
    layers="1",
    sizes="16",
    size_mode="hidden",
    devices="cpu",
    batch_size=8,
    seq_len=16,
    max_steps=20,
    eval_every=10,
)


def tiny_args(text: Path, results: Path, **overrides) -> list[str]:
    options = {**TINY, "dataset": str(text), "results_dir": str(results), **overrides}
    args = ["sweep", "--no-progress"]
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args


def real_corpus_dir() -> Path | None:
    return SHARED_DATASETS if SHARED_DATASETS is not None and (SHARED_DATASETS / "warpeace.txt").exists() else None


REAL_CORPORA_REASON = (
    "the real corpora are not at hand: set RNNBENCH_DATA_DIR to a folder with warpeace.txt and "
    "linux.txt to run this test"
)


def without_clock(curve: list[dict]) -> list[dict]:
    """A curve's losses and positions, without its clock (which differs from run to run)."""
    return [{k: v for k, v in point.items() if k not in ("train_s", "wall_s")} for point in curve]
