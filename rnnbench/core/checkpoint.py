"""Checkpoints: a plain dict saved atomically, loaded with a clear error when it is not one.

    >>> import tempfile, torch
    >>> from rnnbench.core.checkpoint import RunFiles
    >>> files = RunFiles(f"{tempfile.mkdtemp()}/ab12cd34ef56")      # RESULTS_DIR/checkpoints/RUN_ID
    >>> n_bytes = files.save_latest({"kind": "latest", "run_id": "ab12cd34ef56", "config": {}, "vocab": [97, 98],
    ...                              "hidden_size": 2, "model": {"w": torch.ones(2)}})
    >>> files.load_latest()["model"]["w"].tolist()
    [1.0, 1.0]

A run keeps two under `<results-dir>/checkpoints/<run_id>/`, named, written and read by RunFiles only:
    best.pt    the best-validation weights: {"format", "kind": "best", "run_id", "config", "vocab",
               "hidden_size", "model", "step", "val_loss_nats"}; what `rnnbench sample` reads
    latest.pt  everything needed to continue exactly: the best.pt keys (with "kind": "latest" and
               "model" the current weights) plus "optimizer", "state" (the carried hidden state),
               "best_weights", "loss_sum" (training loss summed since it was last read), "loop"
               (rnnbench.core.train.LoopState as a dict: step, epoch, position in the epoch, best
               validation so far, loss curve, timing samples) and "rng" (torch, Python and, on
               CUDA, the GPU's RNG states); removed when the run finishes
Tensors are stored on the CPU, so a model trained on a GPU loads anywhere.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from rnnbench.errors import UsageError
from rnnbench.events import Notice, OnEvent, ignore
from rnnbench.files import write_atomic

FORMAT = "rnnbench-checkpoint-1"
REQUIRED_KEYS = ("format", "kind", "run_id", "config", "vocab", "hidden_size", "model")


def to_device(value, device: str | torch.device = "cpu"):
    """The same nested structure (dicts, lists, tuples) with every tensor moved to `device`."""
    if isinstance(value, torch.Tensor):
        return value.detach().to(device)
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    return value


def save(path: str | Path, checkpoint: dict) -> int:
    """Write atomically (a kill mid-write leaves the previous file whole); returns the bytes written."""
    buffer = io.BytesIO()
    torch.save(to_device({"format": FORMAT, **checkpoint}), buffer)
    data = buffer.getvalue()
    write_atomic(path, data)
    return len(data)


def load(path: str | Path) -> dict:
    """A checkpoint dict, or UsageError naming the file and what is wrong with it."""
    path = Path(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise UsageError(f"no checkpoint at {path}") from exc
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as exc:
        raise UsageError(
            f"{path} is not a readable checkpoint ({exc.__class__.__name__}): it may be cut short or corrupt"
        ) from exc
    if (
        not isinstance(checkpoint, dict)
        or checkpoint.get("format") != FORMAT
        or any(k not in checkpoint for k in REQUIRED_KEYS)
    ):
        raise UsageError(f"{path} is not an rnnbench checkpoint (expected format {FORMAT})")
    return checkpoint


@dataclass(frozen=True)
class SavedProgress:
    """What a stopped run's latest.pt says of its training so far: the step it saved at, the
    seconds of each timed step (after each session's warm-up), and its evaluations' characters and
    seconds. A plan estimates the rest of the run from these (sweep.estimate)."""

    step: int
    step_samples_s: list[float]
    eval_chars: int
    eval_s: float


class RunFiles:
    """One run's checkpoints, RESULTS_DIR/checkpoints/RUN_ID: best.pt, the best-validation weights
    (what `rnnbench sample` reads), and latest.pt, everything needed to continue the run exactly,
    kept while it is unfinished (the module's docstring describes both)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    @property
    def best(self) -> Path:
        return self.folder / "best.pt"

    @property
    def latest(self) -> Path:
        return self.folder / "latest.pt"

    def save_best(self, payload: dict) -> int:
        """Write the best weights atomically; the bytes written."""
        return save(self.best, payload)

    def save_best_bytes(self, data: bytes) -> None:
        """A best.pt made elsewhere (a Ray task's, another folder's), written here atomically."""
        write_atomic(self.best, data)

    def best_bytes(self) -> bytes | None:
        return self.best.read_bytes() if self.best.exists() else None

    def best_is_readable(self) -> bool:
        """False for a best.pt cut short or corrupt (not a whole zip, as torch.save writes)."""
        return not self.best.exists() or zipfile.is_zipfile(self.best)

    def save_latest(self, payload: dict) -> int:
        return save(self.latest, payload)

    def load_latest(self) -> dict | None:
        """The saved state to continue from, None when there is none (UsageError if unreadable)."""
        return load(self.latest) if self.latest.exists() else None

    def saved_progress(self) -> SavedProgress | None:
        """How far an unfinished run got and how fast (None: no saved state, or unreadable), read
        without loading its tensors."""
        if not self.latest.exists():
            return None
        try:
            saved = torch.load(self.latest, map_location="cpu", weights_only=True, mmap=True)
        except Exception:  # noqa: BLE001 - an unreadable file is recover_latest's to report, not a planner's
            return None
        step, loop = saved.get("step"), saved.get("loop") or {}
        if not isinstance(step, int):
            return None
        return SavedProgress(
            step, list(loop.get("step_samples_s") or []), loop.get("eval_chars") or 0, loop.get("eval_s") or 0.0
        )

    def drop_latest(self) -> None:
        """The run finished (or starts over): only best.pt is kept."""
        self.latest.unlink(missing_ok=True)

    def drop_best(self) -> None:
        self.best.unlink(missing_ok=True)

    def recover_latest(self, on_event: OnEvent = ignore) -> None:
        """A latest.pt that cannot be read (a disk error, a hand edit: writes themselves are atomic)
        would fail its run at every try: it is moved aside to latest.pt.corrupt and the run starts over."""
        if not self.latest.exists():
            return
        try:
            load(self.latest)
        except UsageError as exc:
            aside = self.latest.with_name("latest.pt.corrupt")
            os.replace(self.latest, aside)
            on_event(Notice(f"{exc}; moved to {aside} and the run starts over"))
