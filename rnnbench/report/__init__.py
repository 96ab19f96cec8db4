"""The report, rendered from stored rows only (DataFrames from results.load / load_curves).

    >>> from rnnbench.results import load, load_curves
    >>> from rnnbench.report import render_markdown
    >>> text, figures = render_markdown(load("results"), load_curves("results"))   # the published rows
    >>> text.splitlines()[0], "ngram-orders.png" in figures
    ('# rnnbench report', True)

Nothing here measures anything: every number printed is a value of a stored row, or arithmetic on
such values (a mean, a difference, a ratio, a rank correlation). By concern:
    grids      experiments, loss grids in the paper's layout, the paper's Table 1, findings
    protocol   an experiment's protocol checklist against the paper's and char-rnn's values
    baselines  the n-gram baselines stored beside the runs
    devices    the compare-devices report
    run_pairs  `rnnbench results compare`: the same runs in two folders, side by side
    figures    the figures, as functions that draw them
    speed      time to a target loss, and throughput across hardware
    render     the whole report as markdown, HTML or csv, and writing it to files
    tables     markdown building blocks
"""

from rnnbench.report.devices import device_comparison_markdown, device_label
from rnnbench.report.grids import (
    cell_values,
    experiments,
    findings,
    grid_markdown,
    paper_comparison,
    paper_table,
    spearman,
)
from rnnbench.report.render import render_csv, render_html, render_markdown, write_html, write_markdown
from rnnbench.report.speed import hardware_throughput, parse_targets, time_to_target

__all__ = [
    "cell_values",
    "device_comparison_markdown",
    "device_label",
    "experiments",
    "findings",
    "grid_markdown",
    "hardware_throughput",
    "paper_comparison",
    "paper_table",
    "parse_targets",
    "render_csv",
    "render_html",
    "render_markdown",
    "spearman",
    "time_to_target",
    "write_html",
    "write_markdown",
]
