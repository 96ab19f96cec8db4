"""Speed to quality and speed across hardware: the time each model took to reach a target
validation loss (MLPerf Training's measure, time-to-train), and the same models' training
throughput on every hardware present.

    >>> from rnnbench.results import load, load_curves
    >>> from rnnbench.report.grids import experiments
    >>> from rnnbench.report.speed import time_to_target, hardware_throughput
    >>> rows = load("results")                                      # the published rows
    >>> paper = max((e for e in experiments(rows) if e.protocol == "paper"), key=lambda e: len(e.rows))
    >>> ttt = time_to_target(paper, load_curves("results"), target=1.5)
    >>> bool(ttt.train_s_to_target.notna().any())
    True
    >>> table, baseline, labels = hardware_throughput(rows)
    >>> len(labels) >= 2
    True

Time to target is read from a run's curve: the training seconds (evaluation and checkpoints
excluded) at its first evaluation whose validation loss is at or below the target. Evaluations
come every `eval_every_steps` steps, so the time is when the run was *seen* to be there: an upper
bound by at most one evaluation interval. Curves stored before they carried time (schema 1) give
none.
"""

from __future__ import annotations

import math

import pandas as pd

from rnnbench.core.models import in_cell_order
from rnnbench.errors import UsageError
from rnnbench.report.grids import chosen_dropout, grid_markdown, not_solo, paper_baselines, place
from rnnbench.report.tables import is_missing, table

# What one training step computes: a model on a hardware is these and its place.
MODEL_KEYS = ["dataset", "cell", "num_layers", "size", "hidden_size", "batch_size", "seq_len"]


def default_targets() -> dict[str, float]:
    """Per corpus, the default target validation loss: the paper's 20-gram baseline (War and Peace
    1.195, Linux 0.889 nats per character), the quality a model must beat to be worth training."""
    base = paper_baselines()
    return {r.dataset: float(r.test_loss_nats) for r in base[base.order == 20].itertuples()}


def parse_targets(items: list[str]) -> dict[str, float]:
    """['warpeace=1.5', ...] -> {'warpeace': 1.5}."""
    targets = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            targets[name.strip()] = float(value)
            if not sep or not name.strip() or float(value) <= 0:
                raise ValueError
        except ValueError:
            raise UsageError(
                f"--target-loss takes CORPUS=NATS with NATS above 0 (e.g. warpeace=1.5), got '{item}'"
            ) from None
    return targets


def time_to_target(exp, curves: pd.DataFrame, target: float) -> pd.DataFrame | None:
    """One row per model (the dropout value chosen on validation, the median over seeds): training
    and wall seconds to the target, or the best validation loss when it was never reached. None
    when the experiment's curves carry no time."""
    rows = exp.rows[exp.rows.status == "ok"]
    data = curves[curves.run_id.isin(rows.run_id)]
    if data.empty or "train_s" not in data or data.train_s.isna().all():
        return None
    by_run = {run_id: curve for run_id, curve in data.groupby("run_id")}
    out = []
    for (cell, layers, size), runs in rows.groupby(["cell", "num_layers", "size"]):
        value = chosen_dropout(runs)
        if value is not None:
            runs = runs[runs.dropout == value]
        times, walls, bests = [], [], []
        for run_id in runs.run_id:
            curve = by_run.get(run_id, data.iloc[0:0]).dropna(subset=["val_loss_nats"]).sort_values("step")
            reached = curve[curve.val_loss_nats <= target]
            if not reached.empty:
                times.append(float(reached.train_s.iloc[0]))
                walls.append(float(reached.wall_s.iloc[0]))
            if not curve.empty:
                bests.append(float(curve.val_loss_nats.min()))
        reached_all = len(times) == len(runs) and len(times) > 0
        text = (
            f"{pd.Series(times).median():.3g} s"
            if reached_all
            else f"{len(times)}/{len(runs)} reached"
            if times
            else f"not reached (best {min(bests):.3f})"
            if bests
            else "-"
        )
        out.append(
            {
                "cell": cell,
                "num_layers": int(layers),
                "size": int(size),
                "status": "ok",
                "train_s_to_target": pd.Series(times).median() if reached_all else math.nan,
                "wall_s_to_target": pd.Series(walls).median() if reached_all else math.nan,
                "text": text,
                "shared": bool(not_solo(runs).any()),
            }
        )
    return pd.DataFrame(out)


def hardware_throughput(df: pd.DataFrame, baseline: str | None = None) -> tuple[pd.DataFrame, str, list[str]] | None:
    """The same models' training throughput on every hardware present: (table, the baseline's
    label, the hardware labels in column order), or None when no model ran on two hardware.

    A model is its corpus, cell, depth, hidden width and batch shape (what one step computes); its
    throughput on a hardware is the median over its solo runs there, or over runs that shared the
    device (flagged) where it never ran alone. `baseline`: text that names one hardware (a part of
    its label); by default the CPU hardware with the most models, else the hardware with the most."""
    model = MODEL_KEYS
    needed = [*model, "train_chars_per_s", "device", "hardware"]
    if "kind" not in df or any(c not in df for c in needed):  # e.g. only failed runs: nothing measured
        return None
    sweeps = df[(df["kind"] == "sweep") & (df["status"] == "ok")].dropna(subset=needed)
    if sweeps.empty:
        return None
    sweeps = sweeps.assign(where=place(sweeps), shared=not_solo(sweeps))
    out = []
    for key, runs in sweeps.groupby(model + ["where"]):
        solo = runs[~runs.shared]
        timed = solo if len(solo) else runs
        out.append(
            dict(zip(model + ["where"], key))
            | {"chars_per_s": timed.train_chars_per_s.median(), "shared": solo.empty, "runs": len(timed)}
        )
    long = pd.DataFrame(out)
    counts = long.groupby(model).where.nunique()
    long = long.set_index(model).loc[counts[counts > 1].index].reset_index()
    if long.empty:
        return None
    places = sorted(long["where"].unique())
    if baseline is not None:
        named = [p for p in places if baseline.lower() in p.lower()]
        if len(named) != 1:
            raise UsageError(
                f"--baseline-hardware '{baseline}' names {len(named)} of the hardware present "
                f"({'; '.join(places)}): give text that names one"
            )
        base = named[0]
    else:
        per_place = long.groupby("where").size()
        cpus = [p for p in places if p.startswith("cpu")]
        base = max(cpus or places, key=lambda p: (per_place[p], p))
    return long, base, [base] + [p for p in places if p != base]


def hardware_markdown(df: pd.DataFrame, baseline: str | None = None) -> list[str]:
    """The cross-hardware section of the report (nothing when no model ran on two hardware)."""
    found = hardware_throughput(df, baseline)
    if found is None:
        return []
    long, base, places = found
    body = []
    order = {cell: i for i, cell in enumerate(in_cell_order(long.cell))}  # the paper's column order
    groups = sorted(long.groupby(MODEL_KEYS), key=lambda kv: (kv[0][0], kv[0][3], kv[0][2], order[kv[0][1]]))
    for key, rows in groups:
        by_place = rows.set_index("where")
        if base not in by_place.index:
            continue
        reference = by_place.loc[base, "chars_per_s"]
        cells = []
        for where in places:
            if where not in by_place.index:
                cells.append("-")
                continue
            r = by_place.loc[where]
            mark = " †" if r.shared else ""
            speedup = "" if where == base else f" (x{r.chars_per_s / reference:,.1f})"
            cells.append(f"{r.chars_per_s:,.0f}{speedup}{mark}")
        d, cell, layers, size, hidden, batch, seq = key
        body.append(
            [
                d,
                f"{cell.upper()} {int(layers)}x{int(size)} (hidden {int(hidden)})",
                f"{int(batch)} x {int(seq)}",
                *cells,
            ]
        )
    if not body:
        return []
    letters = {p: chr(ord("A") + i) for i, p in enumerate(places)}
    out = [
        "## Training throughput across hardware",
        "",
        f"The same models (corpus, cell, depth, hidden width, batch) on every hardware that trained them: "
        f"training characters/s at the median step, the median over a model's runs there, and in brackets the "
        f"speedup over the baseline, **{base}** (`rnnbench report --baseline-hardware TEXT` names another). "
        "† only runs that shared the device with other runs: not a solo figure, and its speedup says little.",
        "",
        "Hardware: " + "; ".join(f"**{letters[p]}** = {p}" for p in places) + ".",
        "",
        table(
            ["corpus", "model", "batch", *[letters[p] + (" (baseline)" if p == base else "") for p in places]],
            body,
            ["l", "l", "l"] + ["r"] * len(places),
        ),
        "",
    ]
    return out


def time_to_target_markdown(
    exp, curves: pd.DataFrame, targets: dict[str, float], sizes
) -> tuple[list[str], float | None]:
    """The experiment's time-to-target section, and the target it used (None: no section)."""
    dataset = exp.first["dataset"]
    target = targets.get(dataset)
    if target is None:
        return [], None
    found = time_to_target(exp, curves, target)
    if found is None:
        return [
            f"### Time to a validation loss of {target:g} nats",
            "",
            "These runs' curves were stored before curves carried time (schema 1): no time to target.",
            "",
        ], None
    default = default_targets().get(dataset)
    why = (
        " (the paper's 20-gram baseline on this corpus)"
        if default is not None and target == default
        else " (set with --target-loss)"
    )
    reached = int(found.train_s_to_target.notna().sum())
    shared = " Runs that shared the device (see above) took longer than they would alone." if found.shared.any() else ""
    return [
        f"### Time to a validation loss of {target:g} nats",
        "",
        f"Training seconds (evaluation and checkpoints excluded) until the first evaluation at or below "
        f"{target:g} nats{why}; seen at evaluations every {int(exp.first['eval_every_steps']):,} steps, so "
        f"an upper bound by one interval. {reached} of {len(found)} models reached it.{shared}",
        "",
        _ttt_grid(found, sizes),
        "",
    ], target


def _ttt_grid(found: pd.DataFrame, sizes) -> str:
    # The text column holds "12.3 s" or "not reached (best 1.743)"; the fastest time is in bold.
    fastest = found.train_s_to_target.min()
    found = found.assign(
        cell_text=[
            f"**{t}**" if not is_missing(s) and s == fastest else t for t, s in zip(found.text, found.train_s_to_target)
        ]
    )
    return grid_markdown(found, "cell_text", "s", False, sizes)
