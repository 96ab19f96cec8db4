"""RunConfig identity, grid expansion, presets."""

from __future__ import annotations

import pytest

from rnnbench.config import Grid, RunConfig, load_preset, preset_names
from rnnbench.errors import UsageError


def test_run_id_is_stable_and_content_addressed():
    grid = Grid.from_settings(dataset="x", cells=("lstm",), layers=(1,), sizes=(64,), devices=("cpu",))
    a = grid.expand("0" * 64)[0]
    assert a.run_id == grid.expand("0" * 64)[0].run_id
    assert a.run_id == RunConfig.from_dict(a.as_dict()).run_id
    assert a.run_id != grid.expand("1" * 64)[0].run_id  # other corpus bytes
    assert a.run_id != grid.replace(lr=1e-3).expand("0" * 64)[0].run_id
    assert a.run_id != grid.replace(devices=("cuda",)).expand("0" * 64)[0].run_id


def test_expand_covers_the_product_once():
    grid = Grid.from_settings(cells=("lstm", "gru"), layers=(1, 2, 3), sizes=(64, 128), devices=("cpu",), seeds=(0, 1))
    runs = grid.expand("0" * 64)
    assert len(runs) == 2 * 3 * 2 * 2 == len({r.run_id for r in runs})
    assert runs[0].size == 64 and runs[-1].size == 128  # small models first


def test_replace_keeps_values_not_given():
    grid = Grid.from_settings(lr=0.01).replace(lr=None, epochs=3, cells=("gru",))
    assert grid.train.lr == 0.01 and grid.train.epochs == 3 and grid.cells == ("gru",)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(cells=("lstn",)), "unknown cell"),
        (dict(size_mode="width"), "unknown size_mode"),
        (dict(layers=(0,)), r"layers \(--layers\) must be at least 1, got 0"),
        (dict(batch_size=0), r"batch_size \(--batch-size\) must be at least 1"),
        (dict(dropout=1.0), r"dropout \(--dropout\) must be in \[0, 1\), got 1"),
        (dict(epochs=None), "no training budget"),
        (dict(max_chars=-5), r"max_chars \(--max-chars\) must be at least 1"),
        (dict(grad_clip=-1.0), r"grad_clip \(--grad-clip\) must be above 0, got -1"),
        (dict(cells=()), "cells must name at least one value"),
    ],
)
def test_bad_grids_are_usage_errors(changes, message):
    with pytest.raises(UsageError, match=message):
        Grid.from_settings(**changes)


def test_shipped_presets_load():
    assert {"smoke", "cpu-budget", "paper", "paper-linux"} <= set(preset_names())
    smoke = load_preset("smoke")
    assert smoke.dataset == "synthetic" and set(smoke.cells) == {"rnn", "lstm", "gru"}
    budget = load_preset("cpu-budget")
    assert budget.dataset == "warpeace" and budget.size_mode == "params"
    assert (budget.cells, budget.layers, budget.sizes) == (("lstm", "rnn", "gru"), (1, 2, 3), (64, 128, 256, 512))
    assert load_preset("paper-linux").dataset == "linux"


def test_preset_errors(tmp_path):
    with pytest.raises(UsageError, match="no preset 'nope'"):
        load_preset("nope")
    unknown = tmp_path / "u.toml"
    unknown.write_text('dataset = "synthetic"\nbatchsize = 3\n')
    with pytest.raises(UsageError, match="unknown key.*batchsize"):
        load_preset(str(unknown))
    wrong = tmp_path / "w.toml"
    wrong.write_text('batch_size = "big"\n')
    with pytest.raises(UsageError, match="batch_size must be int"):
        load_preset(str(wrong))
    broken = tmp_path / "b.toml"
    broken.write_text("cells = [\n")
    with pytest.raises(UsageError, match="cannot read preset"):
        load_preset(str(broken))
