"""Live curves in TensorBoard: a sweep's events written as TensorBoard event files, one folder per
run, for `tensorboard --logdir DIR` (needs the `tensorboard` extra: pip install 'rnnbench[tensorboard]').

    rnnbench sweep --preset smoke --tensorboard runs/tb      # then: tensorboard --logdir runs/tb

Per run (folder `DIR/<run_id> <cell> <layers>x<size> <device>`): training loss in nats and in bits
per character, training characters/s (evaluation excluded), learning rate, and validation loss in
nats and bits at each evaluation, against the step; when the run ends, its configuration and
hardware as hyperparameters with its final losses as their metrics (the HPARAMS tab). It is fed
by the sweep's events in the driver process, so it works alike for one run at a time, --jobs and
Ray; a run's evaluations are all written by its end even where live reports were thinned out.
"""

from __future__ import annotations

import math
from pathlib import Path

from rnnbench.core.train import bits
from rnnbench.errors import UsageError
from rnnbench.events import Event, RunFinished, RunProgress, RunStarted
from rnnbench.results.metrics import shown


def _writer_class():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UsageError(
            "--tensorboard needs the tensorboard package: pip install 'rnnbench[tensorboard]' "
            "(or pip install tensorboard)"
        ) from None
    return SummaryWriter


class TensorBoardLog:
    """Turns sweep events into TensorBoard scalars and hyperparameters; `handle` is an on_event."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.SummaryWriter = _writer_class()
        self.writers: dict = {}
        self.val_steps: dict[str, set[int]] = {}

    def _writer(self, cfg):
        if cfg.run_id not in self.writers:
            name = f"{cfg.run_id} {cfg.cell} {cfg.num_layers}x{cfg.size} {cfg.device.replace(':', '')}"
            self.writers[cfg.run_id] = self.SummaryWriter(str(self.folder / name))
            self.val_steps[cfg.run_id] = set()
        return self.writers[cfg.run_id]

    def _val(self, cfg, step: int, loss: float) -> None:
        if step in self.val_steps[cfg.run_id] or loss is None or not math.isfinite(loss):
            return
        self.val_steps[cfg.run_id].add(step)
        writer = self._writer(cfg)
        writer.add_scalar("loss/val_nats", loss, step)
        writer.add_scalar("loss/val_bits_per_char", bits(loss), step)

    def handle(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._writer(event.cfg)
        elif isinstance(event, RunProgress):
            p, writer = event.progress, self._writer(event.cfg)
            if math.isfinite(p.train_loss_nats):
                writer.add_scalar("loss/train_nats", p.train_loss_nats, p.step)
                writer.add_scalar("loss/train_bits_per_char", bits(p.train_loss_nats), p.step)
            writer.add_scalar("speed/train_chars_per_s", p.chars_per_s, p.step)
            if p.lr is not None:
                writer.add_scalar("optimizer/lr", p.lr, p.step)
            if p.val_step is not None:
                self._val(event.cfg, p.val_step, p.val_loss_nats)
        elif isinstance(event, RunFinished):
            self._finished(event.cfg, event.record)

    def _finished(self, cfg, record: dict) -> None:
        writer = self._writer(cfg)
        for point in record.curve or []:  # evaluations a thinned-out live report skipped
            self._val(cfg, point["step"], point.get("val_loss_nats"))
        config = record.config
        hparams = {
            k: v
            for k, v in {**config, **config.get("train", {})}.items()
            if isinstance(v, (int, float, str, bool)) and k != "dataset_sha256"
        }
        hparams["hardware"] = cfg.hardware.label if cfg.hardware is not None else "?"
        m = record.metrics
        metrics = {
            f"final/{k}": float(m[k])
            for k in (metric.name for metric in shown("tensorboard"))
            if isinstance(m.get(k), (int, float)) and math.isfinite(m[k])
        }
        writer.add_hparams(hparams, metrics or {"final/status_ok": float(record.status == "ok")}, run_name=".")
        writer.close()
        del self.writers[cfg.run_id]

    def __enter__(self) -> TensorBoardLog:
        return self

    def __exit__(self, *exc) -> None:
        """Runs stopped or interrupted mid-way: what their writers hold is flushed."""
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()
