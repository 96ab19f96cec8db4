"""Shared fixtures: a small real text on disk, a tiny grid, isolated cache and results folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Under pytest-xdist (`-n 2`), the workers share the cores: each worker's torch and every process it
# starts get their share of them, since torch's default of a thread per core in each slows two
# processes side by side ten-fold or worse.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    import torch

    # A worker's output is no terminal, as under plain pytest, but it is handed COLUMNS=80, which the
    # CLI would take for the width of its piped tables: the tests read them at the piped default.
    os.environ.pop("COLUMNS", None)

    _share = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ["OMP_NUM_THREADS"] = str(_share)
    torch.set_num_threads(_share)


from rnnbench.core.synthetic import generate  # noqa: E402  (after the worker's settings above)


@pytest.hookimpl(optionalhook=True)  # xdist's hook: absent without xdist
def pytest_xdist_node_collection_finished(node, ids):
    """Under `--dist loadgroup` a worker names a grouped test `ID@GROUP`; a pytest that xdist does not
    follow drops the suffix and with it the groups, silently (pytest-xdist#1386): stop and say so."""
    grouped = [i for i in ids if i.startswith("tests/test_ray.py::")]  # xdist_group("ray"), the one group
    if node.config.getoption("dist") == "loadgroup" and not all(i.endswith("@ray") for i in grouped):
        pytest.exit("--dist loadgroup lost the tests' groups (pytest-xdist#1386): install pytest<9.2", returncode=4)


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


def tiny_grid(text: Path, **overrides):
    """TINY as a Grid, for the tests that call the library rather than the CLI."""
    from rnnbench.config import Grid

    settings = dict(
        dataset=str(text),
        cells=tuple(TINY["cells"].split(",")),
        layers=(int(TINY["layers"]),),
        sizes=(int(TINY["sizes"]),),
        size_mode=TINY["size_mode"],
        devices=(TINY["devices"],),
        batch_size=TINY["batch_size"],
        seq_len=TINY["seq_len"],
        max_steps=TINY["max_steps"],
        eval_every_steps=TINY["eval_every"],
    )
    return Grid.from_settings(**settings | overrides)


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
