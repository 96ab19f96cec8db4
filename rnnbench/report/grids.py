"""Sweep rows grouped into experiments, their loss grids in the paper's layout, the comparison
with the paper's Table 1 and the findings computed from them.

    >>> from rnnbench.report.baselines import frequency_floor
    >>> from rnnbench.report.grids import experiments, cell_values, paper_comparison, untrained
    >>> from rnnbench.results import load
    >>> df = load("results")
    >>> exp = max((e for e in experiments(df) if e.protocol == "paper"), key=lambda e: len(e.rows))
    >>> joined, stats = paper_comparison(exp, cell_values(exp))
    >>> learned_nothing = untrained(joined, frequency_floor(df, "warpeace", "chunked"))
    >>> bool(joined.drop(learned_nothing.index).diff_nats.abs().mean() < 0.05)   # the cells that trained
    True
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import weakref
from dataclasses import dataclass, field
from importlib import resources

import numpy as np
import pandas as pd

from rnnbench.config import BUDGETS, GRID_AXES, TRAIN_SETTINGS
from rnnbench.core.devices import BUSY_CORES
from rnnbench.core.models import in_cell_order
from rnnbench.report.tables import is_missing as _is_missing
from rnnbench.report.tables import table

PAPER_SIZES = (64, 128, 256, 512)
PAPER_DATASETS = ("warpeace", "linux")
DATASET_TITLES = {"warpeace": "War and Peace", "linux": "Linux Kernel", "synthetic": "synthetic"}
# The settings whose defaults are the paper's protocol, to tell a budget run from a reproduction.
PAPER_PROTOCOL = {s.name: s.default for s in TRAIN_SETTINGS.values() if s.protocol}
# Columns that make one experiment: everything about what a run learns except the cell, depth,
# size and seed (the grid inside the experiment), and the hardware that ran it.
EXPERIMENT_KEYS = ["dataset", "size_mode", "device", "hardware"] + [
    s.name for s in TRAIN_SETTINGS.values() if s.experiment and s.name not in GRID_AXES
]


def protocol_text() -> str:
    """The paper's protocol in words, from the same defaults."""
    p = PAPER_PROTOCOL
    lr = f"{p['lr']:.0e}".replace("e-0", "e-")  # 0.002 -> 2e-3, as the paper writes it
    return f"batch {p['batch_size']} x {p['seq_len']}, RMSProp {lr}, up to {p['epochs']} epochs"


def paper_baselines() -> pd.DataFrame:
    """The paper's 20-gram baseline and best model per corpus, as published (test loss in nats)."""
    with resources.files("rnnbench").joinpath("karpathy2015_baselines.csv").open() as f:
        return pd.read_csv(f)


def paper_table() -> pd.DataFrame:
    """Table 1 of Karpathy, Johnson & Fei-Fei (2015), as published (test loss in nats)."""
    with resources.files("rnnbench").joinpath("karpathy2015_table1.csv").open() as f:
        return pd.read_csv(f)


def budget_text(row) -> str:
    """A run's budget in words; a run that is not the paper's protocol says so."""
    parts = []
    if not _is_missing(row["epochs"]):
        parts.append(f"up to {int(row['epochs'])} epoch{'s' if row['epochs'] != 1 else ''}")
    if not _is_missing(row["max_steps"]):
        parts.append(f"{int(row['max_steps']):,} steps")
    if not _is_missing(row["max_chars"]):
        parts.append(f"{int(row['max_chars']):,} characters")
    if not _is_missing(row["time_budget_s"]):
        parts.append(f"{row['time_budget_s']:g} s")
    return ", ".join(parts) + " per run (the first reached)" if len(parts) > 1 else parts[0] + " per run"


def is_paper_protocol(row, but: str | None = None) -> bool:
    """Whether a row trained by the paper's protocol (in every setting but `but`)."""
    return all((_is_missing(row[k]) and v is None) or row[k] == v for k, v in PAPER_PROTOCOL.items() if k != but)


@dataclass
class Experiment:
    """Sweep rows that differ only in cell, depth, size and seed."""

    key: tuple
    rows: pd.DataFrame
    names: tuple[str, ...] = tuple(EXPERIMENT_KEYS)  # the columns the key's values are of
    # cell_values by dropout, computed once: a report's sections ask for the same grid many times.
    values_by_dropout: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def first(self):
        return self.rows.iloc[0]

    @property
    def slug(self) -> str:
        f = self.first
        # Stable across processes, and across the other rows stored beside these: a column that
        # holds a missing value somewhere turns 1 into 1.0, so numbers are hashed as floats. A
        # training setting at its default is left out, so that a setting added later leaves the
        # names of the experiments stored before it as they were.
        canonical = {
            k: None
            if _is_missing(v)
            else float(v)
            if isinstance(v, numbers.Number) and not isinstance(v, bool)
            else str(v)
            for k, v in zip(self.names, self.key)
            if k not in TRAIN_SETTINGS or v != TRAIN_SETTINGS[k].default
        }
        digest = hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()[:6]
        return f"{f['dataset']}-{f['device'].replace(':', '')}-{digest}"

    @property
    def protocol(self) -> str:
        """'paper', 'cut' (the paper's protocol but for a wall-time limit per run) or 'budget'."""
        if is_paper_protocol(self.first):
            return "paper"
        return "cut" if is_paper_protocol(self.first, but="time_budget_s") else "budget"

    @property
    def title(self) -> str:
        f = self.first
        kind = (
            "the paper's protocol"
            if self.protocol == "paper"
            else "budget run, not the paper's protocol"
            if self.protocol == "budget"
            else f"the paper's protocol cut at {f['time_budget_s']:g} s of wall time per run"
        )
        # Settings away from their defaults, so that two experiments on one machine read apart.
        # (The budget is said below the title.)
        changed = [
            f"{TRAIN_SETTINGS[k].option} {v:g}" if isinstance(v, float) else f"{TRAIN_SETTINGS[k].option} {v}"
            for k, v in zip(self.names, self.key)
            if k in TRAIN_SETTINGS and k not in BUDGETS and not _is_missing(v) and v != TRAIN_SETTINGS[k].default
        ]
        settings = f" ({', '.join(changed)})" if changed else ""
        return f"{DATASET_TITLES.get(f['dataset'], f['dataset'])} on {f['device']} ({f['hardware']}): {kind}{settings}"

    @property
    def most_at_once(self) -> int:
        """The most runs of this experiment that trained at once on its device."""
        if "concurrent_runs" not in self.rows:
            return 1
        return int(self.rows.concurrent_runs.fillna(1).max())


def concurrent_runs(sweeps: pd.DataFrame) -> pd.Series:
    """For each run, the most runs (itself included) that trained at once on its host and device,
    from the start and finish times stored with every row: what runs sharing a device by other
    means than --jobs (separate processes, shards on one machine) leave as their only trace."""
    start = pd.to_datetime(sweeps.started_at, utc=True, errors="coerce")
    finish = pd.to_datetime(sweeps.finished_at, utc=True, errors="coerce")
    where = (
        sweeps.get("host", pd.Series("", index=sweeps.index)).fillna("").astype(str)
        + "|"
        + sweeps.get("cpu_cores_logical", pd.Series("", index=sweeps.index)).astype(str)
        + "|"
        + sweeps.get("torch_version", pd.Series("", index=sweeps.index)).astype(str)
        + "|"
        + sweeps.device.astype(str)
    )
    out = pd.Series(1, index=sweeps.index)
    timed = start.notna() & finish.notna()
    for _, group in sweeps[timed].groupby(where[timed]):
        s = start[group.index].to_numpy(dtype="datetime64[ns]")
        f = finish[group.index].to_numpy(dtype="datetime64[ns]")
        # Runs in flight at each run's start (sorted searches, not a scan per pair); the count
        # over any run's span is highest at one of the starts inside it.
        at_start = np.searchsorted(np.sort(s), s, side="right") - np.searchsorted(np.sort(f), s, side="right")
        inside = (s[None, :] >= s[:, None]) & (s[None, :] < f[:, None])
        out[group.index] = np.maximum(1, np.where(inside, at_start[None, :], 0).max(axis=1))  # zero-length: itself
    return out


def place(rows: pd.DataFrame) -> pd.Series:
    """Where each row was measured, in words: its device and hardware ('cuda: NVIDIA H200, torch …')."""
    return rows.device.astype(str) + ": " + rows.hardware.astype(str)


def experiments(df: pd.DataFrame) -> list[Experiment]:
    """The sweep rows of `df` as experiments. Found once per frame while it lives (a report's
    sections each ask, and each experiment keeps the grids computed from it): the report reads the
    rows it is given and never changes them in place."""
    if id(df) not in _FOUND:
        _FOUND[id(df)] = _experiments(df)
        weakref.finalize(df, _FOUND.pop, id(df), None)
    return list(_FOUND[id(df)])


_FOUND: dict[int, list[Experiment]] = {}  # id of a live frame -> its experiments


def _experiments(df: pd.DataFrame) -> list[Experiment]:
    sweeps = df[df["kind"] == "sweep"] if "kind" in df else df
    if sweeps.empty:
        return []
    sweeps = sweeps.assign(concurrent_runs=concurrent_runs(sweeps))
    keys = [k for k in EXPERIMENT_KEYS if k in sweeps]
    groups = sweeps.groupby(keys, dropna=False, sort=True)
    found = [Experiment(tuple(key), rows, tuple(keys)) for key, rows in groups]
    # The paper's protocol first (what a reader came for), then cut runs, then budget runs.
    return sorted(found, key=lambda exp: PROTOCOL_ORDER.index(exp.protocol))


PROTOCOL_ORDER = ("paper", "cut", "budget")


def not_solo(rows: pd.DataFrame) -> pd.Series:
    """Rows whose throughput was measured beside other work: other runs on the same device (as the
    sweep recorded them, or else as their start and finish times overlap), or (on a CPU) other
    processes keeping BUSY_CORES or more busy."""
    recorded = (
        rows["runs_sharing_device"] if "runs_sharing_device" in rows else pd.Series(float("nan"), index=rows.index)
    )
    inferred = rows["concurrent_runs"] if "concurrent_runs" in rows else concurrent_runs(rows)
    shared = recorded.fillna(inferred).fillna(1) > 1
    busy = (
        (rows["device"] == "cpu") & (rows["other_cpu_cores"].fillna(0) >= BUSY_CORES)
        if "other_cpu_cores" in rows
        else False
    )
    return pd.Series(shared, index=rows.index) | pd.Series(busy, index=rows.index)


def chosen_dropout(runs: pd.DataFrame) -> float | None:
    """The dropout value whose finished runs have the lowest mean validation loss, as the paper
    chose dropout per model on validation; the only value when there is one; None when no run
    finished with a validation loss to choose by."""
    values = sorted(set(runs.dropout.dropna()))
    if len(values) <= 1:
        return float(values[0]) if values else None
    ok = runs[runs.status == "ok"].dropna(subset=["val_loss_nats"]) if "val_loss_nats" in runs else runs.iloc[0:0]
    if ok.empty:
        return None
    return float(ok.groupby("dropout").val_loss_nats.mean().idxmin())


def cell_values(exp: Experiment, dropout: float | None = None) -> pd.DataFrame:
    """One row per (cell, layers, size): test loss mean, std and n over seeds, and the status, of
    the dropout value chosen on validation (or of `dropout`), which `dropout` names.
    Throughput comes from solo runs where there are any; `throughput_shared` says when it could
    only come from runs that shared the machine."""
    if dropout not in exp.values_by_dropout:
        exp.values_by_dropout[dropout] = _cell_values(exp, dropout)
    return exp.values_by_dropout[dropout].copy()  # a copy: a caller may change its own


def _cell_values(exp: Experiment, dropout: float | None) -> pd.DataFrame:
    out = []
    for (cell, layers, size), all_runs in exp.rows.groupby(["cell", "num_layers", "size"]):
        value = dropout if dropout is not None else chosen_dropout(all_runs)
        runs = all_runs[all_runs.dropout == value] if value is not None else all_runs
        if runs.empty:  # this dropout value was not run for this model
            continue
        ok = runs[runs.status == "ok"]
        losses = ok.test_loss_nats.dropna()
        shared = not_solo(ok)
        timed = ok[~shared] if (~shared).any() else ok
        out.append(
            {
                "cell": cell,
                "num_layers": int(layers),
                "size": int(size),
                "test_loss_nats": losses.mean() if len(losses) else math.nan,
                "test_loss_std": losses.std() if len(losses) > 1 else math.nan,
                "n_seeds": len(losses),
                "status": "ok" if len(losses) else ", ".join(sorted(set(runs.status))),
                "n_params": int(runs.n_params.iloc[0])
                if "n_params" in runs and not _is_missing(runs.n_params.iloc[0])
                else None,
                "train_chars_per_s": timed.train_chars_per_s.median() if len(ok) else math.nan,
                "achieved_gflops": timed.achieved_gflops.median() if len(ok) else math.nan,
                "throughput_shared": bool(len(ok)) and bool(shared.all()),
                # From the same runs as throughput: a shared counter counts the others' work too.
                "joules_per_char": timed.joules_per_char.median()
                if "joules_per_char" in timed and timed.joules_per_char.notna().any()
                else math.nan,
                "vocab_size": runs.vocab_size.iloc[0] if "vocab_size" in runs else None,
                "dropout": value if value is not None else math.nan,
            }
        )
    return pd.DataFrame(out)


def dropout_values(exp: Experiment) -> list[float]:
    return sorted(set(exp.rows.dropout.dropna()))


def _grid_columns(values: pd.DataFrame) -> list[tuple[str, int]]:
    cells = in_cell_order(values.cell)
    layers = sorted(set(values.num_layers))
    return [(c, n) for c in cells for n in layers]


def grid_markdown(
    values: pd.DataFrame, column: str, fmt: str, mark_lowest: bool, sizes=None, std_column: str | None = None
) -> str:
    """The paper's layout: rows are sizes, columns cell x layers. Cells not run say so."""
    columns = _grid_columns(values)
    sizes = sizes or sorted(set(values["size"]))
    lookup = {(r.cell, r.num_layers, r.size): r for r in values.itertuples()}
    body = []
    for size in sizes:
        numbers = {col: getattr(lookup[(*col, size)], column) for col in columns if (*col, size) in lookup}
        finite = [v for v in numbers.values() if not _is_missing(v)]
        lowest = min(finite) if finite and mark_lowest else None
        cells = [str(size)]
        for col in columns:
            r = lookup.get((*col, size))
            if r is None:
                cells.append("not run")
            elif _is_missing(numbers[col]):
                cells.append(getattr(r, "status", "-") if getattr(r, "status", "ok") != "ok" else "-")
            else:
                text = format(numbers[col], fmt)
                if std_column and not _is_missing(getattr(r, std_column)):
                    text += f" ± {format(getattr(r, std_column), fmt.replace('+', ''))}"  # a spread has no sign
                cells.append(f"**{text}**" if numbers[col] == lowest else text)
        body.append(cells)
    header = ["size"] + [f"{c.upper()} {n}" for c, n in columns]
    return table(header, body)


def spearman(a: pd.Series, b: pd.Series) -> float:
    """Rank correlation: the Pearson correlation of the ranks (ties share their mean rank)."""
    return a.rank().corr(b.rank())


def paper_comparison(exp: Experiment, values: pd.DataFrame) -> tuple[pd.DataFrame, dict] | None:
    """Ours joined to the paper's Table 1 cell by cell, with the summary statistics."""
    f = exp.first
    if f["dataset"] not in PAPER_DATASETS or f["size_mode"] != "params":
        return None
    paper = paper_table()
    paper = paper[paper.dataset == f["dataset"]].rename(columns={"test_loss_nats": "paper_loss_nats"})
    joined = values.merge(
        paper[["cell", "num_layers", "size", "paper_loss_nats"]], on=["cell", "num_layers", "size"], how="left"
    )
    joined["diff_nats"] = joined.test_loss_nats - joined.paper_loss_nats
    both = joined.dropna(subset=["test_loss_nats", "paper_loss_nats"])
    stats = {
        "n": len(both),
        "mad": both.diff_nats.abs().mean() if len(both) else math.nan,
        "spearman": spearman(both.test_loss_nats, both.paper_loss_nats) if len(both) > 2 else math.nan,
        "worst": both.reindex(both.diff_nats.abs().sort_values(ascending=False).index).head(3),
    }
    return joined, stats


def by_depth(values: pd.DataFrame) -> pd.DataFrame:
    """Test losses with a row per (cell, size) and a column per layer count."""
    return values.dropna(subset=["test_loss_nats"]).pivot_table(
        index=["cell", "size"], columns="num_layers", values="test_loss_nats"
    )


def depth_helps(values: pd.DataFrame) -> tuple[int, int]:
    """(pairs where the better of 2 and 3 layers beats 1 layer, pairs), over cells and sizes."""
    depth = by_depth(values)
    deeper = [d for d in (2, 3) if d in depth]
    if 1 not in depth or not deeper:
        return 0, 0
    pairs = depth[[1]].join(depth[deeper].min(axis=1).rename("deeper")).dropna()
    return int((pairs.deeper < pairs[1]).sum()), len(pairs)


def gated_beat_rnn(values: pd.DataFrame) -> tuple[int, int]:
    """(depth and size pairs where both LSTM and GRU beat the vanilla RNN, pairs with all three)."""
    grid = values.dropna(subset=["test_loss_nats"]).pivot_table(
        index=["num_layers", "size"], columns="cell", values="test_loss_nats"
    )
    if not {"lstm", "gru", "rnn"} <= set(grid.columns):
        return 0, 0
    grid = grid[["lstm", "gru", "rnn"]].dropna()
    return int(((grid.lstm < grid.rnn) & (grid.gru < grid.rnn)).sum()), len(grid)


def verdict(hits: int, n: int) -> str:
    """'yes (k of n)' when it holds in most comparisons, 'no (k of n)', or '-' with none to make."""
    return "-" if n == 0 else f"{'yes' if hits > n / 2 else 'no'} ({hits} of {n})"


def findings_summary(df: pd.DataFrame, baseline_of) -> list[str]:
    """Per experiment: the distance to the paper and whether each of the paper's findings holds.
    `baseline_of(exp)`: the (order, test loss, smoothing) of the n-gram baseline it is held against, or None."""
    body = []
    for exp in experiments(df):
        values = cell_values(exp)
        comparison = paper_comparison(exp, values)
        stats = comparison[1] if comparison is not None else {"n": 0}
        if stats["n"]:
            both = comparison[0].dropna(subset=["test_loss_nats", "paper_loss_nats"])
            near = f"{(both.diff_nats.abs() <= 0.05).mean():.0%}"
            rank = f"{stats['spearman']:.2f}" if math.isfinite(stats["spearman"]) else "-"  # needs 3 cells
            paper = [str(stats["n"]), f"{stats['mad']:.3f}", rank, near]
        else:
            paper = ["-"] * 4
        ok = values.dropna(subset=["test_loss_nats"])
        baseline = baseline_of(exp)
        if ok.empty or baseline is None:
            beats = "-" if ok.empty else "no baseline stored"
        else:
            best = ok.test_loss_nats.min()
            beats = f"{'yes' if best < baseline[1] else 'no'} ({best:.3f} vs {baseline[1]:.3f})"
        body.append([exp.title] + paper + [verdict(*depth_helps(values)), verdict(*gated_beat_rnn(values)), beats])
    if not body:
        return []
    return [
        "## Findings",
        "",
        "Computed from the rows below. Distance to the paper's Table 1 over the cells both have: mean absolute "
        "difference (MAD, nats), Spearman rank correlation, and the share of cells within 0.05 nats. The "
        "paper's findings, each tested on these rows: depth helps (the better of 2 and 3 layers has the "
        "lower loss than 1 layer, per cell and size), LSTM and GRU both beat the vanilla RNN (per depth and "
        "size), and the best model beats the n-gram baseline stored for the corpus and layout (the 20-gram, "
        "with the better of the smoothings stored). "
        "'yes' means in most of the comparisons made.",
        "",
        table(
            [
                "experiment",
                "cells",
                "MAD",
                "Spearman",
                "within 0.05",
                "depth >= 2 helps",
                "LSTM and GRU beat RNN",
                "best beats the n-gram",
            ],
            body,
            ["l"] + ["r"] * 4 + ["l"] * 3,
        ),
        "",
    ]


def headline_experiments(df: pd.DataFrame) -> list[tuple[str, Experiment, pd.DataFrame, dict]]:
    """(corpus, experiment, its cells joined with the paper's, their statistics) per paper corpus:
    the paper-protocol experiment with the most of Table 1's published cells."""
    out = []
    for dataset in PAPER_DATASETS:
        found = []
        for exp in experiments(df):
            if exp.first["dataset"] == dataset and exp.protocol == "paper":
                comparison = paper_comparison(exp, cell_values(exp))
                if comparison is not None and comparison[1]["n"]:
                    found.append((comparison[1]["n"], exp, comparison))
        if found:
            _, exp, (joined, stats) = max(found, key=lambda item: item[0])
            out.append((dataset, exp, joined, stats))
    return out


def model_name(row) -> str:
    """'RNN 3x256': a grid cell as the paper's table names it."""
    return f"{row.cell.upper()} {int(row.num_layers)}x{int(row['size'])}"


def untrained(values: pd.DataFrame, floor: float | None) -> pd.DataFrame:
    """The cells whose test loss is no lower than `floor`, the characters' frequencies alone (the
    stored 1-gram, baselines.frequency_floor): models that learned nothing from the context."""
    if floor is None:
        return values.iloc[0:0]
    return values[values.test_loss_nats >= floor]


def _farthest(both: pd.DataFrame) -> str:
    worst = both.loc[both.diff_nats.abs().idxmax()]
    return f"the farthest {model_name(worst)} at {worst.diff_nats:+.3f}"


def reproduction_headline(df: pd.DataFrame, floor_of=lambda exp: None) -> list[str]:
    """A sentence per paper corpus: how many of Table 1's published cells the paper-protocol
    experiment with the most of them has, and how close they are (the report's and README's
    headline, so that neither is typed). `floor_of(exp)`: the loss of the characters' frequencies
    for its corpus and layout, or None; cells that end no lower are named, and the distance over
    the other cells follows, so that one model that did not train neither hides nor drowns the rest."""
    paper = paper_table()
    out = []
    for dataset, exp, joined, stats in headline_experiments(df):
        both = joined.dropna(subset=["test_loss_nats", "paper_loss_nats"])
        n = len(both)
        published = int(paper[paper.dataset == dataset].test_loss_nats.notna().sum())
        within = int((both.diff_nats.abs() <= 0.05).sum())
        spearman_text = f", Spearman rank correlation {stats['spearman']:.2f}" if n > 2 else ""
        line = (
            f"{DATASET_TITLES[dataset]}: {n} of the paper's {published} cells trained under its protocol "
            f"({exp.first['device']}, {exp.first['hardware']}): mean absolute difference {stats['mad']:.3f} "
            f"nats, {within} of {n} within 0.05, {_farthest(both)}{spearman_text}."
        )
        floor = floor_of(exp)
        stuck = untrained(both, floor)
        rest = both.drop(stuck.index)
        if len(stuck) and len(rest):
            names = ", ".join(f"{model_name(r)} ({r.test_loss_nats:.3f} nats)" for _, r in stuck.iterrows())
            line += (
                f" {names} learned nothing from the context: no lower than the characters' frequencies "
                f"({floor:.3f}). Over the other {len(rest)}: mean absolute difference "
                f"{rest.diff_nats.abs().mean():.3f} nats, {_farthest(rest)}."
            )
        out.append(line)
    return out


def findings_by_size(values: pd.DataFrame, comparison, baseline: tuple[int, float, str] | None = None) -> list[list]:
    """Rows of the paper's findings size by size, each tested on our cells and on the paper's same
    cells (Table 1 as the oracle): size, cells against the paper and their MAD, depth helps, LSTM
    and GRU beat RNN, and the best model against the n-gram baseline."""
    ok = values.dropna(subset=["test_loss_nats"])
    joined = comparison[0] if comparison is not None else ok.assign(paper_loss_nats=math.nan, diff_nats=math.nan)
    rows = []
    for size, ours in ok.groupby("size"):
        mine = joined[(joined["size"] == size)].dropna(subset=["test_loss_nats"])
        both = mine.dropna(subset=["paper_loss_nats"])
        theirs = both.assign(test_loss_nats=both.paper_loss_nats)
        best = ours.loc[ours.test_loss_nats.idxmin()]
        beats = "-"
        if baseline is not None:
            loss = best.test_loss_nats
            beats = f"{'yes' if loss < baseline[1] else 'no'} ({loss:.3f} vs {baseline[1]:.3f})"
        rows.append(
            [
                str(int(size)),
                f"{len(ours)} ({len(both)} published)",
                f"{both.diff_nats.abs().mean():.3f}" if len(both) else "-",
                f"{verdict(*depth_helps(ours))} / {verdict(*depth_helps(theirs))}"
                if len(both)
                else verdict(*depth_helps(ours)),
                f"{verdict(*gated_beat_rnn(ours))} / {verdict(*gated_beat_rnn(theirs))}"
                if len(both)
                else verdict(*gated_beat_rnn(ours)),
                f"{best.cell.upper()} {int(best.num_layers)}x{int(size)}",
                beats,
            ]
        )
    return rows


def findings(
    values: pd.DataFrame, comparison, baseline: tuple[int, float, str] | None = None, floor: float | None = None
) -> list[str]:
    """What stands out, as measured facts with their numbers. `floor`: the test loss of the
    characters' frequencies alone (the stored 1-gram), where there is one."""
    ok = values.dropna(subset=["test_loss_nats"])
    if ok.empty:
        return ["No run finished with a test loss."]
    lines = best_per_size_lines(ok) + depth_lines(ok) + unstable_lines(ok, floor)
    not_ok = values[values.status != "ok"]
    if len(not_ok):
        lines.append(
            f"{len(not_ok)} grid cell(s) have no test loss: "
            + ", ".join(f"{r.cell.upper()} {r.num_layers}x{r.size} ({r.status})" for r in not_ok.itertuples())
            + "."
        )
    if baseline is not None:
        order, loss, smoothing = baseline
        best = ok.loc[ok.test_loss_nats.idxmin()]
        verdict = "beats" if best.test_loss_nats < loss else "does not beat"
        lines.append(
            f"The best model here, {model_name(best)} "
            f"({best.test_loss_nats:.3f} nats), {verdict} the stored {order}-gram baseline ({loss:.3f} nats, "
            f"{smoothing}, same layout)."
        )
    if comparison is not None:
        _, stats = comparison
        if stats["n"]:
            rank = f", Spearman rank correlation {stats['spearman']:.2f}" if math.isfinite(stats["spearman"]) else ""
            cells = f"{stats['n']} published cell{'s' if stats['n'] != 1 else ''}"
            lines.append(f"Against the paper's {cells}: mean absolute difference {stats['mad']:.3f} nats{rank}.")
    return lines


def best_per_size_lines(ok: pd.DataFrame) -> list[str]:
    """The best model of each size, and each cell's mean loss over the grid."""
    lines = []
    for size, group in ok.groupby("size"):
        best = group.loc[group.test_loss_nats.idxmin()]
        lines.append(
            f"Size {size}: the lowest test loss is {best.cell.upper()} with {best.num_layers} "
            f"layer{'s' if best.num_layers > 1 else ''}, {best.test_loss_nats:.3f} nats "
            f"({best.test_loss_nats / math.log(2):.3f} bits) per character."
        )
    means = ok.groupby("cell").test_loss_nats.mean().sort_values()
    if len(means) > 1:
        lines.append(
            "Mean test loss over the grid by cell: "
            + ", ".join(f"{c.upper()} {v:.3f}" for c, v in means.items())
            + " nats."
        )
    return lines


def depth_lines(ok: pd.DataFrame) -> list[str]:
    """2 and 3 layers each against 1, pair by pair (same cell and size)."""
    depth, lines = by_depth(ok), []
    for deeper in (2, 3):
        if 1 in depth and deeper in depth:
            diff = (depth[deeper] - depth[1]).dropna()
            if len(diff):
                helped = int((diff < 0).sum())
                lines.append(
                    f"{deeper} layers against 1 (same cell and size): lower loss in {helped} of {len(diff)} "
                    f"pairs, median change {diff.median():+.3f} nats."
                )
    return lines


def unstable_lines(ok: pd.DataFrame, floor: float | None = None) -> list[str]:
    """Models that ended worse than a uniform guess over the vocabulary, and those that ended no
    lower than `floor`, the characters' frequencies alone (the stored 1-gram)."""
    uniform = math.log(float(ok.vocab_size.dropna().iloc[0])) if ok.vocab_size.notna().any() else math.inf
    lines = [
        f"{model_name(r)} ended worse than a uniform guess over the vocabulary "
        f"({r.test_loss_nats:.3f} against {uniform:.3f} nats): its training went unstable."
        for _, r in ok[ok.test_loss_nats > uniform].iterrows()
    ]
    return lines + [
        f"{model_name(r)} ended no lower than the characters' frequencies alone ({r.test_loss_nats:.3f} "
        f"against the stored 1-gram's {floor:.3f} nats, same layout): it learned nothing from the context."
        for _, r in untrained(ok[ok.test_loss_nats <= uniform], floor).iterrows()
    ]
