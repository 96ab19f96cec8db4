"""Training and evaluation of one run: train(cfg, corpus) -> RunResult, done by a Trainer.

    >>> from rnnbench.config import Grid
    >>> from rnnbench.core.data import load_corpus
    >>> from rnnbench.core.train import train
    >>> corpus = load_corpus("synthetic")
    >>> grid = Grid.from_settings(dataset="synthetic", cells=("gru",), layers=(1,), sizes=(32,), size_mode="hidden",
    ...                           devices=("cpu",), batch_size=16, seq_len=32, max_steps=20, eval_every_steps=10)
    >>> result = train(grid.expand(corpus.sha256)[0], corpus)
    >>> result.status, result.metrics["steps"]
    ('ok', 20)

Truncated backpropagation through time over parallel streams: the run's layout (data.Layout)
cuts the train split into `batch_size` streams, each step consumes `seq_len` characters of each,
and the hidden state is carried (detached) from step to step. Evaluation walks the val or test
split the same way, without gradients, and scores every character but the last of each stream.

Losses are mean cross-entropy in nats per character; bits per character = nats / ln 2.
Throughput is the median over timed steps after warm-up (the first `warmup_steps` are left out);
its spread is the IQR of the same samples.

One training step is `train_step`, a function of (model, optimizer, batch, carried state) alone,
so that it can be wrapped or captured; the Trainer around it owns resuming, the epoch loop and
budgets, evaluation, checkpoints and the metrics, each in a method of its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import torch
import torch.nn.functional as F

from rnnbench.config import RunConfig, TrainConfig
from rnnbench.core import checkpoint
from rnnbench.core.checkpoint import RunFiles
from rnnbench.core.data import SPLIT_NAMES, Corpus, Layout
from rnnbench.core.devices import kind_of
from rnnbench.core.energy import EnergyMeter
from rnnbench.core.graphed import GraphedStep
from rnnbench.core.models import CharRNN, flops_per_char, hidden_size_for, n_params
from rnnbench.core.timing import StepTimer, rate, summarize, synchronize
from rnnbench.errors import StopRequested, UsageError
from rnnbench.events import Progress

LOG_EVERY_STEPS = 10  # how often the loss is read back from the device (a sync on CUDA)


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


class GradClip:
    """A run's gradient clipping (TrainConfig.grad_clip_mode), applied to the model's gradients of
    the mean loss after backward, and the count of steps at which it changed them.

    'norm' scales the whole gradient down to norm `grad_clip` when it is longer. 'clamp' is
    char-rnn's: its gradient is that of the loss summed over the `seq_len` steps (each step's
    batch-mean loss added up, `seq_len` times the mean-loss gradient), each element clamped to
    [-grad_clip, grad_clip], and the optimizer takes that gradient as it is.

    The count stays on the device (no sync per step) and a captured step adds to it at each replay.

        >>> model = torch.nn.Linear(2, 1)
        >>> model(torch.ones(1, 2)).sum().mul(10).backward()
        >>> clip = GradClip("clamp", 5.0, seq_len=2, device="cpu")
        >>> clip(model.parameters())
        >>> model.bias.grad.item(), int(clip.acted_steps)
        (5.0, 1)
    """

    def __init__(self, mode: str, max_value: float, seq_len: int, device):
        self.mode, self.max_value, self.seq_len = mode, max_value, seq_len
        self.acted_steps = torch.tensor(0, dtype=torch.int64, device=device)  # a resumed run fills it

    @classmethod
    def of(cls, t: TrainConfig, device) -> GradClip:
        return cls(t.grad_clip_mode, t.grad_clip, t.seq_len, device)

    def __call__(self, parameters) -> None:
        params = [p for p in parameters if p.grad is not None]
        if self.mode == "clamp":
            grads = [p.grad for p in params]
            torch._foreach_mul_(grads, float(self.seq_len))
            largest = torch.nn.utils.get_total_norm(grads, norm_type=math.inf)
            torch.nn.utils.clip_grad_value_(params, self.max_value)
        else:
            largest = torch.nn.utils.clip_grad_norm_(params, self.max_value)
        self.acted_steps += largest > self.max_value


def build_model(cell: str, num_layers: int, hidden: int, vocab_size: int, t: TrainConfig, device) -> CharRNN:
    """A run's model as its training settings initialise it, on its device: the one place a run's
    CharRNN is built (training, the estimator's probe, compare-devices)."""
    return CharRNN(vocab_size, cell, hidden, num_layers, t.dropout, t.lstm_forget_bias, t.gru_reset).to(device)


def build_optimizer(model: CharRNN, t: TrainConfig, lr=None, capturable: bool = False) -> torch.optim.Optimizer:
    """RMSProp as the settings say; `lr` a device tensor where a captured step reads it."""
    return torch.optim.RMSprop(
        model.parameters(), lr=t.lr if lr is None else lr, alpha=t.rmsprop_alpha, capturable=capturable
    )


def train_step(
    model: CharRNN,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    state,
    clip: GradClip,
    precision: Precision | None = None,
):
    """One step of truncated BPTT: forward, loss, backward, clip the gradient, update; under a
    reduced `precision` (compare-devices) the forward runs under autocast and float16's loss is scaled."""
    with precision.autocast() if precision else contextlib.nullcontext():
        logits, state = model(x, detach(state))
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1).long())
    optimizer.zero_grad(set_to_none=True)
    if precision is None:
        loss.backward()
        clip(model.parameters())
        optimizer.step()
    else:
        scaler = precision.scaler
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)  # the clip acts on the true gradient
        clip(model.parameters())
        scaler.step(optimizer)
        scaler.update()
    return loss.detach(), state


class Precision:
    """A training step's reduced precision: autocast to `dtype` on `device`, with float16's loss
    scaling (bfloat16 and float32 need none)."""

    def __init__(self, dtype: torch.dtype, device: torch.device):
        self.dtype, self.device = dtype, torch.device(device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=dtype == torch.float16)

    @classmethod
    def of(cls, dtype: torch.dtype, device) -> Precision | None:
        """None for float32: the plain step, without autocast."""
        return cls(dtype, device) if dtype != torch.float32 else None

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.dtype)


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
        total += F.cross_entropy(
            logits.reshape(-1, logits.size(-1)), data[:, i + 1 : j + 1].reshape(-1).long(), reduction="sum"
        )
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
class LoopState:
    """The training loop's bookkeeping: what a resumed run gets back (latest.pt's "loop") besides
    tensors and RNG states."""

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
    clipped_steps: int = 0  # steps at which the clipping changed the gradient (GradClip.acted_steps)
    energy_j: float = 0.0  # the device counter's joules over the earlier sessions (EnergyMeter)
    wall_s_before: float = 0.0  # wall time of the earlier sessions of a resumed run
    checkpoint_s: float = 0.0
    checkpoint_bytes: int = 0
    resumed_at_steps: list = field(default_factory=list)
    curve: list = field(default_factory=list)
    step_samples_s: list = field(default_factory=list)


def _mb(n_bytes: int | None) -> float | None:
    return n_bytes / 2**20 if n_bytes is not None else None


def _rng_states(device: torch.device) -> dict:
    states = {"torch": torch.get_rng_state(), "python": random.getstate()}
    generator = kind_of(device).rng_state(device)  # a device's own generator (CUDA's), if it has one
    if generator is not None:
        states[device.type] = generator
    return states


def _set_rng_states(states: dict, device: torch.device) -> None:
    torch.set_rng_state(states["torch"])
    random.setstate(states["python"])
    if device.type in states:
        kind_of(device).set_rng_state(states[device.type], device)


def train(
    cfg: RunConfig,
    corpus: Corpus,
    on_progress: Callable[[Progress], None] | None = None,
    checkpoint_dir: str | Path | None = None,
    cuda_graphs: bool = True,
    should_stop: Callable[[], bool] | None = None,
) -> RunResult:
    """Train one model under its budgets, keep the best-validation weights, score them on test.

    With `checkpoint_dir`, the best weights go to best.pt whenever validation improves, and the
    whole training state to latest.pt at every evaluation; a run that finds a latest.pt of its own
    run id there continues from it, and reaches the same losses as a run never interrupted.
    With `cuda_graphs`, a run on CUDA replays its training step from a CUDA graph
    (rnnbench.core.graphed); the metrics say whether it did. When `should_stop()` turns true, the run
    saves its whole state after the step in progress and raises StopRequested.
    """
    return Trainer(cfg, corpus, on_progress, checkpoint_dir, cuda_graphs, should_stop).run()


class Trainer:
    """One run: its model, optimizer, data on the device and loop state, and one method per part
    of training. `step_fn` is the training step; it may be replaced by a wrapped or captured
    version with the same signature."""

    def __init__(
        self,
        cfg: RunConfig,
        corpus: Corpus,
        on_progress: Callable[[Progress], None] | None = None,
        checkpoint_dir: str | Path | None = None,
        cuda_graphs: bool = True,
        should_stop: Callable[[], bool] | None = None,
    ):
        t = self.t = cfg.train
        self.cfg, self.on_progress, self.should_stop = cfg, on_progress, should_stop
        self.wall_start = time.perf_counter()
        torch.manual_seed(cfg.seed)  # before the model: its initial weights come from this seed
        random.seed(cfg.seed)
        self.layout = Layout.of(t)
        self.layout.check_fits(corpus.name, corpus.n_bytes)
        self.device = device = torch.device(cfg.device)
        self.vocab_size, self.corpus_bytes = corpus.vocab_size, corpus.n_bytes
        self.hidden = hidden_size_for(cfg.cell, cfg.num_layers, cfg.size, self.vocab_size, cfg.size_mode)
        self.model = build_model(cfg.cell, cfg.num_layers, self.hidden, self.vocab_size, t, device)
        graphs = cuda_graphs and kind_of(device).graphs
        # A captured optimizer step reads its learning rate from the device, where the decay can
        # change it between replays; eager training keeps a plain float.
        self.lr_tensor = torch.tensor(t.lr, device=device) if graphs else None
        self.optimizer = build_optimizer(self.model, t, self.lr_tensor if graphs else None, capturable=graphs)
        self.step_fn = GraphedStep(train_step) if graphs else train_step
        self.clip = GradClip.of(t, device)
        # The corpus lives on the device as one tensor; a batch is a slice of it, never a copy.
        self.data = self.layout.streams(corpus.encode().to(device))
        self.steps_per_epoch = self.layout.steps_per_epoch(corpus.n_bytes)
        self.planned, self.planned_by = planned_steps(cfg, self.steps_per_epoch)
        self.chars_per_step = t.batch_size * t.seq_len
        kind_of(device).reset_peak_memory(device)
        self.process = psutil.Process()
        self.peak_rss = self.process.memory_info().rss
        self.loop = LoopState()
        self.best_weights: dict | None = None
        self.saved_best_step = -1  # the step whose best weights best.pt holds
        self.state = None  # the hidden state carried from step to step
        self.loss_sum = torch.zeros((), device=device)  # summed on the device: no sync per step
        self.files = RunFiles(checkpoint_dir) if checkpoint_dir is not None else None
        self.identity = {
            "run_id": cfg.run_id,
            "config": cfg.as_dict(),
            "vocab": list(corpus.vocab),
            "hidden_size": self.hidden,
        }
        self.status, self.stop_reason = "ok", None
        self.timer = StepTimer(device, warmup=t.warmup_steps)  # each session warms up anew
        self.energy = EnergyMeter(kind_of(device).energy_counter(device))  # training, evaluation, checkpoints
        self.lr = t.lr  # the learning rate now, as set_epoch_lr last set it
        self.restart_rate()

    def run(self) -> RunResult:
        self.resume()
        self.restart_rate()
        while self.stop_reason is None:
            self.set_epoch_lr()
            if self.train_epoch():
                self.end_epoch()
                self.restart_rate()
        self.save_final_best()
        test_loss = self.test() if self.status == "ok" else math.nan
        return RunResult(self.status, self.metrics(test_loss), self.loop.curve)

    # --- resuming and checkpoints ----------------------------------------------------------------

    def resume(self) -> bool:
        """Continue from this run's latest.pt if the checkpoint folder holds one."""
        saved = self.files.load_latest() if self.files is not None else None
        if saved is None:
            return False
        if saved["kind"] != "latest" or saved["run_id"] != self.cfg.run_id:
            raise UsageError(f"{self.files.latest} belongs to another run ({saved['run_id']}); move it away")
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self._match_capturable()
        self.loop = LoopState(**saved["loop"])
        self.loop.resumed_at_steps.append(self.loop.step)
        self.best_weights = checkpoint.to_device(saved["best_weights"], self.device)
        self.state = checkpoint.to_device(saved["state"], self.device)
        self.loss_sum.fill_(float(saved["loss_sum"]))
        self.clip.acted_steps.fill_(self.loop.clipped_steps)
        self.energy.total = self.loop.energy_j
        _set_rng_states(saved["rng"], self.device)
        if self.best_weights is not None:
            self.saved_best_step = self.loop.best_step  # a resumed run's best.pt is current
        return True

    def _match_capturable(self) -> None:
        """A checkpoint written with CUDA graphs on may be resumed with them off, or the other way:
        the optimizer's step counters then move to where this run's optimizer keeps them."""
        graphs = self.lr_tensor is not None
        for group in self.optimizer.param_groups:
            group["capturable"] = graphs
        for state in self.optimizer.state.values():
            if "step" in state:
                state["step"] = state["step"].to(self.device if graphs else "cpu", torch.float32)

    def save_best(self) -> None:
        loop = self.loop
        loop.checkpoint_bytes += self.files.save_best(
            self.identity
            | {"kind": "best", "model": self.best_weights, "step": loop.best_step, "val_loss_nats": loop.best_val}
        )
        self.saved_best_step = loop.best_step

    def save_checkpoints(self) -> None:
        """best.pt if validation improved since it was written, and latest.pt: all needed to resume."""
        loop = self.loop
        start = time.perf_counter()
        loop.step_samples_s += self.timer.samples_s(clear=True)
        if self.best_weights is not None and loop.best_step != self.saved_best_step:
            self.save_best()
        snapshot = dataclasses.asdict(loop) | {
            "wall_s_before": self.elapsed_s(),
            "clipped_steps": int(self.clip.acted_steps),
            "energy_j": self.energy.joules or 0.0,
        }
        loop.checkpoint_bytes += self.files.save_latest(
            self.identity
            | {
                "kind": "latest",
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "state": self.state,
                "best_weights": self.best_weights,
                "loss_sum": self.loss_sum.item(),
                "loop": snapshot,
                "rng": _rng_states(self.device),
                "step": loop.step,
                "val_loss_nats": loop.best_val,
            }
        )
        loop.checkpoint_s += time.perf_counter() - start

    def save_final_best(self) -> None:
        """The last evaluation may have improved as training stopped."""
        if self.files is not None and self.best_weights is not None and self.loop.best_step != self.saved_best_step:
            start = time.perf_counter()
            self.save_best()
            self.loop.checkpoint_s += time.perf_counter() - start

    # --- the training loop -----------------------------------------------------------------------

    def elapsed_s(self) -> float:
        """Wall time of the run so far, earlier sessions of a resumed run included."""
        return self.loop.wall_s_before + time.perf_counter() - self.wall_start

    def restart_rate(self) -> None:
        """The live chars/s counts from here: after an evaluation or a checkpoint, so that it
        measures training only."""
        self.rate_start, self.rate_step = time.perf_counter(), self.loop.step

    def set_epoch_lr(self) -> None:
        """lr x decay per epoch after `lr_decay_after_epochs`."""
        t = self.t
        self.lr = lr = t.lr * t.lr_decay ** max(0, self.loop.epoch + 1 - t.lr_decay_after_epochs)
        if self.lr_tensor is not None:
            self.lr_tensor.fill_(lr)  # the tensor the captured step reads
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_tensor if self.lr_tensor is not None else lr

    def step(self, i: int) -> None:
        """The i-th training step of the epoch, timed; its loss is added up on the device."""
        seq = self.t.seq_len
        x = self.data["train"][:, i * seq : (i + 1) * seq]
        y = self.data["train"][:, i * seq + 1 : (i + 1) * seq + 1]
        with self.timer:
            loss, self.state = self.step_fn(self.model, self.optimizer, x, y, self.state, self.clip)
        self.loss_sum += loss
        self.loop.loss_steps += 1
        self.loop.step += 1

    def train_epoch(self) -> bool:
        """Steps from the loop's position to the end of the epoch, evaluating on the way; True if it
        reached the end without a reason to stop."""
        loop, t = self.loop, self.t
        loop_start = time.perf_counter()
        for i in range(loop.next_index, self.steps_per_epoch):
            self.step(i)
            if loop.step % LOG_EVERY_STEPS == 0 or loop.step == self.planned:
                self.log_loss()
                if self.status == "diverged":
                    loop.train_loop_s += time.perf_counter() - loop_start
                    return False
            self.check_budgets()
            if loop.step % t.eval_every_steps == 0 or self.stop_reason:
                synchronize(self.device)  # the curve's clock counts the queued steps as training
                loop.train_loop_s += time.perf_counter() - loop_start
                self.evaluate_val(loop.step / self.steps_per_epoch)
                if self.files is not None and not self.stop_reason:
                    loop.next_index = i + 1
                    self.save_checkpoints()
                loop_start = time.perf_counter()
                self.restart_rate()
                if loop.evals_since_best >= t.patience_evals and not self.stop_reason:
                    self.stop_reason = "early_stop"
            if self.stop_reason:
                return False
            if self.should_stop is not None and self.should_stop():
                loop.train_loop_s += time.perf_counter() - loop_start
                self.stop_now(i)
        synchronize(self.device)
        loop.train_loop_s += time.perf_counter() - loop_start
        return True

    def stop_now(self, i: int) -> None:
        """Save everything needed to continue after step i of the epoch, then stop the run."""
        self.loop.next_index = i + 1
        if self.files is not None:
            self.save_checkpoints()
        raise StopRequested(f"stopped after step {self.loop.step}")

    def end_epoch(self) -> None:
        loop, t = self.loop, self.t
        loop.epoch += 1
        loop.next_index = 0
        self.state = None  # each epoch starts its streams from the beginning with a fresh state
        if loop.last_eval_step != loop.step:
            self.evaluate_val(float(loop.epoch))
        if t.epochs is not None and loop.epoch >= t.epochs:
            self.stop_reason = "epochs"
        elif loop.evals_since_best >= t.patience_evals:
            self.stop_reason = "early_stop"
        elif self.files is not None:
            self.save_checkpoints()

    def log_loss(self) -> None:
        """Read the mean training loss back from the device (a sync on CUDA), stop on divergence,
        and tell the progress display."""
        loop = self.loop
        loop.last_train_loss = self.loss_sum.item() / loop.loss_steps
        self.loss_sum.zero_()
        loop.loss_steps = 0
        self.energy.sample()  # often enough to count each wrap of a CPU's counter
        self.peak_rss = max(self.peak_rss, self.process.memory_info().rss)
        if not math.isfinite(loop.last_train_loss):
            self.status = self.stop_reason = "diverged"
            return
        if self.on_progress is not None:
            now = time.perf_counter()
            last = loop.curve[-1] if loop.curve else {}
            self.on_progress(
                Progress(
                    loop.step,
                    self.planned,
                    loop.last_train_loss,
                    (loop.step - self.rate_step) * self.chars_per_step / max(now - self.rate_start, 1e-9),
                    last.get("val_loss_nats"),
                    last.get("step"),
                    self.lr,
                )
            )
            self.restart_rate()

    def check_budgets(self) -> None:
        loop, t = self.loop, self.t
        if self.planned is not None and loop.step >= self.planned:
            self.stop_reason = self.planned_by
        elif t.time_budget_s is not None and self.elapsed_s() >= t.time_budget_s:
            self.stop_reason = "time_budget"

    # --- evaluation --------------------------------------------------------------------------------

    def evaluate_val(self, epoch: float) -> None:
        """Score the validation split; keep the weights if they are the best yet."""
        loop = self.loop
        val, n, seconds = evaluate(self.model, self.data["val"], self.t.seq_len)
        loop.eval_s += seconds
        loop.eval_chars += n
        loop.last_eval_step = loop.step
        self.peak_rss = max(self.peak_rss, self.process.memory_info().rss)
        # train_s: training so far, evaluation and checkpoints excluded (for time to a target loss);
        # wall_s: the whole run so far, this evaluation included.
        loop.curve.append(
            {
                "step": loop.step,
                "epoch": epoch,
                "train_loss_nats": loop.last_train_loss,
                "val_loss_nats": val,
                "train_s": loop.train_loop_s,
                "wall_s": self.elapsed_s(),
            }
        )
        if val < loop.best_val:
            loop.best_val, loop.best_step, loop.best_epoch = val, loop.step, epoch
            self.best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            loop.evals_since_best = 0
        else:
            loop.evals_since_best += 1

    def test(self) -> float:
        """The best-validation weights' loss on the test split."""
        self.model.load_state_dict(self.best_weights)
        loss, n, seconds = evaluate(self.model, self.data["test"], self.t.seq_len)
        self.loop.eval_s += seconds
        self.loop.eval_chars += n
        return loss

    # --- the run's metrics ---------------------------------------------------------------------------

    def metrics(self, test_loss: float) -> dict:
        """The metrics of a run's record (docs/method.md, "Method of the throughput figures")."""
        loop, cfg, device = self.loop, self.cfg, self.device
        step_ms = summarize([s * 1e3 for s in loop.step_samples_s + self.timer.samples_s()])
        chars_per_s, chars_per_s_iqr = rate(self.chars_per_step * 1e3, step_ms)  # chars per ms, x1000
        flops = flops_per_char(cfg.cell, self.vocab_size, self.hidden, cfg.num_layers, training=True)
        with_checkpoints = self.files is not None
        metrics = {
            "vocab_size": self.vocab_size,
            # The bytes in each split as this run's layout cut them (the chunked layout leaves the
            # text's end out when it does not divide by batch x seq).
            **{f"{name}_split_bytes": size for name, size in zip(SPLIT_NAMES, self.layout.sizes(self.corpus_bytes))},
            "hidden_size": self.hidden,
            "n_params": n_params(cfg.cell, self.vocab_size, self.hidden, cfg.num_layers),
            "train_loss_nats": loop.last_train_loss,
            "val_loss_nats": loop.best_val if math.isfinite(loop.best_val) else math.nan,
            "test_loss_nats": test_loss,
            "best_step": loop.best_step,
            "best_epoch": loop.best_epoch,
            "steps": loop.step,
            "epochs_trained": loop.step / self.steps_per_epoch,
            "chars_trained": loop.step * self.chars_per_step,
            "stop_reason": self.stop_reason,
            # How often the clipping changed the gradient (grad_clip_mode): a share of the steps.
            "clipped_steps": int(self.clip.acted_steps),
            "clipped_step_share": int(self.clip.acted_steps) / loop.step if loop.step else math.nan,
            "wall_s": self.elapsed_s(),
            "train_loop_s": loop.train_loop_s,
            "eval_s": loop.eval_s,
            "n_timed_steps": step_ms["n"],
            "step_ms_median": step_ms["median"],
            "step_ms_q1": step_ms["q1"],
            "step_ms_q3": step_ms["q3"],
            "step_ms_iqr": step_ms["iqr"],
            "train_chars_per_s": chars_per_s,
            "train_chars_per_s_iqr": chars_per_s_iqr,
            "eval_chars_per_s": loop.eval_chars / loop.eval_s if loop.eval_s else math.nan,
            "flops_per_char": flops,
            "achieved_gflops": flops * chars_per_s / 1e9,
            "peak_rss_mb": self.peak_rss / 2**20,
            "peak_cuda_mb": _mb(kind_of(device).peak_memory_bytes(device)),  # None where not tracked
            "checkpoint_s": loop.checkpoint_s if with_checkpoints else None,
            "checkpoint_mb_written": loop.checkpoint_bytes / 2**20 if with_checkpoints else None,
            "resumed_at_steps": loop.resumed_at_steps,
            # Which step ran: replayed from a CUDA graph, or eager (and why, when capture failed).
            "cuda_graphs": isinstance(self.step_fn, GraphedStep) and self.step_fn.replaying,
            "cuda_graphs_failure": getattr(self.step_fn, "failure", None),
            # The device counter's joules over the whole run (training, evaluation and checkpoints),
            # per training character; None with the reason where the device has no readable counter.
            **self.energy.metrics(loop.step * self.chars_per_step),
        }
        for split in ("train", "val", "test"):
            metrics[f"{split}_bpc"] = bits(metrics[f"{split}_loss_nats"])
        return metrics
