"""The timing harnesses: warm-up is discarded, devices are synchronised, statistics come from raw samples."""

from __future__ import annotations

import statistics
import time

import pytest

from rnnbench.core.timing import StepTimer, summarize
from rnnbench.errors import UsageError
from rnnbench.measure import device_speed


def test_summarize_is_median_and_iqr_of_the_raw_samples():
    samples = [5.0, 1.0, 4.0, 2.0, 3.0, 100.0]
    q1, median, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    s = summarize(samples)
    assert (s["median"], s["q1"], s["q3"], s["iqr"], s["n"]) == (median, q1, q3, q3 - q1, 6)
    assert s["median"] == 3.5  # the outlier moves the median by half a step, not to the mean
    assert summarize([])["n"] == 0


def test_step_timer_leaves_out_warmup():
    timer = StepTimer("cpu", warmup=2)
    for delay in (0.05, 0.05, 0.001, 0.001, 0.001):
        with timer:
            time.sleep(delay)
    samples = timer.samples_s()
    assert len(samples) == 3 and max(samples) < 0.04


def test_measure_discards_warmup_and_synchronises(monkeypatch):
    synced = []
    monkeypatch.setattr(device_speed, "synchronize", lambda device: synced.append(device))
    calls = []

    def fn():
        calls.append(1)
        time.sleep(0.05 if len(calls) <= 2 else 0.001)  # the first two calls are slow: warm-up

    sample = device_speed.measure(fn, "cpu", threads=1, min_time_s=0.05, warmup=2)
    assert len(sample.times_s) >= 5
    assert sample.stats["median"] < 0.01
    assert synced == ["cpu", "cpu"]  # after warm-up and after the timed blocks
    assert sample.stats == summarize(list(sample.times_s))


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_cuda_step_timer_uses_events():
    import torch

    timer = StepTimer("cuda", warmup=1)
    a = torch.randn(2048, 2048, device="cuda")
    for _ in range(4):
        with timer:
            a @ a
    samples = timer.samples_s()
    assert len(samples) == 3 and all(s > 0 for s in samples)


def test_a_new_kind_of_device_is_one_entry_and_timing_synchronises_through_it(monkeypatch):
    from rnnbench.core.devices import DEVICE_KINDS, DeviceKind, hardware, kind_of
    from rnnbench.core.timing import StepTimer, synchronize

    synced = []
    monkeypatch.setitem(
        DEVICE_KINDS,
        "xpu",
        DeviceKind("xpu", synchronize=lambda device: synced.append(device.type), model_name=lambda device: "Test XPU"),
    )
    timer = StepTimer("xpu", warmup=0)
    with timer:
        assert synced == ["xpu"]  # what was queued before the step is not the step's
    assert synced == ["xpu", "xpu"] and len(timer.samples_s()) == 1  # and the step's own work is
    synchronize("xpu:0")
    assert synced == ["xpu"] * 3
    assert hardware("xpu").model == "Test XPU" and hardware("xpu").threads is None
    with pytest.raises(UsageError, match="device kind 'meta' is not supported"):
        kind_of("meta")


def test_a_row_names_the_matmul_precision_on_cuda_only_and_cuda_rows_have_it():
    import torch

    from rnnbench.core.devices import environment

    assert "float32_matmul_precision" not in environment("cpu")  # a CPU's products are float32 throughout
    if torch.cuda.is_available():
        env = environment("cuda")
        assert env["float32_matmul_precision"] == torch.get_float32_matmul_precision()
        assert env["cuda_matmul_allow_tf32"] == torch.backends.cuda.matmul.allow_tf32
        assert env["cudnn_allow_tf32"] == torch.backends.cudnn.allow_tf32


class FakeEvent:
    """A timing event of a fake device: its clock is a counter that each record advances by 2 ms."""

    clock_ms = 0.0

    def record(self):
        FakeEvent.clock_ms += 2.0
        self.at_ms = FakeEvent.clock_ms

    def elapsed_time(self, end) -> float:
        return end.at_ms - self.at_ms


def test_a_new_kind_of_device_is_discovered_resolved_and_timed_by_its_entry(monkeypatch):
    from rnnbench.core.devices import DEVICE_KINDS, DeviceKind, available_devices, resolve_devices
    from rnnbench.core.timing import StepTimer

    synced = []
    kind = DeviceKind(
        "xpu",
        synchronize=lambda device: synced.append(device.type),
        present=lambda: ["xpu:0", "xpu:1"],
        timing_event=FakeEvent,
    )
    monkeypatch.setitem(DEVICE_KINDS, "xpu", kind)
    assert available_devices()[-2:] == ["xpu:0", "xpu:1"]
    assert resolve_devices(["xpu:1", "cpu"]) == ["xpu:1", "cpu"]
    assert "xpu:0" in resolve_devices(["auto"])
    with pytest.raises(UsageError, match="this machine has 2 xpu device"):
        resolve_devices(["xpu:2"])
    timer = StepTimer("xpu:1", warmup=1)
    for _ in range(3):
        with timer:
            pass
    assert synced == [] and timer.samples_s() and all(abs(s - 0.002) < 1e-12 for s in timer.samples_s())
    monkeypatch.setitem(DEVICE_KINDS, "xpu", DeviceKind("xpu", synchronize=print, why_absent=lambda: "no XPU here"))
    with pytest.raises(UsageError, match="device 'xpu' is not available: no XPU here"):
        resolve_devices(["xpu"])
