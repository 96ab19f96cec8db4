"""Markdown building blocks of the report: a GitHub table, and what counts as a missing value.

>>> from rnnbench.report.tables import table
>>> print(table(["model", "loss"], [["lstm 1x64", "1.449"]]))
| model | loss |
| --- | ---: |
| lstm 1x64 | 1.449 |
"""

from __future__ import annotations

import math

import pandas as pd


def table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> str:
    """A GitHub markdown table; align holds 'l' or 'r' per column."""
    align = align or ["l"] + ["r"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---:" if a == "r" else "---" for a in align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def is_missing(value) -> bool:
    """None, NaN, pandas' NA or NaT: a value a stored row does not have."""
    if value is None or isinstance(value, (list, tuple, dict, str)):
        return value is None
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return isinstance(value, float) and math.isnan(value)


def when(stamp) -> str:
    """A time stamp as stored (ISO 8601), or '?'."""
    return "?" if is_missing(stamp) else pd.Timestamp(stamp).isoformat()
