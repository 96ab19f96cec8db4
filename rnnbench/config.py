"""RunConfig (one run), Grid (a sweep) and its expansion, presets, and the content-addressed run id.

    >>> from rnnbench.config import Grid
    >>> grid = Grid(dataset="synthetic", cells=("lstm", "gru"), layers=(1, 2), sizes=(64,), max_chars=10_000)
    >>> runs = grid.expand(dataset_sha256="0" * 64)
    >>> len(runs), runs[0].cell, runs[0].num_layers, len(runs[0].run_id)
    (4, 'lstm', 1, 12)

The defaults are the paper's protocol (../shared/reference/PAPER.md): batch 100, unroll 100,
RMSProp lr 2e-3 with alpha 0.95, lr x0.95 per epoch after epoch 10, gradient norm clipped at 5.
A preset is a TOML file of Grid fields under benchmarks/presets/; an unknown key is an error.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from dataclasses import dataclass, fields
from pathlib import Path

from rnnbench.errors import UsageError
from rnnbench.models import check_cell, check_size_mode

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class TrainConfig:
    """How every run of a sweep trains: optimisation, budgets and evaluation."""

    batch_size: int = 100
    seq_len: int = 100
    lr: float = 2e-3
    rmsprop_alpha: float = 0.95
    lr_decay: float = 0.95
    lr_decay_after_epochs: int = 10
    grad_clip: float = 5.0
    dropout: float = 0.0
    # Budgets: training stops at whichever comes first; None means no limit of that kind.
    epochs: int | None = 50
    max_steps: int | None = None
    max_chars: int | None = None
    time_budget_s: float | None = None
    eval_every_steps: int = 1000  # also evaluated at every epoch end and when training stops
    patience_evals: int = 5  # early stopping: evaluations without a better validation loss
    warmup_steps: int = 5  # steps left out of the throughput figures


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one run; its stable hash is the run id."""

    dataset: str
    dataset_sha256: str
    cell: str
    num_layers: int
    size: int
    size_mode: str
    device: str
    seed: int
    train: TrainConfig

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def run_id(self) -> str:
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        return f"{self.cell} {self.num_layers}x{self.size} ({self.size_mode}) on {self.device}, seed {self.seed}"

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        return cls(**{**d, "train": TrainConfig(**d["train"])})


TRAIN_FIELDS = tuple(f.name for f in fields(TrainConfig))


@dataclass(frozen=True)
class Grid:
    """A sweep: lists of cells, depths, sizes, devices and seeds, and one TrainConfig for all."""

    dataset: str = "warpeace"
    cells: tuple[str, ...] = ("lstm", "rnn", "gru")
    layers: tuple[int, ...] = (1, 2, 3)
    sizes: tuple[int, ...] = (64, 128, 256, 512)
    size_mode: str = "params"
    devices: tuple[str, ...] = ("auto",)
    seeds: tuple[int, ...] = (0,)
    # TrainConfig's fields, repeated flat so that presets and options name them directly.
    batch_size: int = TrainConfig.batch_size
    seq_len: int = TrainConfig.seq_len
    lr: float = TrainConfig.lr
    rmsprop_alpha: float = TrainConfig.rmsprop_alpha
    lr_decay: float = TrainConfig.lr_decay
    lr_decay_after_epochs: int = TrainConfig.lr_decay_after_epochs
    grad_clip: float = TrainConfig.grad_clip
    dropout: float = TrainConfig.dropout
    epochs: int | None = TrainConfig.epochs
    max_steps: int | None = TrainConfig.max_steps
    max_chars: int | None = TrainConfig.max_chars
    time_budget_s: float | None = TrainConfig.time_budget_s
    eval_every_steps: int = TrainConfig.eval_every_steps
    patience_evals: int = TrainConfig.patience_evals
    warmup_steps: int = TrainConfig.warmup_steps

    def __post_init__(self):
        for cell in self.cells:
            check_cell(cell)
        check_size_mode(self.size_mode)
        for name in ("layers", "sizes"):
            values = getattr(self, name)
            if not values or any(not isinstance(v, int) or v < 1 for v in values):
                raise UsageError(f"{name} must be positive whole numbers, got {list(values)}")
        for name in ("cells", "devices", "seeds"):
            if not getattr(self, name):
                raise UsageError(f"{name} must name at least one value")
        for name in ("batch_size", "seq_len", "eval_every_steps", "patience_evals"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("epochs", "max_steps", "max_chars", "time_budget_s"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise UsageError(f"{name} must be positive, got {value}")
        if not 0.0 <= self.dropout < 1.0:
            raise UsageError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.lr <= 0:
            raise UsageError(f"learning rate must be positive, got {self.lr}")
        if all(getattr(self, b) is None for b in ("epochs", "max_steps", "max_chars", "time_budget_s")):
            raise UsageError("no training budget: give at least one of epochs, max_steps, max_chars, time_budget_s")

    @property
    def train(self) -> TrainConfig:
        return TrainConfig(**{name: getattr(self, name) for name in TRAIN_FIELDS})

    def expand(self, dataset_sha256: str, devices: tuple[str, ...] | None = None,
               dataset_name: str | None = None) -> list[RunConfig]:
        """Every run of the grid, in a fixed order (smallest models first, so results come early).

        A corpus given by path is named by `dataset_name` (its file's stem): the run id follows the
        corpus's bytes through `dataset_sha256`, not where the file happens to be.
        """
        return [
            RunConfig(dataset_name or self.dataset, dataset_sha256, cell, num_layers, size, self.size_mode, device, seed, self.train)
            for size in self.sizes
            for num_layers in self.layers
            for cell in self.cells
            for device in (devices or self.devices)
            for seed in self.seeds
        ]

    def replace(self, **changes) -> Grid:
        """A copy with the given fields changed; fields left as None here keep their value."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


GRID_FIELDS = {f.name: f for f in fields(Grid)}
_LIST_FIELDS = ("cells", "layers", "sizes", "devices", "seeds")


def preset_dirs() -> list[Path]:
    """Where presets are found: inside an installed wheel, then the source tree's benchmarks/."""
    package = Path(__file__).resolve().parent
    return [package / "presets", package.parent / "benchmarks" / "presets"]


def preset_names() -> list[str]:
    return sorted({p.stem for d in preset_dirs() if d.is_dir() for p in d.glob("*.toml")})


def load_preset(name_or_path: str) -> Grid:
    """A Grid from a preset name (benchmarks/presets/NAME.toml) or a path to a TOML file."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = next((d / f"{name_or_path}.toml" for d in preset_dirs() if (d / f"{name_or_path}.toml").exists()), None)
        if path is None:
            raise UsageError(f"no preset '{name_or_path}': choose from {', '.join(preset_names()) or 'none found'}")
    try:
        values = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read preset {path}: {exc}") from exc
    unknown = sorted(set(values) - set(GRID_FIELDS))
    if unknown:
        raise UsageError(f"preset {path.name}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(GRID_FIELDS)}")
    for key in _LIST_FIELDS:
        if key in values:
            value = values[key]
            values[key] = tuple(value) if isinstance(value, list) else (value,)
    for key, value in values.items():
        _check_type(key, value, f"preset {path.name}")
    return Grid(**values)


def _check_type(key: str, value, where: str) -> None:
    """TOML gives typed values; a wrong type is a one-line error here, not a traceback later."""
    declared = GRID_FIELDS[key].type  # a string such as "int | None" or "tuple[str, ...]"
    wanted = (str,) if "str" in declared else (int,) if "int" in declared and "float" not in declared else (int, float)
    items = value if key in _LIST_FIELDS else (value,)
    if any(isinstance(v, bool) or not isinstance(v, wanted) for v in items):
        kind = " or ".join(t.__name__ for t in wanted)
        raise UsageError(f"{where}: {key} must be {'a list of ' if key in _LIST_FIELDS else ''}{kind}, got {value!r}")
