"""Compare devices on the same models: training, inference and generation speed, against each
device's own measured limits (matmul rate, copy bandwidth) and its input data path.

    >>> import tempfile
    >>> from rnnbench.measure.device_speed import CompareSpec, run_compare
    >>> spec = CompareSpec(dataset="synthetic", devices=("cpu",), cells=("lstm",), layers=(1,), sizes=(16,),
    ...                    batch_size=8, seq_len=16, min_time_s=0.05, warmup=1)
    >>> records = run_compare(spec, results_dir=tempfile.mkdtemp())
    >>> [r.config["workload"] for r in records]
    ['matmul', 'copy', 'train', 'infer', 'generate']

Every figure is timed by torch.utils.benchmark (its timer synchronises CUDA around each block),
after explicit warm-up calls that are not kept; medians and IQRs are computed here from the raw
block times. CPU measurements run at each requested thread count, set for each measurement alone
(core.devices.torch_threads) and recorded in the row. Reduced precision runs the model under torch.autocast.

Rows (one per model x device x threads x dtype x workload, `kind` = "compare") go to the same
results store as sweep runs:
    train      one training step (forward, backward, clipping, RMSProp)   -> chars/s, GFLOP/s
    infer      a forward pass over batch x seq_len characters, no grad    -> chars/s, GFLOP/s
    generate   batch 1, one character at a time, sampled and fed back     -> ms per character
    matmul     square matrix products in the row's dtype, best of 3 sizes -> GFLOP/s (the device's limit)
    copy       device-to-device tensor copy                               -> GB/s (read + write)
    h2d_pageable / h2d_pinned   one input batch from host to a GPU        -> ms, and its share of a train step
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import torch
import torch.nn.functional as F
import torch.utils.benchmark as tbench

from rnnbench import results
from rnnbench.config import DTYPES as DTYPE_NAMES
from rnnbench.config import CompareSpec, TrainConfig, content_id
from rnnbench.core.data import Corpus, load_corpus, streams
from rnnbench.core.devices import (
    environment,
    hardware,
    is_out_of_memory,
    kind_of,
    last_level_cache_bytes,
    resolve_devices,
    torch_threads,
)
from rnnbench.core.models import flops_per_char, hidden_size_for, n_params
from rnnbench.core.timing import rate, summarize, synchronize
from rnnbench.core.train import GradClip, Precision, build_model, build_optimizer, train_step
from rnnbench.errors import one_line
from rnnbench.events import CpuDtypes, Notice, OnEvent, RowMeasured, ignore

DTYPES = {name: getattr(torch, name) for name in DTYPE_NAMES}
WORKLOADS = ("train", "infer", "generate")
GENERATE_CHARS = 32  # characters per timed block of the generation workload
PAPER_OPTIMIZER = TrainConfig()  # lr, alpha and gradient clipping of the timed training step


@dataclass(frozen=True)
class Timings:
    """Raw block times of one measurement (seconds per call) and their statistics."""

    times_s: tuple[float, ...]

    @property
    def stats(self) -> dict:
        return summarize(list(self.times_s))


def measure(
    fn: Callable[[], object], device: str, threads: int, min_time_s: float, warmup: int, min_blocks: int = 5
) -> Timings:
    """Time `fn` after `warmup` calls that are not kept: at least `min_blocks` blocks, with `threads`."""
    with torch_threads(threads):
        for _ in range(warmup):
            fn()
        synchronize(device)
        timer = tbench.Timer("fn()", globals={"fn": fn}, num_threads=threads)
        m = timer.blocked_autorange(min_run_time=min_time_s)
        times = list(m.times)
        while len(times) < min_blocks:
            times += timer.timeit(number=m.number_per_run).times
        synchronize(device)
    return Timings(tuple(times))


def cpu_dtype_support() -> dict[str, str | None]:
    """For each dtype, None if a CPU training step runs under it, else why not (one line)."""
    support = {}
    model = build_model("lstm", 1, 4, 8, PAPER_OPTIMIZER, "cpu")
    optimizer, clip = build_optimizer(model, PAPER_OPTIMIZER), GradClip.of(PAPER_OPTIMIZER, "cpu")
    x = torch.zeros(2, 3, dtype=torch.long)
    for name, dtype in DTYPES.items():
        try:
            train_step(model, optimizer, x, x, None, clip, Precision.of(dtype, "cpu"))
            support[name] = None
        except Exception as exc:  # torch says no in many ways; the row records which
            support[name] = one_line(exc)
    return support


class ModelWorkloads:
    """One model on one device: the three workloads as zero-argument callables. The training step
    is a sweep's, with the paper's optimizer settings (TrainConfig's defaults)."""

    def __init__(
        self,
        corpus: Corpus,
        cell: str,
        hidden: int,
        layers: int,
        device: str,
        dtype: torch.dtype,
        batch_size: int,
        seq_len: int,
    ):
        torch.manual_seed(0)
        self.device, self.dtype = torch.device(device), dtype
        self.precision = Precision.of(dtype, self.device)
        self.model = build_model(cell, layers, hidden, corpus.vocab_size, PAPER_OPTIMIZER, self.device)
        self.clip = GradClip.of(PAPER_OPTIMIZER, self.device)
        self.optimizer = build_optimizer(self.model, PAPER_OPTIMIZER)
        # int64 batches, as a training loop that stores its text widened would move them
        data = streams(corpus.splits()["train"], batch_size)[:, : seq_len + 1].long()
        self.x, self.y = data[:, :-1].to(self.device), data[:, 1:].to(self.device)
        self.host_batch = data.contiguous()
        self.state = None
        self.prime = self.x[:1, :1]
        # The dtype the recurrent layer computed in, as seen on its output: under bfloat16 autocast
        # torch runs cuDNN's RNN in float16 (its autocast rule for _cudnn_rnn names half), so the
        # requested dtype is not always what ran.
        self.recurrent_dtypes: set[str] = set()
        self.model.rnn.register_forward_hook(
            lambda module, args, out: self.recurrent_dtypes.add(str(out[0].dtype).removeprefix("torch."))
        )

    def _cast(self):
        return self.precision.autocast() if self.precision else contextlib.nullcontext()

    def train(self) -> None:
        _, self.state = train_step(self.model, self.optimizer, self.x, self.y, self.state, self.clip, self.precision)

    @torch.no_grad()
    def infer(self) -> None:
        with self._cast():
            self.model(self.x)

    @torch.no_grad()
    def generate(self) -> None:
        x, state = self.prime, None
        with self._cast():
            for _ in range(GENERATE_CHARS):
                logits, state = self.model(x, state)
                x = torch.multinomial(F.softmax(logits[:, -1].float(), dim=-1), 1)


def matmul_rate(device: str, dtype: torch.dtype, threads: int, min_time_s: float, warmup: int = 3) -> dict:
    """The device's float matmul limit: the best median rate over a few square sizes.

    One size is not the peak everywhere (a GPU needs large products to fill, a CPU's caches favour
    middling ones), so several are timed and the fastest is kept, with its size and IQR.
    """
    sizes = kind_of(device).matmul_sizes
    best = None
    for n in sizes:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        s = measure(lambda a=a, b=b: a @ b, device, threads, min_time_s, warmup).stats
        flops, flops_iqr = rate(2.0 * n**3, s)
        found = {
            "gflops": flops / 1e9,
            "gflops_iqr": flops_iqr / 1e9,
            "matmul_n": n,
            "time_ms_median": s["median"] * 1e3,
            "time_ms_iqr": s["iqr"] * 1e3,
            "n_samples": s["n"],
        }
        if best is None or found["gflops"] > best["gflops"]:
            best = found
    return best


COPY_CACHE_MULTIPLE = 4  # a copy's buffers are this many times the largest cache: memory, not cache, is measured
COPY_MIN_BYTES = 64 * 2**20
COPY_UNKNOWN_CACHE_BYTES = 256 * 2**20  # the buffer when the cache size is unknown


def copy_buffer_bytes(device: str) -> tuple[int, int | None]:
    """(bytes of each copy buffer, the cache size it was sized from or None): several times the
    device's largest cache, so that the copy streams from memory; on a CPU at most an eighth of the
    memory available."""
    cache = last_level_cache_bytes(device)
    n_bytes = max(COPY_MIN_BYTES, COPY_CACHE_MULTIPLE * cache if cache else COPY_UNKNOWN_CACHE_BYTES)
    if torch.device(device).type == "cpu":
        n_bytes = min(n_bytes, psutil.virtual_memory().available // 8)
    return n_bytes, cache


def _copy(device: str, n_bytes: int) -> tuple[Callable[[], object], float]:
    src = torch.empty(n_bytes // 4, device=device)
    dst = torch.empty_like(src)
    return (lambda: dst.copy_(src)), 2.0 * n_bytes  # read and write


def default_corpus(data_dir: str | None, on_event: OnEvent = ignore) -> str:
    """compare-devices' corpus when none is named: War and Peace where it is at hand, else the
    generated corpus (speed hardly depends on the text; a download would make it need a network)."""
    from rnnbench.core.data import REGISTRY, SYNTHETIC_NAME, find

    where = find(REGISTRY["warpeace"], data_dir)
    if where is not None:
        on_event(Notice(f"corpus: warpeace, found at {where}"))
        return "warpeace"
    on_event(
        Notice(
            "corpus: synthetic (generated; warpeace is not at hand and compare-devices does not download: "
            "--dataset names another)"
        )
    )
    return SYNTHETIC_NAME


def run_compare(
    spec: CompareSpec, results_dir: str | Path | None = None, data_dir: str | None = None, on_event: OnEvent = ignore
) -> list[results.Record]:
    """Measure every row of `spec`, store each as it is measured (a RowMeasured event), return them all."""
    devices = resolve_devices(spec.devices)  # an absent device is an error before any measurement
    cpu_support = cpu_dtype_support() if "cpu" in devices else {}
    if cpu_support:
        on_event(CpuDtypes(cpu_support, spec.dtype))
    corpus = load_corpus(spec.dataset or default_corpus(data_dir, on_event), data_dir, on_event)
    corpus.check_fits(spec.batch_size, spec.seq_len)
    dtype = DTYPES[spec.dtype]
    default_threads = torch.get_num_threads()
    records: list[results.Record] = []
    folder = results.ResultsFolder(results_dir)
    stored = folder.stored(statuses=None)

    def emit(identity: dict, status: str, metrics: dict, error: str | None = None) -> None:
        identity = identity | {"hardware": hardware(identity["device"], identity["threads"]).as_dict()}
        env = environment(identity["device"]) | {"torch_num_threads": identity["threads"]}
        record = results.make_record("compare", content_id(identity), status, identity, env, metrics, error)
        # A row measured again replaces its earlier file (and a schema-1 one of another id).
        earlier = stored.get(record.identity)
        folder.store(record, replaces=earlier.run_id if earlier else None, keep_checkpoints=False)
        records.append(record)
        on_event(RowMeasured(record))

    for cell in spec.cells:  # every model's width, before anything is measured: bad input fails here
        for layers in spec.layers:
            for size in spec.sizes:
                hidden_size_for(cell, layers, size, corpus.vocab_size, spec.size_mode)
    for device in devices:
        _measure_device(spec, corpus, device, cpu_support, default_threads, dtype, emit)
    return records


def _measure_device(spec, corpus, device, cpu_support, default_threads, dtype, emit) -> None:
    is_cpu = kind_of(device).threads  # a kind whose speed depends on the thread count: measured at each
    thread_counts = (spec.threads or (default_threads,)) if is_cpu else (default_threads,)
    for threads in thread_counts:
        base = {
            "dataset": corpus.name,
            "dataset_sha256": corpus.sha256,
            "device": device,
            "threads": threads if is_cpu else None,
            "dtype": spec.dtype,
            "batch_size": spec.batch_size,
            "seq_len": spec.seq_len,
        }
        unsupported = cpu_support.get(spec.dtype) if is_cpu else None
        if unsupported:
            emit(
                base
                | {"workload": "train", "cell": None, "num_layers": None, "size": None, "size_mode": spec.size_mode},
                "unsupported",
                {},
                unsupported,
            )
            continue
        limits = _measure_limits(spec, device, threads, dtype, base, emit)
        for size in spec.sizes:
            for layers in spec.layers:
                for cell in spec.cells:
                    _measure_model(spec, corpus, device, threads, dtype, base, cell, layers, size, limits, emit)


def _measure_limits(spec, device, threads, dtype, base, emit) -> dict[str, float]:
    """The device's matmul rate (and float32's, for a reduced dtype) and copy bandwidth, as rows."""
    no_model = {"cell": None, "num_layers": None, "size": None, "size_mode": spec.size_mode}
    matmul = matmul_rate(device, dtype, threads, spec.min_time_s, spec.warmup)
    emit(base | no_model | {"workload": "matmul"}, "ok", matmul)
    if dtype != torch.float32:  # the float32 rate too, so the dtype's gain is on record
        float32 = matmul_rate(device, torch.float32, threads, spec.min_time_s, spec.warmup)
        emit(base | no_model | {"workload": "matmul", "dtype": "float32"}, "ok", float32)
    buffer_bytes, cache = copy_buffer_bytes(device)
    copy_fn, copy_bytes = _copy(device, buffer_bytes)
    s = measure(copy_fn, device, threads, spec.min_time_s, spec.warmup).stats
    bandwidth, bandwidth_iqr = rate(copy_bytes, s)
    emit(
        base | no_model | {"workload": "copy"},
        "ok",
        {
            "time_ms_median": s["median"] * 1e3,
            "time_ms_iqr": s["iqr"] * 1e3,
            "n_samples": s["n"],
            "gb_per_s": bandwidth / 1e9,
            "gb_per_s_iqr": bandwidth_iqr / 1e9,
            # What the copy streamed through: two buffers of buffer_mb, sized from cache_mb (None: unknown).
            "buffer_mb": buffer_bytes / 2**20,
            "cache_mb": cache / 2**20 if cache else None,
        },
    )
    return {"matmul": matmul["gflops"]}


def _measure_model(spec, corpus, device, threads, dtype, base, cell, layers, size, limits, emit) -> None:
    vocab = corpus.vocab_size
    hidden = hidden_size_for(cell, layers, size, vocab, spec.size_mode)
    model_id = base | {"cell": cell, "num_layers": layers, "size": size, "size_mode": spec.size_mode}
    shape = {"hidden_size": hidden, "n_params": n_params(cell, vocab, hidden, layers)}
    try:
        workloads = ModelWorkloads(corpus, cell, hidden, layers, device, dtype, spec.batch_size, spec.seq_len)
        chars = spec.batch_size * spec.seq_len
        train_ms = None
        for workload in WORKLOADS:
            workloads.recurrent_dtypes.clear()
            s = measure(getattr(workloads, workload), device, threads, spec.min_time_s, spec.warmup).stats
            chars_per_s, chars_per_s_iqr = rate(GENERATE_CHARS if workload == "generate" else chars, s)
            flops = flops_per_char(cell, vocab, hidden, layers, training=workload == "train")
            metrics = shape | {
                "time_ms_median": s["median"] * 1e3,
                "time_ms_iqr": s["iqr"] * 1e3,
                "n_samples": s["n"],
                "chars_per_s": chars_per_s,
                "chars_per_s_iqr": chars_per_s_iqr,
                "flops_per_char": flops,
                "achieved_gflops": flops * chars_per_s / 1e9,
                "matmul_fraction": flops * chars_per_s / 1e9 / limits["matmul"],
                "recurrent_dtype": ", ".join(sorted(workloads.recurrent_dtypes)),
            }
            if workload == "generate":
                metrics["ms_per_char"] = s["median"] * 1e3 / GENERATE_CHARS
                metrics["ms_per_char_iqr"] = s["iqr"] * 1e3 / GENERATE_CHARS
            if workload == "train":
                train_ms = s["median"] * 1e3
            emit(model_id | {"workload": workload}, "ok", metrics)
        if torch.device(device).type != "cpu":  # a device apart from the host: the input's way to it
            _measure_transfer(spec, workloads, device, threads, train_ms, model_id, emit)
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        emit(model_id | {"workload": "train"}, "oom", shape, one_line(exc))
        kind_of(device).empty_cache(torch.device(device))


def _measure_transfer(spec, workloads, device, threads, train_ms, model_id, emit) -> None:
    """Host-to-device time of one input batch, pageable and pinned, against the training step."""
    pinned = workloads.host_batch.pin_memory()
    for workload, source in (("h2d_pageable", workloads.host_batch), ("h2d_pinned", pinned)):
        s = measure(
            lambda source=source: source.to(device, non_blocking=True), device, threads, spec.min_time_s, spec.warmup
        ).stats
        n_bytes = source.numel() * source.element_size()
        emit(
            model_id | {"workload": workload},
            "ok",
            {
                "time_ms_median": s["median"] * 1e3,
                "time_ms_iqr": s["iqr"] * 1e3,
                "n_samples": s["n"],
                "batch_bytes": n_bytes,
                "gb_per_s": n_bytes / s["median"] / 1e9,
                "share_of_train_step": s["median"] * 1e3 / train_ms,
            },
        )
