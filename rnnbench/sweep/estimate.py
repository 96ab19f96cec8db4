"""How long each run of a sweep should take on its hardware, before it trains: from the rows stored
for the same hardware and model shape, else from a short probe of that shape on the device.

    >>> import tempfile
    >>> from rnnbench.config import Grid
    >>> from rnnbench.core.data import load_corpus
    >>> from rnnbench.results import ResultsFolder
    >>> from rnnbench.sweep.estimate import Estimator
    >>> corpus = load_corpus("synthetic")
    >>> grid = Grid.from_settings(dataset="synthetic", cells=("gru",), layers=(1,), sizes=(16,), size_mode="hidden",
    ...                           devices=("cpu",), batch_size=8, seq_len=16, max_steps=200, eval_every_steps=100)
    >>> estimator = Estimator(ResultsFolder(tempfile.mkdtemp()), corpus, probe_steps=10)   # an empty folder: a probe
    >>> estimate = estimator.estimate(grid.expand(corpus.sha256)[0])
    >>> estimate.source, estimate.steps, estimate.seconds > 0
    ('probe', 200, True)

A run's seconds are its planned steps (the first step budget it reaches: epochs, steps or
characters; an early stop only shortens it) times the median step time, plus its evaluations
(one every `eval_every_steps` and at each epoch's end, over the validation split, and the test
split once) at the evaluation rate, capped by its time budget. The step time and the evaluation
rate come from the stored finished rows of the same hardware (GPU, or CPU model with its thread
count, and torch) and model shape (cell, depth, width, vocabulary, batch, sequence, GRU reset gate,
and on CUDA whether the steps replay a graph), their median; without such rows, from a probe:
timed training steps (after warm-up, until half a second and three, or `probe_steps`; a slow
shape's at a quarter of its sequence, scaled: probe()) and a timed evaluation of a few batches,
once per shape, kept in the results folder (probes.json) so that the sweep after a plan, and the
next plan, do not probe that shape again; a CPU shape's probe keeps the load other processes put
on the cores while it ran, and a plan probes again where that load and today's differ by
BUSY_CORES or more (the sweep itself takes what is kept). CPU runs that will train side by side are probed
side by side (probe_side_by_side); a GPU probe is measured alone, so it is a lower bound for GPU
runs that will share the device; a probe steps eagerly, so for a run that will
replay a CUDA graph it is an upper bound. A run stopped earlier (a latest.pt) is estimated for the
steps it has left, at its own pace so far (the median of the steps it timed, and its evaluations'
rate: source "so far") once it has timed OWN_MIN_STEPS.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import time
from dataclasses import dataclass

import torch

from rnnbench.config import RunConfig
from rnnbench.core.data import Corpus, Layout
from rnnbench.core.devices import BUSY_CORES, busy_cores, kind_of, torch_threads
from rnnbench.core.models import hidden_size_for
from rnnbench.core.timing import StepTimer, synchronize
from rnnbench.core.train import GradClip, build_model, build_optimizer, evaluate, planned_steps, train_step
from rnnbench.results import Record, ResultsFolder, utc_now

PROBE_STEPS = 30  # timed steps of a probe at the most
PROBE_MIN_STEPS = 3  # and at the least: a median of a few
PROBE_TIME_S = 0.5  # a probe stops once it has timed this long (and PROBE_MIN_STEPS): a plan answers in a minute
PROBE_WARMUP = 1  # the first step builds the kernels' plans and the allocator's pools
PROBE_EVAL_STEPS = 3  # batches of a probe's evaluation
PROBE_SHORT_LEN = 25  # characters per row of a probe's first steps, and of every step of a slow shape
PROBE_SLOW_STEP_S = 0.25  # a shape whose short steps take this long is timed at the short length
OWN_MIN_STEPS = 20  # timed steps of a stopped run from which its rest is estimated at its own pace


@dataclass(frozen=True)
class Estimate:
    """A run's expected seconds on its hardware (None: unknown) and what they rest on."""

    seconds: float | None
    # "stored" (rows of the same hardware and shape), "probe", "so far" (a stopped run's own timed
    # steps), "time budget" or "unknown"
    source: str
    steps: int | None = None
    step_s: float | None = None
    eval_s: float | None = None  # of all its evaluations together
    done_steps: int = 0  # steps a stopped run trained before, not counted in `seconds`
    # from a CPU probe: the cores other processes kept busy while it ran (it overstates a quieter machine)
    probe_busy_cores: float | None = None

    @property
    def text(self) -> str:
        return "-" if self.seconds is None else f"{self.seconds:,.0f} s"


def shape(cfg: RunConfig, vocab_size: int, cuda_graphs: bool = True) -> tuple:
    """What one training step of a run computes, on what: runs of one shape take one step time."""
    t = cfg.train
    graphs = cuda_graphs and kind_of(cfg.device).graphs  # only a kind that replays graphs (CUDA)
    hidden = hidden_size_for(cfg.cell, cfg.num_layers, cfg.size, vocab_size, cfg.size_mode)
    return (
        cfg.cell,
        cfg.num_layers,
        hidden,
        vocab_size,
        t.batch_size,
        t.seq_len,
        t.gru_reset,
        graphs,
        cfg.hardware,
    )


def probe_key(key: tuple) -> str:
    """A shape as text, for the results folder's probes.json."""
    *parts, hardware = key
    return json.dumps([*parts, hardware.as_dict() if hardware is not None else None], sort_keys=True)


def stored_shape(record: Record) -> tuple | None:
    c, m = record.config, record.metrics
    t = c.get("train", {})
    if m.get("hidden_size") is None or m.get("vocab_size") is None:
        return None
    return (
        c["cell"],
        c["num_layers"],
        m["hidden_size"],
        m["vocab_size"],
        t.get("batch_size"),
        t.get("seq_len"),
        t.get("gru_reset", "after"),
        bool(m.get("cuda_graphs")),
        record.hardware,
    )


class Estimator:
    """Estimates for the runs of one corpus, from a results folder's rows and, where it has none for
    a shape, a probe on the device (`probe` False: those are unknown)."""

    def __init__(
        self,
        folder: ResultsFolder,
        corpus: Corpus,
        probe: bool = True,
        probe_steps: int = PROBE_STEPS,
        cuda_graphs: bool = True,
        resume: bool = True,
    ):
        self.folder, self.corpus, self.probe, self.probe_steps = folder, corpus, probe, probe_steps
        self.cuda_graphs = cuda_graphs
        self.resume = resume  # False (--force): a stopped run starts over, so its saved steps do not count
        self.measured: dict[tuple, tuple[float, float, str]] = {}  # shape -> (step s, eval chars/s, source)
        self.probes = folder.probes()  # the probes kept from earlier plans and sweeps
        self._background: float | None = None  # other processes' load on the cores now (busy_cores)
        self.probe_load: dict[tuple, float] = {}  # CPU shape -> other processes' load during its probe
        rows: dict[tuple, list[tuple[float, float]]] = {}
        for record in folder.scan():
            m = record.metrics
            key = stored_shape(record) if record.kind == "sweep" else None
            if key is None or not record.finished or not m.get("step_ms_median"):
                continue
            rows.setdefault(key, []).append((m["step_ms_median"] / 1e3, m.get("eval_chars_per_s") or math.nan))
        for key, found in rows.items():
            evals = [e for _, e in found if math.isfinite(e)]
            self.measured[key] = (
                statistics.median(s for s, _ in found),
                statistics.median(evals) if evals else math.nan,
                "stored",
            )

    def estimate(self, cfg: RunConfig) -> Estimate:
        t = cfg.train
        layout = Layout.of(t)
        _, n_val, n_test = layout.sizes(self.corpus.n_bytes)
        steps_per_epoch = layout.steps_per_epoch(self.corpus.n_bytes)
        steps, _ = planned_steps(cfg, steps_per_epoch)
        key = shape(cfg, self.corpus.vocab_size, self.cuda_graphs)
        saved = self.folder.run_files(cfg.run_id).saved_progress() if self.resume else None
        own_steps = saved.step_samples_s if saved and len(saved.step_samples_s) >= OWN_MIN_STEPS else None
        own_eval = saved.eval_chars / saved.eval_s if saved and saved.eval_s > 0 and saved.eval_chars > 0 else None
        # A stopped run's own pace on this machine, as loaded as it was while it trained, is a better
        # guide to its rest than a probe (a few steps, perhaps under another load) or other runs' rows.
        found = None if own_steps and own_eval else self._shape_measure(key, cfg)
        if own_steps:
            step_s, source = statistics.median(own_steps), "so far"
            eval_rate = own_eval or (found[1] if found else math.nan)
        elif found:
            step_s, eval_rate, source = found
        if steps is None or not (own_steps or found):
            budget = t.time_budget_s
            return Estimate(budget, "time budget" if budget is not None else "unknown", steps)
        done = min(saved.step, steps) if saved else 0
        left = steps - done
        epochs = math.ceil(left / steps_per_epoch)
        n_evals = math.ceil(left / t.eval_every_steps) + epochs  # an upper bound: epoch ends and intervals
        eval_s = (n_evals * n_val + n_test) / eval_rate if math.isfinite(eval_rate) else 0.0
        seconds = left * step_s + eval_s
        if t.time_budget_s is not None:
            seconds = min(seconds, t.time_budget_s)
        busy = self.probe_load.get(key) if source == "probe" else None
        return Estimate(seconds, source, steps, step_s, eval_s, done, busy)

    def _shape_measure(self, key: tuple, cfg: RunConfig) -> tuple[float, float, str] | None:
        """(step seconds, evaluation characters per second, source) of a shape: from stored rows, a
        kept probe, or (when this estimator probes) a probe now; None when none of these has it."""
        kept = self._kept_probe(key, cfg)
        if key not in self.measured and kept is not None:
            self.measured[key] = (kept["step_s"], kept["eval_chars_per_s"], "probe")
            if kept.get("other_cpu_cores") is not None:
                self.probe_load[key] = kept["other_cpu_cores"]
        if key not in self.measured and self.probe:
            self.background_cores()  # before the probe adds its own load
            self._store(key, cfg, *self._probe(cfg))
        return self.measured.get(key)

    def background_cores(self) -> float:
        """The cores other processes keep busy now, measured once (a quarter of a second)."""
        if self._background is None:
            self._background = busy_cores()
        return self._background

    def _kept_probe(self, key: tuple, cfg: RunConfig) -> dict | None:
        """The probe kept for this shape, unless this estimator probes and the probe was of a CPU
        shape on cores loaded otherwise than now (by BUSY_CORES or more, or not recorded): a probe
        beside a test suite, kept, would overstate every later plan of that shape two-fold."""
        kept = self.probes.get(probe_key(key))
        if kept is None or not self.probe or not kind_of(cfg.device).threads:
            return kept
        then = kept.get("other_cpu_cores")
        return kept if then is not None and abs(then - self.background_cores()) < BUSY_CORES else None

    def _store(self, key: tuple, cfg: RunConfig, step_s: float, eval_rate: float) -> None:
        self.measured[key] = (step_s, eval_rate, "probe")
        probe = {"step_s": step_s, "eval_chars_per_s": eval_rate, "measured_at": utc_now()}
        if kind_of(cfg.device).threads:  # a CPU shape: with the load it was measured under
            probe["other_cpu_cores"] = self.probe_load[key] = self.background_cores()
        self.folder.store_probe(probe_key(key), probe)

    def probe_side_by_side(self, cfgs: list[RunConfig], lanes: int) -> None:
        """Probe the CPU shapes of `cfgs` that have no stored rows and no kept probe, `lanes` at a
        time in worker processes, each with its run's threads: as runs that train side by side
        share the cores (and a plan of many shapes answers sooner). The rest are probed one at a
        time by estimate()."""
        need: dict[tuple, RunConfig] = {}
        for cfg in cfgs:
            key = shape(cfg, self.corpus.vocab_size, self.cuda_graphs)
            if kind_of(cfg.device).threads and key not in self.measured and self._kept_probe(key, cfg) is None:
                need.setdefault(key, cfg)
        if not self.probe or lanes < 2 or len(need) < 2:
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        corpus = (self.corpus.name, self.corpus.data, self.corpus.source)
        context = multiprocessing.get_context("spawn")
        self.background_cores()  # before the probes add their own load
        with ProcessPoolExecutor(min(lanes, len(need)), mp_context=context) as pool:
            futures = {key: pool.submit(_probe_in_worker, cfg, corpus, self.probe_steps) for key, cfg in need.items()}
            for key, future in futures.items():
                self._store(key, need[key], *future.result())

    def _probe(self, cfg: RunConfig) -> tuple[float, float]:
        return probe(cfg, self.corpus, self.probe_steps)


def probe(cfg: RunConfig, corpus: Corpus, max_steps: int = PROBE_STEPS) -> tuple[float, float]:
    """(median step seconds, evaluation characters per second) of a run's model on its device:
    PROBE_WARMUP steps, then timed steps until PROBE_MIN_STEPS and PROBE_TIME_S are reached (or
    `max_steps`), then a few batches of evaluation.

    A slow shape (its steps of PROBE_SHORT_LEN characters take PROBE_SLOW_STEP_S or more) is timed
    at that length and its step time scaled to the run's: a recurrent step's time is its time
    steps' (sequential, each the same products) plus a fixed part (the optimizer's update), which
    the scaling counts seq_len / PROBE_SHORT_LEN times: small beside a step of a second or more
    (`benchmarks/plan_accuracy.py --slow-shapes` compares it with a long probe at full length).
    The largest paper models then cost a plan about one step of theirs, not five."""
    t, device = cfg.train, torch.device(cfg.device)
    hidden = hidden_size_for(cfg.cell, cfg.num_layers, cfg.size, corpus.vocab_size, cfg.size_mode)
    state = torch.get_rng_state()
    # As the run will train: a worker's share of the cores.
    threads = cfg.hardware.threads if cfg.hardware is not None and cfg.hardware.threads else None
    try:
        with torch_threads(threads):
            model = build_model(cfg.cell, cfg.num_layers, hidden, corpus.vocab_size, t, device)
            optimizer = build_optimizer(model, t)
            parts = Layout.of(t).streams(corpus.encode().to(device))
            train, val = parts["train"], parts["val"]
            clip, carried = GradClip.of(t, device), None
            length = min(t.seq_len, PROBE_SHORT_LEN)
            timer = StepTimer(device, warmup=PROBE_WARMUP)

            def step(i: int) -> None:
                nonlocal carried
                j = (i * length) % max(1, train.size(1) - length - 1)
                x, y = train[:, j : j + length], train[:, j + 1 : j + length + 1]
                with timer:
                    _, carried = train_step(model, optimizer, x, y, carried, clip)

            for i in itertools.count():
                timed = timer.samples_s()
                if len(timed) >= max(1, max_steps) or (
                    len(timed) >= PROBE_MIN_STEPS and sum(timed) * t.seq_len / length >= PROBE_TIME_S
                ):
                    break
                step(i)
                if i == PROBE_WARMUP and length < t.seq_len and timer.samples_s()[0] < PROBE_SLOW_STEP_S:
                    length, carried = t.seq_len, None  # a fast shape: timed at the run's own length,
                    timer = StepTimer(device, warmup=PROBE_WARMUP)  # after a step of that length
            step_s = statistics.median(timer.samples_s()) * t.seq_len / length
            synchronize(device)
            start = time.perf_counter()
            _, n_chars, _ = evaluate(model, val[:, : PROBE_EVAL_STEPS * length + 1], length)
            eval_rate = n_chars / max(time.perf_counter() - start, 1e-9)
    finally:
        torch.set_rng_state(state)  # a probe leaves the runs' random numbers as they were
    return step_s, eval_rate


def _probe_in_worker(cfg: RunConfig, corpus: tuple, max_steps: int) -> tuple[float, float]:
    return probe(cfg, Corpus(*corpus), max_steps)


def lanes_wall_s(seconds: list[float], lanes: int) -> float:
    """The wall time of runs of these durations on `lanes` at once, longest first (each run goes to
    the lane that frees first): what a sweep with --jobs takes if sharing slows no run."""
    ends = [0.0] * max(1, lanes)
    for s in sorted(seconds, reverse=True):
        ends[ends.index(min(ends))] += s
    return max(ends)
