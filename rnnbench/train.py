"""Training and evaluation of one run: train(cfg, corpus) -> RunResult.

    >>> from rnnbench.config import Grid
    >>> from rnnbench.data import load_corpus
    >>> from rnnbench.train import train
    >>> corpus = load_corpus("synthetic")
    >>> grid = Grid(dataset="synthetic", cells=("gru",), layers=(1,), sizes=(32,), size_mode="hidden",
    ...             devices=("cpu",), batch_size=16, seq_len=32, max_steps=20, eval_every_steps=10)
    >>> result = train(grid.expand(corpus.sha256)[0], corpus)
    >>> result.status, result.metrics["steps"]
    ('ok', 20)

Truncated backpropagation through time over contiguous streams: the train split is cut into
`batch_size` streams, each step consumes `seq_len` characters of each, and the hidden state is
carried (detached) from step to step. Evaluation walks the val or test split the same way, without
gradients, and scores every character but the last of each stream.

Losses are mean cross-entropy in nats per character; bits per character = nats / ln 2.
Throughput is the median over timed steps after warm-up (the first `warmup_steps` are left out);
its spread is the IQR of the same samples.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import psutil
import torch
import torch.nn.functional as F

from rnnbench import checkpoint
from rnnbench.config import RunConfig
from rnnbench.data import Corpus, streams
from rnnbench.errors import UsageError
from rnnbench.models import CharRNN, flops_per_char, hidden_size_for, n_params
from rnnbench.timing import StepTimer, summarize, synchronize

LOG_EVERY_STEPS = 10  # how often the loss is read back from the device (a sync on CUDA)


@dataclass
class Progress:
    """What a progress display is told every LOG_EVERY_STEPS steps."""

    step: int
    planned_steps: int | None  # None when only a time budget bounds the run
    train_loss_nats: float
    chars_per_s: float
    val_loss_nats: float | None = None


@dataclass
class RunResult:
    status: str  # "ok" or "diverged"
    metrics: dict
    curve: list[dict] = field(default_factory=list)


def bits(nats: float) -> float:
    return nats / math.log(2)


def detach(state):
    if state is None:
        return None
    if isinstance(state, tuple):  # LSTM: (h, c)
        return tuple(s.detach() for s in state)
    return state.detach()


def train_step(model: CharRNN, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
               state, grad_clip: float):
    """One step of truncated BPTT: forward, loss, backward, clip the gradient norm, update."""
    logits, state = model(x, detach(state))
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.detach(), state


@torch.no_grad()
def evaluate(model: CharRNN, data: torch.Tensor, seq_len: int) -> tuple[float, int, float]:
    """(mean loss in nats, characters scored, seconds) over streams `data` of shape (batch, length)."""
    was_training = model.training
    model.eval()
    synchronize(data.device)
    start = time.perf_counter()
    total = torch.zeros((), device=data.device, dtype=torch.float64)
    state = None
    last = data.size(1) - 1  # the last character of each stream has nothing to predict
    for i in range(0, last, seq_len):
        j = min(i + seq_len, last)
        logits, state = model(data[:, i:j], state)
        total += F.cross_entropy(logits.reshape(-1, logits.size(-1)), data[:, i + 1:j + 1].reshape(-1), reduction="sum")
    n_chars = data.size(0) * last
    loss = total.item() / n_chars  # .item() synchronises
    seconds = time.perf_counter() - start
    model.train(was_training)
    return loss, n_chars, seconds


def planned_steps(cfg: RunConfig, steps_per_epoch: int) -> tuple[int | None, str | None]:
    """(steps, the budget that sets them): the first step budget reached, or (None, None)."""
    t = cfg.train
    limits = []
    if t.epochs is not None:
        limits.append((t.epochs * steps_per_epoch, "epochs"))
    if t.max_steps is not None:
        limits.append((t.max_steps, "max_steps"))
    if t.max_chars is not None:
        limits.append((math.ceil(t.max_chars / (t.batch_size * t.seq_len)), "max_chars"))
    return min(limits) if limits else (None, None)


@dataclass
class _Loop:
    """The training loop's bookkeeping: what a resumed run gets back besides tensors and RNG states."""

    step: int = 0
    epoch: int = 0
    next_index: int = 0  # the next step's position within the epoch
    evals_since_best: int = 0
    best_val: float = math.inf
    best_step: int = 0
    best_epoch: float = 0.0
    last_train_loss: float = math.nan
    last_eval_step: int = -1
    loss_steps: int = 0
    train_loop_s: float = 0.0
    eval_s: float = 0.0
    eval_chars: int = 0
    wall_s_before: float = 0.0  # wall time of the earlier sessions of a resumed run
    checkpoint_s: float = 0.0
    checkpoint_bytes: int = 0
    resumed_at_steps: list = field(default_factory=list)
    curve: list = field(default_factory=list)
    step_samples_s: list = field(default_factory=list)


def _rng_states(device: torch.device) -> dict:
    states = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def _set_rng_states(states: dict, device: torch.device) -> None:
    torch.set_rng_state(states["torch"])
    random.setstate(states["python"])
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)


def train(cfg: RunConfig, corpus: Corpus, on_progress: Callable[[Progress], None] | None = None,
          checkpoint_dir: str | Path | None = None) -> RunResult:
    """Train one model under its budgets, keep the best-validation weights, score them on test.

    With `checkpoint_dir`, the best weights go to best.pt whenever validation improves, and the
    whole training state to latest.pt at every evaluation; a run that finds a latest.pt of its own
    run id there continues from it, and reaches the same losses as a run never interrupted.
    """
    t = cfg.train
    wall_start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    corpus.check_fits(t.batch_size, t.seq_len)
    device = torch.device(cfg.device)
    vocab = corpus.vocab_size
    hidden = hidden_size_for(cfg.cell, cfg.num_layers, cfg.size, vocab, cfg.size_mode)
    model = CharRNN(vocab, cfg.cell, hidden, cfg.num_layers, t.dropout).to(device)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=t.lr, alpha=t.rmsprop_alpha)
    # The corpus lives on the device as one tensor; a batch is a slice of it, never a copy.
    data = {name: streams(split.to(device), t.batch_size) for name, split in corpus.splits().items()}
    train_data = data["train"]
    steps_per_epoch = (train_data.size(1) - 1) // t.seq_len
    planned, planned_by = planned_steps(cfg, steps_per_epoch)
    chars_per_step = t.batch_size * t.seq_len
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    process = psutil.Process()
    peak_rss = process.memory_info().rss

    loop = _Loop()
    best_weights = None
    state = None
    loss_sum = torch.zeros((), device=device)
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    identity = {"run_id": cfg.run_id, "config": cfg.as_dict(), "vocab": list(corpus.vocab), "hidden_size": hidden}
    if folder is not None and (folder / "latest.pt").exists():
        saved = checkpoint.load(folder / "latest.pt")
        if saved["kind"] != "latest" or saved["run_id"] != cfg.run_id:
            raise UsageError(f"{folder / 'latest.pt'} belongs to another run ({saved['run_id']}); move it away")
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        loop = _Loop(**saved["loop"])
        loop.resumed_at_steps.append(loop.step)
        best_weights = checkpoint.to_device(saved["best_weights"], device)
        state = checkpoint.to_device(saved["state"], device)
        loss_sum.fill_(float(saved["loss_sum"]))
        _set_rng_states(saved["rng"], device)
    timer = StepTimer(device, warmup=t.warmup_steps)  # each session warms up anew
    status, stop_reason = "ok", None
    log_mark = time.perf_counter()

    saved_best_step = loop.best_step if best_weights is not None else -1  # a resumed run's best.pt is current

    def save_best() -> None:
        nonlocal saved_best_step
        loop.checkpoint_bytes += checkpoint.save(folder / "best.pt", identity | {
            "kind": "best", "model": best_weights, "step": loop.best_step, "val_loss_nats": loop.best_val})
        saved_best_step = loop.best_step

    def save_checkpoints() -> None:
        start = time.perf_counter()
        loop.step_samples_s += timer.samples_s(clear=True)
        if best_weights is not None and loop.best_step != saved_best_step:
            save_best()
        snapshot = dataclasses.asdict(loop) | {"wall_s_before": loop.wall_s_before + time.perf_counter() - wall_start}
        loop.checkpoint_bytes += checkpoint.save(folder / "latest.pt", identity | {
            "kind": "latest", "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "state": state, "best_weights": best_weights, "loss_sum": loss_sum.item(), "loop": snapshot,
            "rng": _rng_states(device), "step": loop.step, "val_loss_nats": loop.best_val})
        loop.checkpoint_s += time.perf_counter() - start

    def run_eval(epoch_float: float) -> None:
        nonlocal peak_rss, best_weights
        val, n, seconds = evaluate(model, data["val"], t.seq_len)
        loop.eval_s += seconds
        loop.eval_chars += n
        loop.last_eval_step = loop.step
        peak_rss = max(peak_rss, process.memory_info().rss)
        loop.curve.append({"step": loop.step, "epoch": epoch_float, "train_loss_nats": loop.last_train_loss,
                           "val_loss_nats": val})
        if val < loop.best_val:
            loop.best_val, loop.best_step, loop.best_epoch = val, loop.step, epoch_float
            best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            loop.evals_since_best = 0
        else:
            loop.evals_since_best += 1

    while stop_reason is None:
        for group in optimizer.param_groups:  # lr x decay per epoch after `lr_decay_after_epochs`
            group["lr"] = t.lr * t.lr_decay ** max(0, loop.epoch + 1 - t.lr_decay_after_epochs)
        loop_start = time.perf_counter()
        for i in range(loop.next_index, steps_per_epoch):
            x = train_data[:, i * t.seq_len:(i + 1) * t.seq_len]
            y = train_data[:, i * t.seq_len + 1:(i + 1) * t.seq_len + 1]
            with timer:
                loss, state = train_step(model, optimizer, x, y, state, t.grad_clip)
            loss_sum += loss
            loop.loss_steps += 1
            loop.step += 1
            if loop.step % LOG_EVERY_STEPS == 0 or loop.step == planned:
                loop.last_train_loss = loss_sum.item() / loop.loss_steps
                loss_sum.zero_()
                loop.loss_steps = 0
                peak_rss = max(peak_rss, process.memory_info().rss)
                if not math.isfinite(loop.last_train_loss):
                    status, stop_reason = "diverged", "diverged"
                    break
                if on_progress is not None:
                    now = time.perf_counter()
                    on_progress(Progress(loop.step, planned, loop.last_train_loss,
                                         LOG_EVERY_STEPS * chars_per_step / (now - log_mark)))
                    log_mark = now
            if planned is not None and loop.step >= planned:
                stop_reason = planned_by
            elif (t.time_budget_s is not None
                  and loop.wall_s_before + time.perf_counter() - wall_start >= t.time_budget_s):
                stop_reason = "time_budget"
            if loop.step % t.eval_every_steps == 0 or stop_reason:
                loop.train_loop_s += time.perf_counter() - loop_start
                run_eval(loop.step / steps_per_epoch)
                if folder is not None and not stop_reason:
                    loop.next_index = i + 1
                    save_checkpoints()
                loop_start = time.perf_counter()
                if loop.evals_since_best >= t.patience_evals and not stop_reason:
                    stop_reason = "early_stop"
            if stop_reason:
                break
        else:
            loop.train_loop_s += time.perf_counter() - loop_start
            loop.epoch += 1
            loop.next_index = 0
            state = None  # each epoch starts its streams from the beginning with a fresh state
            if loop.last_eval_step != loop.step:
                run_eval(float(loop.epoch))
            if t.epochs is not None and loop.epoch >= t.epochs:
                stop_reason = "epochs"
            elif loop.evals_since_best >= t.patience_evals:
                stop_reason = "early_stop"
            elif folder is not None:
                save_checkpoints()
        if status == "diverged":
            loop.train_loop_s += time.perf_counter() - loop_start
    if folder is not None and best_weights is not None and loop.best_step != saved_best_step:
        start = time.perf_counter()  # the last evaluation improved as training stopped
        save_best()
        loop.checkpoint_s += time.perf_counter() - start

    test_loss = math.nan
    if status == "ok":
        model.load_state_dict(best_weights)
        test_loss, n, seconds = evaluate(model, data["test"], t.seq_len)
        loop.eval_s += seconds
        loop.eval_chars += n

    step_stats = summarize([s * 1e3 for s in loop.step_samples_s + timer.samples_s()])
    # Rates are derived from the step-time quartiles (a monotone transform), so the median rate is
    # exactly the characters of one step over the median step time.
    chars_per_s = chars_per_step / (step_stats["median"] / 1e3)
    chars_per_s_iqr = chars_per_step / (step_stats["q1"] / 1e3) - chars_per_step / (step_stats["q3"] / 1e3)
    flops = flops_per_char(cfg.cell, vocab, hidden, cfg.num_layers, training=True)
    metrics = {
        "vocab_size": vocab,
        "hidden_size": hidden,
        "n_params": n_params(cfg.cell, vocab, hidden, cfg.num_layers),
        "train_loss_nats": loop.last_train_loss,
        "val_loss_nats": loop.best_val if math.isfinite(loop.best_val) else math.nan,
        "test_loss_nats": test_loss,
        "best_step": loop.best_step,
        "best_epoch": loop.best_epoch,
        "steps": loop.step,
        "epochs_trained": loop.step / steps_per_epoch,
        "chars_trained": loop.step * chars_per_step,
        "stop_reason": stop_reason,
        "wall_s": loop.wall_s_before + time.perf_counter() - wall_start,
        "train_loop_s": loop.train_loop_s,
        "eval_s": loop.eval_s,
        "n_timed_steps": step_stats["n"],
        "step_ms_median": step_stats["median"],
        "step_ms_q1": step_stats["q1"],
        "step_ms_q3": step_stats["q3"],
        "step_ms_iqr": step_stats["iqr"],
        "train_chars_per_s": chars_per_s,
        "train_chars_per_s_iqr": chars_per_s_iqr,
        "eval_chars_per_s": loop.eval_chars / loop.eval_s if loop.eval_s else math.nan,
        "flops_per_char": flops,
        "achieved_gflops": flops * chars_per_s / 1e9,
        "peak_rss_mb": peak_rss / 2**20,
        "peak_cuda_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
        "checkpoint_s": loop.checkpoint_s if folder is not None else None,
        "checkpoint_mb_written": loop.checkpoint_bytes / 2**20 if folder is not None else None,
        "resumed_at_steps": loop.resumed_at_steps,
    }
    for split in ("train", "val", "test"):
        metrics[f"{split}_bpc"] = bits(metrics[f"{split}_loss_nats"])
    return RunResult(status, metrics, loop.curve)
