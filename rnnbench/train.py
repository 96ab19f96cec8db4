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

import math
import random
import time
from dataclasses import dataclass, field
from typing import Callable

import psutil
import torch
import torch.nn.functional as F

from rnnbench.config import RunConfig
from rnnbench.data import Corpus, streams
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


def train(cfg: RunConfig, corpus: Corpus, on_progress: Callable[[Progress], None] | None = None) -> RunResult:
    """Train one model under its budgets, keep the best-validation weights, score them on test."""
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

    timer = StepTimer(device, warmup=t.warmup_steps)
    curve: list[dict] = []
    best = {"val": math.inf, "step": 0, "epoch": 0.0, "weights": None}
    evals_since_best = 0
    step = 0
    train_loop_s = 0.0
    eval_s = 0.0
    eval_chars = 0
    status, stop_reason = "ok", None
    loss_sum = torch.zeros((), device=device)
    loss_steps = 0
    last_train_loss = math.nan
    last_eval_step = -1
    log_mark = time.perf_counter()

    def run_eval(epoch_float: float) -> float:
        nonlocal evals_since_best, eval_s, eval_chars, last_eval_step, peak_rss
        val, n, seconds = evaluate(model, data["val"], t.seq_len)
        eval_s += seconds
        eval_chars += n
        last_eval_step = step
        peak_rss = max(peak_rss, process.memory_info().rss)
        curve.append({"step": step, "epoch": epoch_float, "train_loss_nats": last_train_loss, "val_loss_nats": val})
        if val < best["val"]:
            best.update(val=val, step=step, epoch=epoch_float,
                        weights={k: v.detach().clone() for k, v in model.state_dict().items()})
            evals_since_best = 0
        else:
            evals_since_best += 1
        return val

    epoch = 0
    while stop_reason is None:
        for group in optimizer.param_groups:  # lr x decay per epoch after `lr_decay_after_epochs`
            group["lr"] = t.lr * t.lr_decay ** max(0, epoch + 1 - t.lr_decay_after_epochs)
        state = None
        loop_start = time.perf_counter()
        for i in range(steps_per_epoch):
            x = train_data[:, i * t.seq_len:(i + 1) * t.seq_len]
            y = train_data[:, i * t.seq_len + 1:(i + 1) * t.seq_len + 1]
            with timer:
                loss, state = train_step(model, optimizer, x, y, state, t.grad_clip)
            loss_sum += loss
            loss_steps += 1
            step += 1
            if step % LOG_EVERY_STEPS == 0 or step == planned:
                last_train_loss = loss_sum.item() / loss_steps
                loss_sum.zero_()
                loss_steps = 0
                peak_rss = max(peak_rss, process.memory_info().rss)
                if not math.isfinite(last_train_loss):
                    status, stop_reason = "diverged", "diverged"
                    break
                if on_progress is not None:
                    now = time.perf_counter()
                    on_progress(Progress(step, planned, last_train_loss, LOG_EVERY_STEPS * chars_per_step / (now - log_mark)))
                    log_mark = now
            if planned is not None and step >= planned:
                stop_reason = planned_by
            elif t.time_budget_s is not None and time.perf_counter() - wall_start >= t.time_budget_s:
                stop_reason = "time_budget"
            if step % t.eval_every_steps == 0 or stop_reason:
                train_loop_s += time.perf_counter() - loop_start
                run_eval(step / steps_per_epoch)
                loop_start = time.perf_counter()
                if evals_since_best >= t.patience_evals and not stop_reason:
                    stop_reason = "early_stop"
            if stop_reason:
                break
        else:
            train_loop_s += time.perf_counter() - loop_start
            epoch += 1
            if last_eval_step != step:
                run_eval(float(epoch))
            if t.epochs is not None and epoch >= t.epochs:
                stop_reason = "epochs"
            elif evals_since_best >= t.patience_evals:
                stop_reason = "early_stop"
        if status == "diverged":
            train_loop_s += time.perf_counter() - loop_start

    test_loss = math.nan
    if status == "ok":
        model.load_state_dict(best["weights"])
        test_loss, n, seconds = evaluate(model, data["test"], t.seq_len)
        eval_s += seconds
        eval_chars += n

    step_stats = summarize([s * 1e3 for s in timer.samples_s()])
    # Rates are derived from the step-time quartiles (a monotone transform), so the median rate is
    # exactly the characters of one step over the median step time.
    chars_per_s = chars_per_step / (step_stats["median"] / 1e3)
    chars_per_s_iqr = chars_per_step / (step_stats["q1"] / 1e3) - chars_per_step / (step_stats["q3"] / 1e3)
    flops = flops_per_char(cfg.cell, vocab, hidden, cfg.num_layers, training=True)
    metrics = {
        "vocab_size": vocab,
        "hidden_size": hidden,
        "n_params": n_params(cfg.cell, vocab, hidden, cfg.num_layers),
        "train_loss_nats": last_train_loss,
        "val_loss_nats": best["val"] if math.isfinite(best["val"]) else math.nan,
        "test_loss_nats": test_loss,
        "best_step": best["step"],
        "best_epoch": best["epoch"],
        "steps": step,
        "epochs_trained": step / steps_per_epoch,
        "chars_trained": step * chars_per_step,
        "stop_reason": stop_reason,
        "wall_s": time.perf_counter() - wall_start,
        "train_loop_s": train_loop_s,
        "eval_s": eval_s,
        "n_timed_steps": step_stats["n"],
        "step_ms_median": step_stats["median"],
        "step_ms_q1": step_stats["q1"],
        "step_ms_q3": step_stats["q3"],
        "step_ms_iqr": step_stats["iqr"],
        "train_chars_per_s": chars_per_s,
        "train_chars_per_s_iqr": chars_per_s_iqr,
        "eval_chars_per_s": eval_chars / eval_s if eval_s else math.nan,
        "flops_per_char": flops,
        "achieved_gflops": flops * chars_per_s / 1e9,
        "peak_rss_mb": peak_rss / 2**20,
        "peak_cuda_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
    }
    for split in ("train", "val", "test"):
        metrics[f"{split}_bpc"] = bits(metrics[f"{split}_loss_nats"])
    return RunResult(status, metrics, curve)
