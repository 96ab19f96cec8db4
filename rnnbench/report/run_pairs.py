"""Two sets of sweep runs set side by side, run for run: the change in test loss and in training
speed, with the noise of the step times taken into account (as `pytest-benchmark compare` and
`asv continuous` do).

    >>> from rnnbench.results import load
    >>> from rnnbench.report.run_pairs import Filter, compare_runs
    >>> rows = load("results")                                   # the published rows: a CPU and an H200
    >>> table = compare_runs(rows, rows, [Filter.parse("device=cpu"), Filter.parse("dataset=warpeace"),
    ...                                   Filter.parse("epochs=1")], [Filter.parse("hardware~H200")])
    >>> len(table), bool((table.speedup > 1).all())
    (36, True)

A run of BASE and a run of NEW are the same run when everything that determines what it learns is
equal (corpus, cell, depth, size, seed, every training setting): the device and the hardware may
differ, which is the point. Speed is compared by the median time of one training step; the
verdict uses each run's stored step-time quartiles: NEW is *faster* or *slower* only when the two
interquartile ranges do not overlap and the medians differ by at least `min_change`, else *same*.
A run whose throughput was measured beside other runs (report.grids.not_solo) is compared, but
flagged *shared*: its speed is not a solo figure, and it never counts as slower.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import pandas as pd

from rnnbench.config import TRAIN_SETTINGS
from rnnbench.errors import UsageError
from rnnbench.report.grids import not_solo, place
from rnnbench.report.tables import is_missing

# What makes two runs the same run, whatever ran them.
MATCH_KEYS = [
    "dataset",
    "dataset_sha256",
    "cell",
    "num_layers",
    "size",
    "size_mode",
    "seed",
    "dropout",
    *TRAIN_SETTINGS,
]
MIN_CHANGE = 0.02  # a median step time within 2% is "same", even with tight quartiles


@dataclass(frozen=True)
class Filter:
    """KEY=VALUE (the column's value, as text, equals VALUE) or KEY~TEXT (it contains TEXT)."""

    key: str
    value: str
    contains: bool

    @classmethod
    def parse(cls, text: str) -> Filter:
        for op in ("~", "="):
            key, sep, value = text.partition(op)
            if sep and key.strip() and "=" not in key and "~" not in key:
                return cls(key.strip(), value.strip(), op == "~")
        raise UsageError(f"filter '{text}' is not KEY=VALUE or KEY~TEXT (e.g. device=cuda, hardware~H200)")

    def apply(self, df: pd.DataFrame, side: str) -> pd.DataFrame:
        if self.key not in df:
            raise UsageError(f"{side} filter '{self.key}': no such column (see `rnnbench results export`)")
        text = df[self.key].astype(str)
        return df[text.str.contains(self.value, regex=False) if self.contains else text == self.value]


def finished_sweeps(df: pd.DataFrame, filters: list[Filter], side: str) -> pd.DataFrame:
    """The side's ok sweep runs that pass its filters, each run at most once."""
    rows = df[(df["kind"] == "sweep") & (df["status"] == "ok")] if "kind" in df else df.iloc[0:0]
    for f in filters:
        rows = f.apply(rows, side)
    if rows.empty:
        raise UsageError(f"{side} holds no finished sweep runs{' that pass its filters' if filters else ''}")
    return rows.assign(_key=[match_key(r) for _, r in rows.iterrows()])


def _one_each(rows: pd.DataFrame, other: pd.DataFrame, side: str) -> pd.DataFrame:
    """The side's runs that the other side has too, each at most once."""
    rows = rows[rows._key.isin(set(other._key))]
    twice = rows[rows.duplicated("_key", keep=False)]
    if not twice.empty:
        kinds = "; ".join(sorted(place(twice).unique())[:3])
        raise UsageError(
            f"{side} holds the same run on more than one machine or device ({kinds}): pick one with a "
            f"filter, e.g. --{side.lower()}-filter 'hardware~{twice['hardware'].iloc[0][:12]}'"
        )
    return rows


def match_key(row: pd.Series) -> str:
    """The run's identity without its device and hardware, as text. A setting absent from an older
    row is the default that older code trained with; numbers compare as numbers (1 == 1.0, as a
    column with missing values holds them)."""
    parts = []
    for key in MATCH_KEYS:
        value = row.get(key)
        if is_missing(value) and key in TRAIN_SETTINGS:
            value = TRAIN_SETTINGS[key].default
        if is_missing(value):
            value = None
        elif isinstance(value, numbers.Number) and not isinstance(value, bool):
            value = float(value)
        parts.append(repr(value))
    return "|".join(parts)


def _verdict(base: pd.Series, new: pd.Series, ratio: float, min_change: float, shared: bool) -> str:
    if shared:
        return "shared"
    if any(math.isnan(v) for v in (base.step_ms_q1, base.step_ms_q3, new.step_ms_q1, new.step_ms_q3, ratio)):
        return "unknown"
    if new.step_ms_q3 < base.step_ms_q1 and ratio >= 1 + min_change:
        return "faster"
    if new.step_ms_q1 > base.step_ms_q3 and ratio <= 1 / (1 + min_change):
        return "slower"
    return "same"


def compare_runs(
    base: pd.DataFrame,
    new: pd.DataFrame,
    base_filters: list[Filter] = (),
    new_filters: list[Filter] = (),
    min_change: float = MIN_CHANGE,
) -> pd.DataFrame:
    """One row per run present in both: what ran it on each side, test losses and their change,
    median step times, the speedup (base step time / new step time: above 1 is faster) and the verdict."""
    sides = []
    for df, filters, side in ((base, base_filters, "BASE"), (new, new_filters, "NEW")):
        rows = finished_sweeps(df, list(filters), side)
        sides.append(rows.assign(shared=not_solo(rows)))
    sides = [_one_each(sides[0], sides[1], "BASE"), _one_each(sides[1], sides[0], "NEW")]
    both = sides[0].merge(sides[1], on="_key", suffixes=("_base", "_new"))
    out = []
    for _, r in both.iterrows():
        b = pd.Series({k[:-5]: v for k, v in r.items() if k.endswith("_base")})
        n = pd.Series({k[:-4]: v for k, v in r.items() if k.endswith("_new")})
        ratio = b.step_ms_median / n.step_ms_median if n.step_ms_median else math.nan
        shared = bool(b.shared or n.shared)
        out.append(
            {
                "dataset": b.dataset,
                "cell": b.cell,
                "num_layers": int(b.num_layers),
                "size": int(b["size"]),
                "seed": int(b.seed),
                "base": f"{b.device}: {b.hardware}",
                "new": f"{n.device}: {n.hardware}",
                "base_test_loss_nats": b.test_loss_nats,
                "new_test_loss_nats": n.test_loss_nats,
                "test_loss_change_nats": n.test_loss_nats - b.test_loss_nats,
                "base_step_ms": b.step_ms_median,
                "new_step_ms": n.step_ms_median,
                "base_step_ms_iqr": b.step_ms_q3 - b.step_ms_q1,
                "new_step_ms_iqr": n.step_ms_q3 - n.step_ms_q1,
                "speedup": ratio,
                "verdict": _verdict(b, n, ratio, min_change, shared),
            }
        )
    columns = [
        "dataset",
        "cell",
        "num_layers",
        "size",
        "seed",
        "base",
        "new",
        "base_test_loss_nats",
        "new_test_loss_nats",
        "test_loss_change_nats",
        "base_step_ms",
        "new_step_ms",
        "base_step_ms_iqr",
        "new_step_ms_iqr",
        "speedup",
        "verdict",
    ]
    table = pd.DataFrame(out, columns=columns)
    if table.empty:
        raise UsageError(
            "no run is in both BASE and NEW (a run matches on corpus, cell, depth, size, seed and every "
            "training setting)"
        )
    return table.sort_values(["dataset", "size", "num_layers", "cell", "seed"]).reset_index(drop=True)


def slowdowns(table: pd.DataFrame, limit: float) -> pd.DataFrame:
    """The runs flagged slower whose step time grew by more than `limit` (0.05 = 5%)."""
    return table[(table.verdict == "slower") & (1 / table.speedup - 1 > limit)]


def summary(table: pd.DataFrame) -> str:
    counts = table.verdict.value_counts()
    solo = table[table.verdict != "shared"]
    geo = math.exp(solo.speedup.apply(math.log).mean()) if len(solo) else math.nan
    parts = [f"{counts.get(v, 0)} {v}" for v in ("faster", "slower", "same", "shared", "unknown") if counts.get(v, 0)]
    return (
        f"{len(table)} runs in both: {', '.join(parts)}; speedup NEW over BASE x{geo:.2f} (geometric mean over "
        f"runs measured alone), test loss change {table.test_loss_change_nats.median():+.4f} nats (median)"
    )


def parse_percent(text: str) -> float:
    """'5%' or '0.05' -> 0.05."""
    try:
        value = float(text[:-1]) / 100 if text.strip().endswith("%") else float(text)
    except ValueError:
        raise UsageError(
            f"--fail-if-slower takes a percentage like 5% (or a fraction like 0.05), got '{text}'"
        ) from None
    if value < 0:
        raise UsageError(f"--fail-if-slower must not be negative, got '{text}'")
    return value


def markdown(table: pd.DataFrame, method: str) -> str:
    """The comparison as a markdown section."""
    from rnnbench.report.tables import table as md_table

    body = [
        [
            r.dataset,
            f"{r.cell.upper()} {r.num_layers}x{r.size}",
            str(r.seed),
            f"{r.base_test_loss_nats:.4f}",
            f"{r.new_test_loss_nats:.4f}",
            f"{r.test_loss_change_nats:+.4f}",
            f"{r.base_step_ms:.3g} ± {r.base_step_ms_iqr:.2g}",
            f"{r.new_step_ms:.3g} ± {r.new_step_ms_iqr:.2g}",
            f"x{r.speedup:.2f}",
            r.verdict,
        ]
        for r in table.itertuples()
    ]
    sides = f"BASE: {', '.join(sorted(table.base.unique()))}. NEW: {', '.join(sorted(table.new.unique()))}."
    return "\n".join(
        [
            "# Runs compared",
            "",
            sides,
            "",
            method,
            "",
            summary(table) + ".",
            "",
            md_table(
                [
                    "corpus",
                    "model",
                    "seed",
                    "BASE test nats",
                    "NEW test nats",
                    "change",
                    "BASE step ms (IQR)",
                    "NEW step ms (IQR)",
                    "speedup",
                    "verdict",
                ],
                body,
                ["l", "l", "r", "r", "r", "r", "r", "r", "r", "l"],
            ),
            "",
        ]
    )


def method_text(min_change: float) -> str:
    return (
        f"A run of BASE and NEW match on corpus, cell, depth, size, seed and every training setting. Speedup = "
        f"BASE's median training-step time / NEW's (above 1: NEW is faster). Faster or slower only where the two "
        f"runs' step-time interquartile ranges do not overlap and the medians differ by {min_change:.0%} or more; "
        f"else same. 'shared': one side's throughput was measured beside other runs (not a solo figure)."
    )
