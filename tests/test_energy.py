"""Energy from the device's own counter: RAPL through a stand-in powercap folder, NVML through a
stand-in module, and a run's row when the machine has neither (this one has no powercap)."""

from __future__ import annotations

import sys
import types

import pytest

from rnnbench.core.energy import EnergyMeter, nvml_counter, rapl_counter


def powercap(tmp_path, packages: dict[str, int], wrap_uj: int = 1_000_000):
    for name, uj in packages.items():
        zone = tmp_path / name
        zone.mkdir(exist_ok=True)
        (zone / "energy_uj").write_text(f"{uj}\n")
        (zone / "max_energy_range_uj").write_text(f"{wrap_uj}\n")
    return tmp_path


def test_rapl_sums_the_packages_and_counts_a_wrap(tmp_path):
    root = powercap(tmp_path, {"intel-rapl:0": 900_000, "intel-rapl:1": 100_000})
    (tmp_path / "intel-rapl:0:0").mkdir()  # a sub-zone (a core domain): inside its package, not added
    meter = EnergyMeter(rapl_counter(root))
    powercap(root, {"intel-rapl:0": 50_000, "intel-rapl:1": 400_000})  # package 0 wrapped at 1 J
    meter.sample()
    powercap(root, {"intel-rapl:0": 250_000, "intel-rapl:1": 400_000})
    assert meter.joules == pytest.approx(0.15 + 0.3 + 0.2)
    assert meter.metrics(1000)["joules_per_char"] == pytest.approx(0.65 / 1000)
    assert meter.metrics(1000)["energy_scope"] == "2 CPU package(s): every process on them"


def test_no_counter_is_unknown_with_the_reason_never_a_guess(tmp_path):
    meter = EnergyMeter(rapl_counter(tmp_path / "absent"))
    m = meter.metrics(1000)
    assert m["energy_j"] is None and m["joules_per_char"] is None and m["energy_source"] is None
    assert "no RAPL counters under" in m["energy_unknown"]


def test_nvml_total_energy_counter_through_a_stand_in(monkeypatch):
    readings = iter([1_000_000, 1_000_000, 1_250_000, 1_250_000])  # millijoules since the driver loaded
    fake = types.SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlDeviceGetHandleByUUID=lambda uuid: ("gpu", uuid),
        nvmlDeviceGetHandleByIndex=lambda index: ("gpu", index),
        nvmlDeviceGetTotalEnergyConsumption=lambda handle: next(readings),
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    counter = nvml_counter(0, "GPU-1234")
    meter = EnergyMeter(counter)
    assert meter.joules == pytest.approx(250.0)
    m = meter.metrics(10)
    assert m["energy_source"] == "nvml" and "whole GPU" in m["energy_scope"] and m["joules_per_char"] == 25.0


def test_a_gpu_without_the_counter_says_why(monkeypatch):
    def unsupported(handle):
        raise RuntimeError("Not Supported")

    fake = types.SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlDeviceGetHandleByIndex=lambda index: index,
        nvmlDeviceGetTotalEnergyConsumption=unsupported,
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert "NVML gives no energy counter for this GPU (RuntimeError: Not Supported)" == nvml_counter(0)


def test_every_training_row_has_energy_or_says_why_not():
    from test_train import CORPUS, config

    from rnnbench.core.train import train

    m = train(config(), CORPUS).metrics
    if m["energy_j"] is None:
        assert m["energy_unknown"] and m["joules_per_char"] is None
    else:
        assert m["energy_j"] >= 0 and m["joules_per_char"] == pytest.approx(m["energy_j"] / m["chars_trained"])
