"""One recurrent layer timed at fixed shapes, forward and forward+backward, beside the processors
Baidu's DeepBench published: where a machine's recurrent kernels sit.

    >>> import tempfile
    >>> from rnnbench.config import KernelSpec
    >>> from rnnbench.measure.kernels import run_kernels
    >>> spec = KernelSpec(cells=("lstm",), hidden=(256,), batch=(16,), devices=("cpu",), min_time_s=0.05)
    >>> [r.config["hidden"] for r in run_kernels(spec, tempfile.mkdtemp())]
    [256]

Suites (KernelSpec.suite):
    deepbench  DeepBench's 53 training shapes (rnnbench.deepbench: every recurrent training result
               it published, 9 processors): one layer, vanilla layers with ReLU
    paper      the recurrent stacks of the paper's 36 models (the `paper` preset's cells, depths and
               sizes on War and Peace's vocabulary) at its batch and sequence length

Each layer is torch's fused module (nn.RNN, nn.LSTM, nn.GRU) in the dtype asked for (weights and
inputs, no autocast), in torch's time-major layout. DeepBench skipped the input product
(cuDNN's CUDNN_SKIP_INPUT) and counted the recurrent products only; torch's modules always compute
it, so a DeepBench layer here takes inputs of size 1: its input product is 2·gates·hidden FLOPs a
step against the recurrent 2·gates·hidden²: 1/hidden of it, 0.4% at DeepBench's smallest hidden size
(256) and under 0.1% from 1024. (Its time may weigh more than its FLOPs: a product of width 1.)

Timing: `warmup` calls, then calls until both three of them and `min_time_s` of them are timed;
median and IQR of the raw per-call times (CUDA events on a GPU, the host clock after a
synchronisation elsewhere; each call waits for the device, as DeepBench's did). "total" is one
forward and one backward (the gradients with respect to the input and the weights, as autograd
computes them together); the backward alone is total minus forward, medians. FLOP/s are given by
DeepBench's count (recurrent products: 2·gates·hidden²·batch·steps forward, three times that for
training) and by rnnbench's (every product computed, the input ones included), and as a share of
the device's measured matrix-product rate (compare-devices' `matmul_rate`).

Rows are stored as kind "kernel", one per shape x device x dtype (x threads on a CPU), each as it
is measured; a stored one is not measured again (delete its file to), so a stopped run resumes. A
shape that does not fit the device's memory is stored with status "oom" and the rest go on.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from rnnbench import results
from rnnbench.config import KernelSpec, content_id, load_preset
from rnnbench.core.data import REGISTRY
from rnnbench.core.devices import (
    MachineLoad,
    environment,
    hardware,
    is_out_of_memory,
    kind_of,
    resolve_devices,
    torch_threads,
)
from rnnbench.core.models import CELLS, hidden_size_for
from rnnbench.core.timing import StepTimer, summarize
from rnnbench.deepbench import CELL_GATES, published
from rnnbench.errors import UsageError, one_line
from rnnbench.events import KernelMeasured, Notice, OnEvent, ignore
from rnnbench.measure.device_speed import DTYPES, matmul_rate

MIN_CALLS = 3  # timed calls per figure at the least: a median and quartiles need a few
# DeepBench's layers by its names: vanilla layers use ReLU; the paper's vanilla RNN is torch's tanh one.
KERNEL_CELLS = {
    "rnn_relu": (lambda *a, **k: nn.RNN(*a, nonlinearity="relu", **k), CELL_GATES["rnn_relu"]),
    **{name: (cell.module, cell.gates) for name, cell in CELLS.items()},
}


@dataclass(frozen=True)
class Shape:
    """One timed layer stack: `layers` layers of `cell`, input size `input_size`, `hidden` wide,
    over `batch` sequences of `timesteps` steps."""

    cell: str
    hidden: int
    batch: int
    timesteps: int
    layers: int = 1
    input_size: int = 1
    application: str = ""  # DeepBench's label of where the shape comes from

    @property
    def gates(self) -> int:
        return KERNEL_CELLS[self.cell][1]

    def deepbench_flops(self) -> float:
        """DeepBench's count of one forward call: the recurrent products only."""
        return 2.0 * self.gates * self.hidden**2 * self.batch * self.timesteps * self.layers

    def flops(self) -> float:
        """rnnbench's count of one forward call: every matrix product computed, input ones included."""
        inputs = self.input_size + (self.layers - 1) * self.hidden  # the input widths of all layers
        per_step = 2.0 * self.gates * self.hidden * (inputs + self.layers * self.hidden)
        return per_step * self.batch * self.timesteps

    def label(self) -> str:
        stack = f"{self.layers}x" if self.layers > 1 else ""
        return f"{self.cell} {stack}{self.hidden}, batch {self.batch}, {self.timesteps} steps"


def suite_shapes(suite: str) -> list[Shape]:
    if suite == "deepbench":
        rows = published().drop_duplicates(["cell", "hidden", "batch", "timesteps"])
        return [
            Shape(r.cell, int(r.hidden), int(r.batch), int(r.timesteps), application=r.application)
            for r in rows.sort_values(["cell", "hidden", "batch", "timesteps"]).itertuples()
        ]
    grid = load_preset("paper")
    vocab = REGISTRY[grid.dataset].vocab_size
    return [
        Shape(
            cell,
            hidden_size_for(cell, layers, size, vocab, grid.size_mode),
            grid.train.batch_size,
            grid.train.seq_len,
            layers,
            vocab,
        )
        for cell in grid.cells
        for layers in grid.layers
        for size in grid.sizes
    ]


def select(spec: KernelSpec) -> list[Shape]:
    """The suite's shapes that every filter of `spec` keeps; UsageError when none is left."""
    shapes = suite_shapes(spec.suite)
    filters = {"cell": spec.cells, "hidden": spec.hidden, "batch": spec.batch, "timesteps": spec.timesteps}
    kept = [s for s in shapes if all(want is None or getattr(s, name) in want for name, want in filters.items())]
    kept.sort(key=Shape.flops)  # the quick ones first: most rows are in early, and a stop loses little
    if not kept:
        asked = ", ".join(f"--{n.replace('cell', 'cells')} {','.join(map(str, w))}" for n, w in filters.items() if w)
        offered = ", ".join(
            f"{n}: {','.join(map(str, sorted({getattr(s, n) for s in shapes})))}" for n in ("cell", "hidden", "batch")
        )
        raise UsageError(f"no shape of the {spec.suite} suite matches {asked or 'the filters'} (it has {offered})")
    return kept


class Layer:
    """One shape on one device in one dtype: the forward call and the forward+backward call."""

    def __init__(self, shape: Shape, device: str, dtype: torch.dtype):
        torch.manual_seed(0)
        make = KERNEL_CELLS[shape.cell][0]
        self.module = make(shape.input_size, shape.hidden, shape.layers).to(device, dtype)
        self.x = torch.randn(shape.timesteps, shape.batch, shape.input_size, device=device, dtype=dtype)
        self.x.requires_grad_(True)
        self.grad_out = torch.randn(shape.timesteps, shape.batch, shape.hidden, device=device, dtype=dtype)
        self.inputs = [self.x, *self.module.parameters()]

    def forward(self) -> None:
        """The training forward (it keeps what backward needs), as DeepBench's forward timed."""
        self.module(self.x)

    def total(self) -> None:
        out, _ = self.module(self.x)
        torch.autograd.grad(out, self.inputs, self.grad_out)


def time_calls(fn, device: str, warmup: int, min_time_s: float) -> list[float]:
    """Seconds per call of `fn` after `warmup` calls: until MIN_CALLS and min_time_s are timed."""
    timer, kind, dev = StepTimer(device, warmup), kind_of(device), torch.device(device)
    timed_s, calls = 0.0, 0
    while calls < warmup + MIN_CALLS or timed_s < min_time_s:
        start = time.perf_counter()
        with timer:
            fn()
        kind.synchronize(dev)  # one call at a time on the device, as DeepBench timed them
        calls += 1
        if calls > warmup:
            timed_s += time.perf_counter() - start
    return timer.samples_s()


def identity(shape: Shape, suite: str, device: str, dtype: str, threads: int | None) -> dict:
    """A kernel row's configuration (its hardware is added as it is stored)."""
    layer = {k: v for k, v in asdict(shape).items() if k != "application"}
    return {"workload": "kernel", "suite": suite, **layer, "device": device, "dtype": dtype, "threads": threads}


def measure(shape: Shape, device: str, dtype: str, warmup: int, min_time_s: float, matmul: dict) -> dict:
    """The metrics of one shape (OutOfMemoryError and other errors pass to the caller)."""
    layer = Layer(shape, device, DTYPES[dtype])
    fwd = summarize(time_calls(layer.forward, device, warmup, min_time_s))
    total = summarize(time_calls(layer.total, device, warmup, min_time_s))
    del layer
    kind_of(device).empty_cache(torch.device(device))
    training_deepbench, training_ours = 3 * shape.deepbench_flops(), 3 * shape.flops()
    ours_tflops = training_ours / total["median"] / 1e12
    return {
        "application": shape.application,
        "fwd_ms_median": fwd["median"] * 1e3,
        "fwd_ms_iqr": fwd["iqr"] * 1e3,
        "fwd_calls": fwd["n"],
        "total_ms_median": total["median"] * 1e3,
        "total_ms_iqr": total["iqr"] * 1e3,
        "total_calls": total["n"],
        "bwd_ms_median": (total["median"] - fwd["median"]) * 1e3,
        "deepbench_tflops_fwd": shape.deepbench_flops() / fwd["median"] / 1e12,
        "deepbench_tflops_total": training_deepbench / total["median"] / 1e12,
        "rnnbench_tflops_total": ours_tflops,
        "matmul_gflops": matmul["gflops"],
        "matmul_n": matmul["matmul_n"],
        "share_of_matmul": ours_tflops * 1e3 / matmul["gflops"],
        "warmup": warmup,
        "min_time_s": min_time_s,
    }


def check_dtypes(devices: list[str], dtypes: tuple[str, ...], cells: set[str]) -> None:
    """Every dtype runs every cell's layer on every device (a tiny one, forward and backward), or
    UsageError before anything is measured or stored."""
    for device in devices:
        for dtype in dtypes:
            for cell in sorted(cells):
                try:
                    Layer(Shape(cell, 4, 2, 3), device, DTYPES[dtype]).total()
                except Exception as exc:  # torch says no in many ways
                    raise UsageError(f"{device} cannot run a {cell} layer in {dtype}: {one_line(exc)}") from exc


@dataclass(frozen=True)
class PlannedRow:
    shape: Shape
    device: str
    dtype: str
    stored: bool
    seconds: float | None  # the estimate; None for a stored row


def plan_kernels(spec: KernelSpec, results_dir: str | Path | None = None) -> list[PlannedRow]:
    """Each row of `spec` and its expected seconds: every call at the device's matrix-product rate
    (measured now, briefly) times the efficiency one small layer per cell shows here, with the
    calls time_calls makes. Stored rows are not measured again and cost nothing."""
    shapes, devices = select(spec), resolve_devices(spec.devices)
    stored = results.ResultsFolder(results_dir).stored(statuses=("ok", "oom"))
    planned = []
    for device in devices:
        threads = spec.threads if kind_of(device).threads else None
        with torch_threads(threads):
            for dtype in spec.dtype:
                rate = matmul_rate(device, DTYPES[dtype], torch.get_num_threads(), 0.2, warmup=1)
                efficiency = {}
                for cell in sorted({s.cell for s in shapes}):
                    probe = Shape(cell, 1024, 32, 25)  # mid-sized: a small layer runs well below the set's rate
                    seconds = min(time_calls(Layer(probe, device, DTYPES[dtype]).total, device, 1, 0.05))
                    efficiency[cell] = min(1.0, 3 * probe.flops() / seconds / (rate["gflops"] * 1e9))
                for shape in shapes:
                    key = _identity_key(shape, spec.suite, device, dtype, threads)
                    if key in stored:
                        planned.append(PlannedRow(shape, device, dtype, True, None))
                        continue
                    per_flop = 1 / (rate["gflops"] * 1e9 * efficiency[shape.cell])
                    fwd_s, total_s = shape.flops() * per_flop, 3 * shape.flops() * per_flop
                    seconds = sum(
                        (spec.warmup + max(MIN_CALLS, math.ceil(spec.min_time_s / call))) * call
                        for call in (fwd_s, total_s)
                    )
                    planned.append(PlannedRow(shape, device, dtype, False, seconds))
    return planned


def _identity_key(shape: Shape, suite: str, device: str, dtype: str, threads: int | None) -> str:
    config = identity(shape, suite, device, dtype, threads)
    return results.identity("kernel", config, hardware(device, threads))


def run_kernels(
    spec: KernelSpec, results_dir: str | Path | None = None, on_event: OnEvent = ignore
) -> list[results.Record]:
    """Measure every row of `spec` not stored yet, storing each as it is measured (KernelMeasured)."""
    shapes, devices = select(spec), resolve_devices(spec.devices)
    check_dtypes(devices, spec.dtype, {s.cell for s in shapes})
    folder = results.ResultsFolder(results_dir)
    folder.prepare()
    stored = folder.stored(statuses=("ok", "oom"))
    rows = [(device, dtype, shape) for device in devices for dtype in spec.dtype for shape in shapes]
    records, done = [], 0
    for device in devices:
        threads = spec.threads if kind_of(device).threads else None
        machine = hardware(device, threads)
        with torch_threads(threads):
            for dtype in spec.dtype:
                matmul = None  # the device's limit in this dtype, measured before its first row
                for shape in shapes:
                    done += 1
                    config = identity(shape, spec.suite, device, dtype, threads) | {"hardware": machine.as_dict()}
                    if results.identity("kernel", config, machine) in stored:
                        on_event(KernelMeasured(None, shape.label(), done, len(rows)))
                        continue
                    matmul = matmul or matmul_rate(device, DTYPES[dtype], torch.get_num_threads(), spec.min_time_s)
                    record = _measured(config, shape, device, dtype, spec, matmul)
                    folder.store(record, keep_checkpoints=False)
                    records.append(record)
                    on_event(KernelMeasured(record, shape.label(), done, len(rows)))
    if not any(kind_of(d).name != "cpu" for d in devices):
        on_event(Notice("only the CPU was measured: no figure here is a GPU figure"))
    return records


def _measured(config: dict, shape: Shape, device: str, dtype: str, spec: KernelSpec, matmul: dict) -> dict:
    """One row: measured, or the reason it could not be (out of memory, an error)."""
    started = results.utc_now()
    run_id = content_id(config)
    load = MachineLoad()  # a row timed while other work ran says so
    try:
        metrics = measure(shape, device, dtype, spec.warmup, spec.min_time_s, matmul)
        status, error = "ok", None
    except Exception as exc:  # one shape's failure is its row's; the rest go on
        kind_of(device).empty_cache(torch.device(device))
        status = "oom" if is_out_of_memory(exc) else "failed"
        metrics, error = {"application": shape.application}, one_line(exc)
    env = environment(device) | {"torch_num_threads": torch.get_num_threads()} | load.stop()
    return results.make_record("kernel", run_id, status, config, env, metrics, error, started)
