"""Every numeric setting declares its valid range where it is declared, and a value outside it is
one line and exit code 2 before any work, from an option, a preset or the Python API alike."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from rnnbench.cli import app
from rnnbench.config import COMPARE_SETTINGS, GRID_SETTINGS, CompareSpec, Grid, Range, load_preset
from rnnbench.errors import UsageError

runner = CliRunner()
NUMERIC = (int, float)


def numeric(settings: dict) -> list:
    return [s for s in settings.values() if s.type in NUMERIC]


def bad_values(settings: dict) -> list[tuple]:
    """(setting, a value just outside its range) for every numeric setting."""
    return [(s, bad) for s in numeric(settings) for bad in s.valid.outside(s.type is int)]


def test_every_numeric_setting_declares_its_range():
    missing = [s.name for s in numeric(GRID_SETTINGS) + numeric(COMPARE_SETTINGS) if s.valid is None]
    assert not missing
    assert len(bad_values(GRID_SETTINGS)) >= 25  # the walk below covers them all


def test_a_range_says_what_it_takes():
    assert Range(0, low_open=True).text == "above 0" and Range(1).text == "at least 1"
    assert Range(0, 1, high_open=True).text == "in [0, 1)" and Range(0, 1, low_open=True).text == "in (0, 1]"
    assert 0.5 in Range(0, 1, low_open=True) and 0 not in Range(0, 1, low_open=True) and 1 in Range(0, 1, low_open=True)
    assert Range(0, 1, high_open=True).outside(integer=False) == [-0.5, 1.0]


@pytest.mark.parametrize("setting, bad", bad_values(GRID_SETTINGS), ids=lambda v: getattr(v, "name", str(v)))
def test_a_sweep_setting_out_of_range_is_one_line_before_any_work(setting, bad, tmp_path):
    results = tmp_path / "results"
    result = runner.invoke(app, ["sweep", "--preset", "smoke", setting.option, str(bad), "--results-dir", str(results)])
    assert result.exit_code == 2, result.output
    assert result.output.strip().count("\n") == 0 and f"({setting.option}) must be" in result.output, result.output
    assert not results.exists()  # nothing was trained or stored
    value = (bad,) if setting.is_list else bad
    with pytest.raises(UsageError, match=re.escape(f"must be {setting.valid.text}")):
        Grid.from_settings(**{setting.name: value})
    preset = tmp_path / "bad.toml"
    preset.write_text(f'dataset = "synthetic"\n{setting.name} = {[bad] if setting.is_list else bad}\n')
    with pytest.raises(UsageError, match=re.escape(f"must be {setting.valid.text}")):
        load_preset(str(preset))


@pytest.mark.parametrize("setting, bad", bad_values(COMPARE_SETTINGS), ids=lambda v: getattr(v, "name", str(v)))
def test_a_compare_devices_setting_out_of_range_is_refused_before_measuring(setting, bad, tmp_path):
    results = tmp_path / "results"
    result = runner.invoke(
        app, ["compare-devices", "--devices", "cpu", setting.option, str(bad), "--results-dir", str(results)]
    )
    assert result.exit_code == 2 and f"({setting.option}) must be" in result.output, result.output
    assert not (results / "runs").exists()  # nothing measured
    with pytest.raises(UsageError):
        CompareSpec(**{setting.name: (bad,) if setting.is_list else bad})


def test_values_inside_the_ranges_are_taken():
    grid = Grid.from_settings(grad_clip=0.5, lr_decay=1.0, dropout=(0.0, 0.5), warmup_steps=0, threads=1, seeds=(0,))
    assert grid.train.grad_clip == 0.5 and grid.execution.threads == 1
