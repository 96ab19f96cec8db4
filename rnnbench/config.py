"""Every setting of a run or a sweep, declared once; RunConfig (one run), Grid (a sweep), presets.

    >>> from rnnbench.config import Grid
    >>> grid = Grid.from_settings(dataset="synthetic", cells=("lstm", "gru"), layers=(1, 2), sizes=(64,),
    ...                           max_chars=10_000)
    >>> runs = grid.expand(dataset_sha256="0" * 64)
    >>> len(runs), runs[0].cell, runs[0].num_layers, runs[0].train.max_chars, len(runs[0].run_id)
    (4, 'lstm', 1, 10000, 12)

A setting is a dataclass field declared with `setting(default, help, unit)`: its name is the
preset key and the command-line option (`--time-budget-s`), its type and default are the field's,
and its help and unit feed `--help` and the report. TrainConfig holds how every run of a sweep
trains; Grid holds the axes a sweep expands (cells, depths, sizes, devices, seeds) and one
TrainConfig. `Grid.from_settings` and `Grid.replace` take both kinds by name, flat, as presets and
options give them. The defaults are the paper's protocol (Karpathy, Johnson & Fei-Fei 2015):
batch 100, unroll 100, RMSProp lr 2e-3 with alpha 0.95, lr x0.95 per epoch after epoch 10,
gradient norm clipped at 5, up to 50 epochs.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import sys
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path

from rnnbench.choices import (
    CLIP_MODES,
    FORGET_BIASES,
    GRU_RESETS,
    LAYOUTS,
    SIZE_MODES,
    TRAIN_FRACTION,
    VAL_FRACTION,
    check_choice,
)
from rnnbench.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class Range:
    """The values a numeric setting may take: a lower and an upper bound (None: none), each
    inclusive or not. Declared with the setting, checked wherever a value comes from (an option,
    a preset, the Python API), so that a value out of range is one line before any work."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False  # True: the bound itself is out
    high_open: bool = False

    def __contains__(self, value) -> bool:
        if not math.isfinite(value):  # NaN compares false with every bound; infinity is no setting's value
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or not (value > self.high or (self.high_open and value == self.high))

    @property
    def text(self) -> str:
        """What the range allows, in words (a finite number always)."""
        if self.high is None:
            return f"{'above' if self.low_open else 'at least'} {self.low:g}"
        if self.low is None:
            return f"{'below' if self.high_open else 'at most'} {self.high:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"

    def outside(self, integer: bool) -> list:
        """Values just outside the range, for tests."""
        step = 1 if integer else 0.5
        out = []
        if self.low is not None:
            out.append(self.low if self.low_open else self.low - step)
        if self.high is not None:
            out.append(self.high if self.high_open else self.high + step)
        return [int(v) if integer else float(v) for v in out]


def at_least(low: float) -> Range:
    return Range(low)


def above(low: float) -> Range:
    return Range(low, low_open=True)


FRACTION = Range(0.0, 1.0, low_open=True, high_open=True)  # strictly between 0 and 1
PROBABILITY = Range(0.0, 1.0, high_open=True)  # 0 up to, not including, 1


def setting(
    default,
    help: str,
    unit: str = "",
    aliases: tuple[str, ...] = (),
    protocol: bool = False,
    experiment: bool = True,
    shown_default: str | None = None,
    choices: tuple[str, ...] = (),
    valid: Range | None = None,
):
    """A dataclass field that is also a user-facing setting.

    unit: what one value counts (shown as the option's metavar); aliases: older option names that
    still work; protocol: the default is the paper's value, and a run that differs in it does not
    follow the paper's protocol; experiment: runs that differ in it belong to different experiments
    of the report (False for settings that change how a run is measured, not what it learns);
    shown_default: what `--help` says of a default of None; choices: the values a text setting takes;
    valid: the Range of a numeric setting (every one declares it; a list checks each item).

    A stored row that lacks a setting (written before it existed) trained with its default: a new
    setting's default is what the code did before it, and a default is never changed afterwards
    (a preset sets another value instead)."""
    metadata = {
        "help": help,
        "unit": unit,
        "aliases": aliases,
        "protocol": protocol,
        "experiment": experiment,
        "shown_default": shown_default,
        "choices": choices,
        "valid": valid,
    }
    return field(default=default, metadata=metadata)


def same_as(owner: type, name: str, default=dataclasses.MISSING, help: str | None = None):
    """Another owner's setting with its own default (and help): compare-devices times other models
    than a sweep trains, described the same way."""
    original = {f.name: f for f in fields(owner)}[name]
    metadata = dict(original.metadata) | ({"help": help} if help else {})
    return field(default=original.default if default is dataclasses.MISSING else default, metadata=metadata)


@dataclass(frozen=True)
class Setting:
    """One setting as the command line and presets see it, read off its dataclass field."""

    name: str
    type: type  # of one value: int, float or str
    is_list: bool
    optional: bool  # None is a value (no limit of this kind)
    default: object
    help: str
    unit: str
    aliases: tuple[str, ...]
    protocol: bool
    experiment: bool
    shown_default: str | None = None
    choices: tuple[str, ...] = ()
    valid: Range | None = None

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    def default_text(self) -> str | None:
        """The default as a user would type it, or None when there is none."""
        if self.default is None:
            return self.shown_default
        values = self.default if self.is_list else (self.default,)
        return ",".join(str(v) for v in values)

    def check_type(self, value, where: str) -> None:
        """TOML gives typed values; a wrong type is a one-line error here, not a traceback later."""
        wanted = (int, float) if self.type is float else (self.type,)
        items = value if self.is_list else (value,)
        if self.optional and value is None:
            return
        if any(isinstance(v, bool) != (self.type is bool) or not isinstance(v, wanted) for v in items):
            kind = " or ".join(t.__name__ for t in wanted)
            raise UsageError(
                f"{where}: {self.name} must be {'a list of ' if self.is_list else ''}{kind}, got {value!r}"
            )


def settings_of(cls: type) -> list[Setting]:
    return list(_settings_of(cls))


@functools.cache
def _settings_of(cls: type) -> tuple[Setting, ...]:
    """The settings of a dataclass in declaration order, those of nested dataclass fields inlined.
    A field not declared with setting() is not a setting (TrainConfig.dropout: a run's one value of
    the grid's dropout setting). Names are unique: one name, one setting."""
    hints = typing.get_type_hints(cls)
    out: list[Setting] = []
    for f in fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            out += settings_of(hint)
            continue
        if "help" not in f.metadata:
            continue
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = type(None) in typing.get_args(hint)
        is_list = typing.get_origin(hint) is tuple or (args and typing.get_origin(args[0]) is tuple)
        if is_list:
            one = typing.get_args(args[0] if optional else hint)[0]
        else:
            one = args[0] if optional else hint
        out.append(
            Setting(
                f.name,
                one,
                bool(is_list),
                optional,
                f.default,
                f.metadata["help"],
                f.metadata["unit"],
                f.metadata["aliases"],
                f.metadata["protocol"],
                f.metadata["experiment"],
                f.metadata["shown_default"],
                f.metadata.get("choices", ()),
                f.metadata.get("valid"),
            )
        )
    return tuple(out)


def check_settings(obj) -> None:
    """Every setting of a settings dataclass (its own fields, not nested ones) against its declared
    choices and Range: one line naming the setting, its option and what it takes."""
    for s in settings_of(type(obj)):
        if s.name not in {f.name for f in fields(obj)}:
            continue  # a nested dataclass's setting: checked by its own __post_init__
        value = getattr(obj, s.name)
        items = () if value is None else value if s.is_list else (value,)
        for item in items:
            if item is None:
                continue
            if s.choices:
                check_choice(s.name, item, s.choices)
            if s.valid is not None and item not in s.valid:
                raise UsageError(f"{s.name} ({s.option}) must be {s.valid.text}, got {item:g}")


def check_fractions(train: float, val: float) -> None:
    """Train and validation shares that leave a test split (data.Layout's)."""
    if not (0 < train < 1 and 0 < val < 1 and train + val < 1):
        raise UsageError(
            "train_fraction and val_fraction must be above 0 and add up to less than 1 (test is the "
            f"rest), got {train:g} and {val:g}"
        )


BUDGETS = ("epochs", "max_steps", "max_chars", "time_budget_s")  # training stops at the first reached


@dataclass(frozen=True)
class TrainConfig:
    """How every run of a sweep trains: optimisation, budgets and evaluation."""

    batch_size: int = setting(100, "Parallel streams per step.", "streams", protocol=True, valid=at_least(1))
    seq_len: int = setting(
        100, "Characters per stream per step (BPTT length).", "chars", protocol=True, valid=at_least(1)
    )
    # The layout: contiguous by default, so that a run's test text is the same whatever its batch
    # and sequence length; the paper presets take char-rnn's chunked layout (rnnbench.core.data.Layout).
    split: str = setting(
        "contiguous",
        "How the text is cut into train, validation and test: 'contiguous' (the "
        "first train_fraction of the bytes, then val_fraction, then the rest) or "
        "'chunked' (char-rnn's loader: batch_size rows cut into chunks of seq_len, "
        "each row's first chunks train, the next validation, the rest test).",
        choices=LAYOUTS,
    )
    train_fraction: float = setting(
        TRAIN_FRACTION,
        "Share of the text (contiguous) or of every row's chunks (chunked) for training.",
        valid=FRACTION,
    )
    val_fraction: float = setting(VAL_FRACTION, "Share for validation; test is the rest.", valid=FRACTION)
    lr: float = setting(2e-3, "RMSProp learning rate.", protocol=True, valid=above(0))
    rmsprop_alpha: float = setting(0.95, "RMSProp smoothing constant of the mean squared gradient.", valid=PROBABILITY)
    lr_decay: float = setting(
        0.95,
        "Learning-rate factor per epoch once lr_decay_after_epochs have passed.",
        valid=Range(0.0, 1.0, low_open=True),
    )
    lr_decay_after_epochs: int = setting(
        10, "Epochs at the full learning rate before it decays.", "epochs", valid=at_least(0)
    )
    grad_clip: float = setting(5.0, "The gradient clipping's threshold (see --grad-clip-mode).", valid=above(0))
    grad_clip_mode: str = setting(
        "norm",
        "How grad_clip acts: 'norm' (the norm of the mean-loss gradient scaled down to grad_clip) or "
        "'clamp' (char-rnn's: the gradient of the loss summed over the seq_len steps, each element "
        "clamped to [-grad_clip, grad_clip]).",
        choices=CLIP_MODES,
    )
    # Not a setting: a run's one value of the grid's `dropout` setting (Grid.expand sets it), so that
    # the grid's list of values and a run's value cannot be confused.
    dropout: float = 0.0
    # char-rnn set the LSTM's forget-gate bias to 1 from 2015-09-20, after the paper; before, it
    # was drawn uniform like every other parameter.
    lstm_forget_bias: str = setting(
        "1",
        "The LSTM's forget-gate bias at the start: '1', or 'uniform' (drawn in "
        "[-0.08, 0.08] like every parameter, as char-rnn did when the paper was "
        "written).",
        choices=FORGET_BIASES,
    )
    gru_reset: str = setting(
        "after",
        "Where the GRU's reset gate acts: 'after' the recurrent product (torch's "
        "fused GRU, as cuDNN) or 'before' it, on the previous state (char-rnn's GRU; "
        "plain torch ops, slower).",
        choices=GRU_RESETS,
    )
    # Budgets: training stops at whichever comes first; None means no limit of that kind.
    epochs: int | None = setting(50, "Budget: passes over the train split.", "epochs", protocol=True, valid=at_least(1))
    max_steps: int | None = setting(
        None,
        "Budget: training steps per run.",
        "steps",
        protocol=True,
        valid=at_least(1),
        shown_default="none: no limit",
    )
    max_chars: int | None = setting(
        None,
        "Budget: training characters per run (steps x batch x sequence length).",
        "chars",
        protocol=True,
        valid=at_least(1),
        shown_default="none: no limit",
    )
    time_budget_s: float | None = setting(
        None,
        "Budget: seconds per run, evaluation included.",
        "seconds",
        aliases=("--time-budget",),
        protocol=True,
        valid=above(0),
        shown_default="none: no limit",
    )
    eval_every_steps: int = setting(
        1000,
        "Evaluate on the validation split every N steps (and at each epoch end).",
        "steps",
        aliases=("--eval-every",),
        valid=at_least(1),
    )
    patience_evals: int = setting(
        5,
        "Early stopping: evaluations without a better validation loss.",
        "evals",
        aliases=("--patience",),
        valid=at_least(1),
    )
    warmup_steps: int = setting(
        5, "Steps left out of the throughput figures.", "steps", experiment=False, valid=at_least(0)
    )

    def __post_init__(self):
        check_settings(self)
        if self.dropout not in PROBABILITY:
            raise UsageError(f"dropout (--dropout) must be {PROBABILITY.text}, got {self.dropout:g}")
        check_fractions(self.train_fraction, self.val_fraction)
        if all(getattr(self, b) is None for b in BUDGETS):
            raise UsageError("no training budget: give at least one of epochs, max_steps, max_chars, time_budget_s")


def complete_train(train: dict) -> dict:
    """A stored run's training settings with those it lacks (it was written before they existed)
    at their defaults, which is how it trained: so that old and new rows compare and match."""
    return {s.name: s.default for s in TRAIN_SETTINGS.values()} | train


@dataclass(frozen=True)
class Execution:
    """How a sweep's runs are carried out: settings that change how fast a run goes, not what it
    learns. They are not part of a run's identity (its id); each record says what ran."""

    jobs: int = setting(
        1,
        "Runs trained at once, each in a worker process of its own; on a CPU the torch threads "
        "are split between them (see --threads), on a GPU they share the device.",
        "runs",
        valid=at_least(1),
    )
    threads: int | None = setting(
        None,
        "Torch threads of each run on a CPU (part of a CPU run's hardware identity). "
        "Default: torch's count (every core) for one job; with --jobs N, the cores "
        "split between the N jobs.",
        "threads",
        valid=at_least(1),
        shown_default="every core, split between the jobs",
    )
    cuda_graphs: bool = setting(
        True,
        "On CUDA, capture each run's training step in a CUDA graph after warm-up "
        "and replay it (a run whose capture fails trains eagerly, and says so).",
    )
    mps: bool = setting(
        True,
        "With --jobs above 1 on CUDA, start the CUDA MPS daemon for the sweep when none "
        "runs and nvidia-cuda-mps-control is on the PATH (the jobs' kernels then run side "
        "by side instead of taking turns), and stop it at the end; the sweep says so.",
    )
    tensorboard: str | None = setting(
        None,
        "Also write each run's curves (training and validation loss in nats and "
        "bits, learning rate, training chars/s) and, at its end, its config as "
        "hyperparameters, as TensorBoard event files under this folder "
        "(pip install 'rnnbench[tensorboard]'; then tensorboard --logdir FOLDER).",
        "folder",
    )
    stop_after_s: float | None = setting(
        None,
        "End the sweep gracefully after this many seconds: the runs in flight "
        "save their state and stop, finished runs are stored, and the exit code "
        "(75) says 'stopped, resumable'. SIGTERM does the same at once.",
        "seconds",
        aliases=("--stop-after",),
        valid=above(0),
        shown_default="none: no deadline",
    )

    def __post_init__(self):
        check_settings(self)


@dataclass(frozen=True)
class Hardware:
    """What ran a measurement, as far as its speed depends on it: part of every stored row's
    identity, so that the same grid run on two machines is two sets of rows, and a sweep skips only
    what ran on the same hardware.

    The torch version belongs to it: torch brings the kernels (cuDNN, oneDNN, its own CUDA build),
    and an upgrade changes their speed and, in the last digits, the losses; a sweep after an
    upgrade measures anew, and `rnnbench results compare` sets the two versions side by side.
    The host name does not: two machines of one model are the same hardware."""

    device_kind: str  # cpu, cuda or mps
    model: str  # the GPU's name, or the CPU's model
    threads: int | None  # on a CPU, the torch threads the work ran with; None on a GPU
    torch: str  # torch's version with its build tag, e.g. 2.11.0+cu130

    @property
    def label(self) -> str:
        threads = f", {self.threads} thread{'s' if self.threads != 1 else ''}" if self.threads is not None else ""
        return f"{self.model}{threads}, torch {self.torch}"

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_env(cls, env: dict, device: str | None = None) -> Hardware:
        """The hardware of a row written before rows carried it (schema 1), from its env columns."""
        kind = env.get("device_kind") or (device or "cpu").split(":")[0]
        model = env.get("gpu_name") if kind == "cuda" else env.get("cpu_model")
        threads = env.get("torch_num_threads") if kind == "cpu" else None
        return cls(
            kind,
            str(model or "unknown"),
            int(threads) if threads is not None else None,
            str(env.get("torch_version") or "unknown"),
        )


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one run, and the hardware it runs on; its stable hash is the
    run id. (`hardware` is None only for a run made outside a sweep, e.g. in a test.)"""

    dataset: str
    dataset_sha256: str
    cell: str
    num_layers: int
    size: int
    size_mode: str
    device: str
    seed: int
    train: TrainConfig
    hardware: Hardware | None = None

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @functools.cached_property
    def run_id(self) -> str:
        # Hashed once per run: a sweep asks for it many times, and a grid may hold 36,000 runs.
        return content_id(self.as_dict())

    @property
    def label(self) -> str:
        return f"{self.cell} {self.num_layers}x{self.size} ({self.size_mode}) on {self.device}, seed {self.seed}"

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        hardware = Hardware(**d["hardware"]) if d.get("hardware") else None
        return cls(**{**d, "train": TrainConfig(**d["train"]), "hardware": hardware})


def content_id(value: dict) -> str:
    """12 hex digits of the sha256 of `value` as canonical JSON: the id of a run or a measurement."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Grid:
    """A sweep: lists of cells, depths, sizes, devices and seeds, and one TrainConfig for all."""

    dataset: str = setting("warpeace", "Corpus: warpeace, linux, synthetic, or a path to a text file.")
    cells: tuple[str, ...] = setting(("lstm", "rnn", "gru"), "Cell types from rnn, lstm, gru.")
    layers: tuple[int, ...] = setting((1, 2, 3), "Layer counts.", "layers", valid=at_least(1))
    sizes: tuple[int, ...] = setting((64, 128, 256, 512), "Sizes (see --size-mode).", valid=at_least(1))
    size_mode: str = setting(
        "params",
        "'params': a size is the parameter budget of a 1-layer LSTM that wide, "
        "as in the paper; 'hidden': a size is the hidden width.",
        choices=SIZE_MODES,
    )
    devices: tuple[str, ...] = setting(
        ("auto",), "Devices (cpu, cuda, cuda:N, mps) or 'auto' for every device present."
    )
    seeds: tuple[int, ...] = setting((0,), "Random seeds; each grid cell runs once per seed.", valid=at_least(0))
    dropout: tuple[float, ...] = setting(
        (0.0,),
        "Dropout values, between layers and before the output layer; each "
        "value is a run of its own, and the report takes, per model, the "
        "one with the lowest validation loss (as the paper chose).",
        valid=PROBABILITY,
    )
    train: TrainConfig = field(default_factory=TrainConfig)
    execution: Execution = field(default_factory=Execution)

    def __post_init__(self):
        from rnnbench.core.models import check_cell  # imports torch: not for `rnnbench --help`

        for cell in self.cells:
            check_cell(cell)
        for name in ("cells", "layers", "sizes", "devices", "seeds", "dropout"):
            if not getattr(self, name):
                raise UsageError(f"{name} must name at least one value")
        check_settings(self)

    @classmethod
    def from_settings(cls, **values) -> Grid:
        """A Grid from settings named flat, as presets and options name them; the rest default."""
        unknown = sorted(set(values) - set(GRID_SETTINGS))
        if unknown:
            raise TypeError(f"Grid has no setting(s) {', '.join(unknown)}")
        for name, value in values.items():  # a list setting given one value is a list of one
            if GRID_SETTINGS[name].is_list and value is not None:
                values[name] = tuple(value) if isinstance(value, (list, tuple)) else (value,)
        axes = {k: values.pop(k) for k in list(values) if k in GRID_AXES}
        train = {k: values.pop(k) for k in list(values) if k in TRAIN_SETTINGS}
        execution = {k: values.pop(k) for k in list(values) if k in EXECUTION_SETTINGS}
        return cls(**axes, **values, train=TrainConfig(**train), execution=Execution(**execution))

    def replace(self, **changes) -> Grid:
        """A copy with the named settings changed (flat names); those given as None keep their value."""
        kept = {name: getattr(self.train, name) for name in TRAIN_SETTINGS}
        kept |= {name: getattr(self.execution, name) for name in EXECUTION_SETTINGS}
        kept |= {name: getattr(self, name) for name in GRID_AXES}
        return Grid.from_settings(**(kept | {k: v for k, v in changes.items() if v is not None}))

    def expand(
        self,
        dataset_sha256: str,
        devices: tuple[str, ...] | None = None,
        dataset_name: str | None = None,
        hardware: dict[str, Hardware] | None = None,
    ) -> list[RunConfig]:
        """Every run of the grid, in a fixed order (smallest models first, so results come early).

        A corpus given by path is named by `dataset_name` (its file's stem): the run id follows the
        corpus's bytes through `dataset_sha256`, not where the file happens to be. `hardware` maps
        each device to the Hardware that will run it (the sweep asks its executor).
        """
        trains = [dataclasses.replace(self.train, dropout=value) for value in self.dropout]
        hardware = hardware or {}
        return [
            RunConfig(
                dataset_name or self.dataset,
                dataset_sha256,
                cell,
                num_layers,
                size,
                self.size_mode,
                device,
                seed,
                train,
                hardware.get(device),
            )
            for size in self.sizes
            for num_layers in self.layers
            for cell in self.cells
            for train in trains
            for device in (devices or self.devices)
            for seed in self.seeds
        ]


DTYPES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class CompareSpec:
    """What compare-devices measures: the models, the devices and how (see rnnbench.measure.device_speed)."""

    dataset: str | None = setting(
        None,
        "Corpus whose vocabulary and text feed the models: warpeace, linux, "
        "synthetic or a path. compare-devices never downloads: by default it takes "
        "warpeace where it is at hand, else the generated synthetic corpus, and says which.",
        shown_default="warpeace if at hand, else synthetic",
    )
    devices: tuple[str, ...] = same_as(Grid, "devices")
    cells: tuple[str, ...] = same_as(Grid, "cells", ("lstm", "gru", "rnn"))
    layers: tuple[int, ...] = same_as(Grid, "layers", (1, 2))
    sizes: tuple[int, ...] = same_as(Grid, "sizes", (128, 512))
    size_mode: str = same_as(Grid, "size_mode")
    batch_size: int = same_as(
        TrainConfig, "batch_size", help="Sequences per batch for the training and inference workloads."
    )
    seq_len: int = same_as(TrainConfig, "seq_len")
    dtype: str = setting(
        "float32", "float32, bfloat16 or float16 (reduced precision runs under torch.autocast).", choices=DTYPES
    )
    threads: tuple[int, ...] | None = setting(
        None, "CPU thread counts to measure at.", "threads", shown_default="torch's count", valid=at_least(1)
    )
    min_time_s: float = setting(
        1.0,
        "Seconds of timed blocks per figure (warm-up excluded).",
        "seconds",
        aliases=("--min-time",),
        valid=above(0),
    )
    warmup: int = setting(3, "Calls before the timed blocks, not kept.", "calls", valid=at_least(0))

    def __post_init__(self):
        from rnnbench.core.models import check_cell

        for cell in self.cells:
            check_cell(cell)
        for name in ("cells", "layers", "sizes", "devices"):
            if not getattr(self, name):
                raise UsageError(f"{name} must name at least one value")
        check_settings(self)


KERNEL_SUITES = ("deepbench", "paper")  # rnnbench.measure.kernels


@dataclass(frozen=True)
class KernelSpec:
    """What `rnnbench kernels` times: one recurrent layer per shape of a suite, forward and
    forward+backward (see rnnbench.measure.kernels). The shape filters select from the suite."""

    suite: str = setting(
        "deepbench",
        "'deepbench': DeepBench's 53 training shapes (one layer; its input product kept out, as DeepBench "
        "kept it); 'paper': the recurrent layers of the paper's 36 models at batch 100 x 100 steps.",
        choices=KERNEL_SUITES,
    )
    cells: tuple[str, ...] | None = setting(
        None, "Cell types of the suite to keep (deepbench: rnn_relu, lstm, gru).", shown_default="all"
    )
    hidden: tuple[int, ...] | None = setting(None, "Hidden sizes to keep.", shown_default="all", valid=at_least(1))
    batch: tuple[int, ...] | None = setting(None, "Batch sizes to keep.", shown_default="all", valid=at_least(1))
    timesteps: tuple[int, ...] | None = setting(
        None, "Sequence lengths (time steps) to keep.", "steps", shown_default="all", valid=at_least(1)
    )
    devices: tuple[str, ...] = same_as(Grid, "devices")
    dtype: tuple[str, ...] = setting(
        ("float32",), "Dtypes the layer runs in (its weights and inputs; no autocast).", choices=DTYPES
    )
    threads: int | None = setting(
        None, "CPU threads (torch's) to time with.", "threads", shown_default="torch's count", valid=at_least(1)
    )
    min_time_s: float = same_as(
        CompareSpec,
        "min_time_s",
        help="Seconds of timed calls per figure at the least (after the warm-up; at least three calls).",
    )
    warmup: int = same_as(CompareSpec, "warmup", 1, help="Calls before the timed ones, not kept.")

    def __post_init__(self):
        for name in ("devices", "dtype"):
            if not getattr(self, name):
                raise UsageError(f"{name} must name at least one value")
        check_settings(self)


TRAIN_SETTINGS = {s.name: s for s in settings_of(TrainConfig)}
GRID_AXES = tuple(f.name for f in fields(Grid) if f.name not in ("train", "execution"))
EXECUTION_SETTINGS = {s.name: s for s in settings_of(Execution)}
GRID_SETTINGS = {s.name: s for s in settings_of(Grid)}  # the grid's axes, TrainConfig's, Execution's
assert len(GRID_SETTINGS) == len(settings_of(Grid)), "two settings of a sweep share a name"
COMPARE_SETTINGS = {s.name: s for s in settings_of(CompareSpec)}
KERNEL_SETTINGS = {s.name: s for s in settings_of(KernelSpec)}


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
    unknown = sorted(set(values) - set(GRID_SETTINGS))
    if unknown:
        raise UsageError(
            f"preset {path.name}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(GRID_SETTINGS)}"
        )
    for key, value in values.items():
        declared = GRID_SETTINGS[key]
        if declared.is_list:
            value = values[key] = tuple(value) if isinstance(value, list) else (value,)
        declared.check_type(value, f"preset {path.name}")
    return Grid.from_settings(**values)
