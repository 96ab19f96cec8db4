"""The results store: one JSON file per run, written atomically, loaded as one tidy DataFrame.

    >>> from rnnbench.results import load
    >>> df = load("results")                                    # the published rows
    >>> sorted(df[df.kind == "sweep"].groupby("cell")["test_loss_nats"].min().index)
    ['gru', 'lstm', 'rnn']

A run's file is `<results-dir>/runs/<run_id>.json`, a Record (made by make_record, read by
read_record into this schema's Record whatever schema it was written in) stored as:
    {"schema_version", "run_id", "kind", "status", "error", "started_at", "finished_at",
     "config": RunConfig as a dict, "env": machine and software, "metrics": {...}, "curve": [...]}
(`kind` is "sweep" for a trained run, "compare" for a compare-devices measurement, which has no
curve, "baseline" for an n-gram baseline; its status is one of ok, diverged, oom, failed, or
unsupported for a compare row.) Schema 2 added `config.hardware` (config.Hardware: what ran it),
part of the run id; a schema-1 row's hardware is read from its env columns, so both load alike
and `identity()` matches a schema-1 row with the schema-2 run it would be today. A curve point is
{"step", "epoch", "train_loss_nats", "val_loss_nats", "train_s", "wall_s"}: the seconds of
training so far (evaluation and checkpoints excluded) and of the whole run so far (schema 2 only).
`load()` flattens config, env and metrics into columns, one row per run, with the hardware in
words as column `hardware`; the loss curves come from `load_curves()`. A file that is not a run of
a known schema is reported by name and skipped; it never stops the other runs from loading.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from rnnbench.config import Hardware, TrainConfig, complete_train, settings_of
from rnnbench.errors import UsageError
from rnnbench.files import default_results_dir, write_atomic
from rnnbench.results.metrics import METRICS

SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)
FINISHED = ("ok", "diverged")  # a re-run sweep skips these; failed and oom runs are tried again
REQUIRED_KEYS = ("schema_version", "run_id", "status", "config", "env", "metrics")
# The first columns of load(), in this order: what a run is, then every declared metric (metrics.py,
# read at each load: a metric declared later leads too); the rest follow as they come.
IDENTITY_COLUMNS = [
    "run_id",
    "schema_version",
    "kind",
    "status",
    "error",
    "dataset",
    "cell",
    "num_layers",
    "size",
    "size_mode",
    "hidden_size",
    "n_params",
    "device",
    "hardware",
    "seed",
]


def utc_now() -> str:
    """The time stamps of records: UTC, to the second, ISO 8601."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class Record:
    """One stored row, whatever its kind and schema: what every reader gets (from_stored, the one
    place that knows an old schema's defaults) and the one writer stores (stored()).

    kind: "sweep" (a trained run, with its curve), "compare" (a compare-devices measurement),
    "baseline" (an n-gram baseline), "kernel" (a `rnnbench kernels` layer); status: ok, diverged,
    oom, failed (unsupported for a compare row). config is the run's settings as stored, env the
    machine and software, metrics what was measured (results.metrics declares the shown ones)."""

    kind: str
    run_id: str
    status: str
    config: dict
    env: dict
    metrics: dict = field(default_factory=dict)
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    curve: list | None = None  # sweep runs only
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def from_stored(cls, stored: dict) -> Record:
        """A record as stored (any readable schema) upgraded once: sweep runs written before `kind`
        existed are sweeps. A run's hardware and the settings it predates are filled where they
        are read: the hardware property, config.complete_train."""
        return cls(
            kind=stored.get("kind", "sweep"),
            run_id=stored["run_id"],
            status=stored["status"],
            config=stored["config"],
            env=stored["env"],
            metrics=stored["metrics"] or {},
            error=stored.get("error"),
            started_at=stored.get("started_at"),
            finished_at=stored.get("finished_at"),
            curve=stored.get("curve"),
            schema_version=stored["schema_version"],
        )

    def stored(self) -> dict:
        """The JSON object written to disk, keys in the order of every stored file."""
        stored = {
            "schema_version": self.schema_version,
            "run_id": self.run_id,
            "kind": self.kind,
            "status": self.status,
            "error": self.error,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "config": self.config,
            "env": self.env,
            "metrics": self.metrics,
        }
        if self.curve is not None:
            stored["curve"] = self.curve
        return stored

    @property
    def finished(self) -> bool:
        """A re-run sweep skips a finished run (ok, diverged); failed and oom ones are tried again."""
        return self.status in FINISHED

    @property
    def hardware(self) -> Hardware:
        """The hardware that made it: stored in its config since schema 2, else read from its env."""
        stored = self.config.get("hardware")
        return Hardware(**stored) if stored else Hardware.from_env(self.env, self.config.get("device"))

    @property
    def identity(self) -> str:
        """What makes two records measurements of the same thing (identity())."""
        return identity(self.kind, self.config, self.hardware)


def make_record(
    kind: str,
    run_id: str,
    status: str,
    config: dict,
    env: dict,
    metrics: dict | None = None,
    error: str | None = None,
    started_at: str | None = None,
    curve: list | None = None,
) -> Record:
    """A record of this schema that finishes now: of a sweep run (with its curve), a compare-devices
    measurement, an n-gram baseline or a kernel row (no curve)."""
    now = utc_now()
    return Record(kind, run_id, status, config, env, metrics or {}, error, started_at or now, now, curve)


def runs_dir(results_dir: str | Path | None) -> Path:
    """RESULTS_DIR/runs, of the default results folder when none is named (files.default_results_dir)."""
    return (Path(results_dir) if results_dir is not None else default_results_dir()) / "runs"


def _finite_or_none(value):
    """Strict JSON has no NaN or infinity: store them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return value


def write_run(results_dir: str | Path, record: Record, replaces: str | None = None) -> Path:
    """Store one run's record as runs/<run_id>.json, atomically. `replaces`: the id under which the
    same measurement is stored already, if any (a schema-1 row of it): that file goes once this
    one is written."""
    path = runs_dir(results_dir) / f"{record.run_id}.json"
    text = json.dumps(_finite_or_none(record.stored()), indent=1, sort_keys=False, allow_nan=False)
    write_atomic(path, (text + "\n").encode())
    if replaces is not None and replaces != record.run_id:
        (runs_dir(results_dir) / f"{replaces}.json").unlink(missing_ok=True)
    return path


def read_record(path: Path) -> Record:
    """The record stored in `path`, upgraded to this schema, or ValueError saying why the file is not one."""
    try:
        stored = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not readable JSON ({exc.__class__.__name__}: {exc})") from exc
    if not isinstance(stored, dict) or any(key not in stored for key in REQUIRED_KEYS):
        raise ValueError(f"not an rnnbench run record (needs keys {', '.join(REQUIRED_KEYS)})")
    if stored["schema_version"] not in READABLE_SCHEMAS:
        raise ValueError(
            f"schema_version {stored['schema_version']!r}, this rnnbench reads {', '.join(map(str, READABLE_SCHEMAS))}"
        )
    if stored["run_id"] != path.stem:
        raise ValueError(f"holds run {stored['run_id']!r} under another name")
    return Record.from_stored(stored)


def iter_records(results_dir: str | Path) -> tuple[list[Record], list[str]]:
    """(records, problems): every readable run record, and one line per file that is not one."""
    folder = runs_dir(results_dir)
    records, problems = [], []
    if not folder.is_dir():
        return records, problems
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):  # temporary files of writes in progress
            continue
        if path.suffix != ".json" or not path.is_file():
            problems.append(f"{path}: not a .json run file")
            continue
        try:
            records.append(read_record(path))
        except ValueError as exc:
            problems.append(f"{path}: {exc}")
    return records, problems


def identity(kind: str, config: dict, hardware: Hardware | None) -> str:
    """What makes two records measurements of the same thing: kind, configuration and hardware.
    A run id is a hash of the same (and of the schema), so records of schema 1 and 2 are matched
    by this, not by id. A training setting a stored row lacks is the default it trained with."""
    config = {k: v for k, v in config.items() if k != "hardware"}
    if "train" in config:
        config["train"] = complete_train(config["train"])
    return json.dumps([kind, config, hardware.as_dict() if hardware else None], sort_keys=True)


def finished(results_dir: str | Path, run_id: str) -> bool:
    """Whether `run_id` is stored as finished (ok or diverged) now."""
    try:
        return read_record(runs_dir(results_dir) / f"{run_id}.json").finished
    except (ValueError, FileNotFoundError):
        return False


def stored_identities(results_dir: str | Path, statuses: tuple[str, ...] | None = FINISHED) -> dict[str, str]:
    """identity -> run id, for every record stored in `results_dir` with one of `statuses` (None: any)."""
    records, _ = iter_records(results_dir)
    return {r.identity: r.run_id for r in records if statuses is None or r.status in statuses}


def flatten(record: Record) -> dict:
    """One row of load()'s table: config, training settings, metrics and env as columns."""
    config = dict(record.config)
    train = complete_train(config.pop("train")) if "train" in config else {}
    config.pop("hardware", None)  # as words in column "hardware"; its parts are env columns
    row = {
        "run_id": record.run_id,
        "schema_version": record.schema_version,
        "kind": record.kind,
        "status": record.status,
        "error": record.error,
        **config,
        "hardware": record.hardware.label,
        **train,
        **record.metrics,
        **record.env,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
    }
    return row


# Columns every table has, missing values where no row has them: a folder of failed runs only (no
# metrics) or of compare-devices rows only still gives the columns the report and exports read.
ALWAYS_COLUMNS = [
    "vocab_size",
    "host",
    "cpu_model",
    "cpu_cores_logical",
    "gpu_name",
    "torch_version",
    "torch_num_threads",
    "cuda_version",
    "cudnn_version",
    "git_commit",
    "started_at",
    "finished_at",
]


# Whole numbers by nature: kept as integers (pandas' nullable Int64) even where some rows lack them,
# which would otherwise make them floats (3.0) in the table and in every export.
INT_COLUMNS = {s.name for s in settings_of(TrainConfig) if s.type is int} | {
    "schema_version",
    "num_layers",
    "size",
    "seed",
    "hidden_size",
    "n_params",
    "vocab_size",
    "steps",
    "best_step",
    "chars_trained",
    "n_timed_steps",
    "threads",
    "order",
    "cpu_cores_physical",
    "cpu_cores_logical",
    "torch_num_threads",
    "cudnn_version",
    "jobs",
    "runs_sharing_device",
    "batch_size",
    "seq_len",
    "warmup",
    "n_blocks",
    "chars",
}
TIME_COLUMNS = ("started_at", "finished_at")


def typed(df: pd.DataFrame) -> pd.DataFrame:
    """Integer columns as Int64 (where every value is whole), time stamps as UTC datetimes."""
    df = df.copy()
    for column in INT_COLUMNS & set(df.columns):
        values = pd.to_numeric(df[column], errors="coerce")
        if values.notna().sum() == df[column].notna().sum() and (values.dropna() % 1 == 0).all():
            df[column] = values.astype("Int64")
    for column in TIME_COLUMNS:
        if column in df:
            df[column] = pd.to_datetime(df[column], utc=True, errors="coerce", format="ISO8601")
    return df


def frame(records: list[Record]) -> pd.DataFrame:
    """Records as one tidy table, one row per record, the leading columns first, typed (typed())."""
    df = pd.DataFrame([flatten(r) for r in records])
    leading = IDENTITY_COLUMNS + list(METRICS)
    missing = [c for c in leading + ALWAYS_COLUMNS if c not in df.columns]
    df = pd.concat([df, pd.DataFrame(float("nan"), index=df.index, columns=missing)], axis=1) if missing else df
    ordered = [c for c in leading if c in df.columns]
    return typed(df[ordered + [c for c in df.columns if c not in ordered]])


def load(results_dir: str | Path | None = None, warn: bool = True) -> pd.DataFrame:
    """One tidy row per stored run. Files that are not runs are named in df.attrs["problems"]
    (and in a warning, unless warn=False)."""
    records, problems = iter_records(results_dir)
    df = frame(records)
    df.attrs["problems"] = problems
    if warn:
        for problem in problems:
            warnings.warn(f"skipped {problem}", stacklevel=2)
    return df


def load_curves(results_dir: str | Path | None = None) -> pd.DataFrame:
    """The loss curves of all runs, long form: run_id, step, epoch, train_loss_nats, val_loss_nats,
    train_s and wall_s (missing in rows of schema 1, whose curves had no clock)."""
    records, _ = iter_records(results_dir)
    rows = [{"run_id": r.run_id, **point} for r in records for point in r.curve or []]
    return pd.DataFrame(
        rows, columns=["run_id", "step", "epoch", "train_loss_nats", "val_loss_nats", "train_s", "wall_s"]
    )


EXPORT_FORMATS = ("csv", "jsonl")


def export(df: pd.DataFrame, fmt: str) -> str:
    if fmt == "csv":
        return df.to_csv(index=False)
    if fmt == "jsonl":
        return df.to_json(orient="records", lines=True, date_format="iso")
    raise UsageError(f"unknown export format '{fmt}': choose from {', '.join(EXPORT_FORMATS)}")


@dataclass
class MergePlan:
    """What merging result folders does, decided before anything is written.

    writes: run_id -> (record, the folder it comes from); stale: run ids in `into` whose record a
    write replaces under another id (a schema-1 row of the same run); replaced: one line per stored
    failed attempt that a finished result replaces; conflicts: one line per run (configuration and
    hardware) that holds two different finished results, none of which is written."""

    into: Path
    writes: dict[str, tuple[Record, Path]] = field(default_factory=dict)
    stale: list[str] = field(default_factory=list)
    duplicates: int = 0
    replaced: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _summary(record: Record, folder: Path) -> str:
    m, env = record.metrics, record.env
    loss = m.get("test_loss_nats")
    what = f"test {loss:.4f} nats" if isinstance(loss, (int, float)) else record.status
    if isinstance(m.get("train_chars_per_s"), (int, float)):
        what += f", {m['train_chars_per_s']:,.0f} chars/s"
    return f"{folder} ({what}, {env.get('host') or 'unknown host'}, finished {record.finished_at or '?'})"


def plan_merge(sources: list[str | Path], into: str | Path) -> MergePlan:
    """Decide how to merge the runs of `sources` into `into`, by identity (configuration and
    hardware: runs of two machines are different runs and both kept).

    The same record twice is one run. A finished run (ok, diverged) replaces failed or oom attempts
    at it, as a re-run sweep would; between unfinished attempts only, the latest is kept. Two
    different finished results for one run id are a conflict: reported, and neither written over
    what `into` holds."""
    into = Path(into)
    plan = MergePlan(into)
    for folder in map(Path, sources):
        if not runs_dir(folder).is_dir():
            raise UsageError(f"{folder} holds no results (no folder {runs_dir(folder)}); nothing merged")
    # INTO first: where two versions tie, what INTO holds is kept. A source that is INTO adds nothing.
    folders = [into] + [folder for folder in map(Path, sources) if folder.resolve() != into.resolve()]
    versions: dict[str, list[tuple[Record, Path]]] = {}
    for folder in folders:
        records, problems = iter_records(folder)
        plan.problems += problems
        for record in records:
            versions.setdefault(record.identity, []).append((record, folder))
    for found in versions.values():
        run_id = found[0][0].run_id
        distinct: list[tuple[Record, Path]] = []
        for record, folder in found:
            if all(record != kept for kept, _ in distinct):
                distinct.append((record, folder))
        plan.duplicates += len(found) - len(distinct)
        finished = [(r, f) for r, f in distinct if r.finished]
        if len(finished) > 1:
            plan.conflicts.append(f"{run_id}: " + " vs ".join(_summary(r, f) for r, f in finished))
            continue
        record, folder = finished[0] if finished else max(distinct, key=lambda rf: rf[0].finished_at or "")
        for other, other_folder in distinct:
            if other is not record:
                plan.replaced.append(f"{run_id}: {_summary(record, folder)} replaces {_summary(other, other_folder)}")
        if folder != into:
            plan.writes[record.run_id] = (record, folder)
            plan.stale += [r.run_id for r, f in distinct if f == into and r.run_id != record.run_id]
    return plan
