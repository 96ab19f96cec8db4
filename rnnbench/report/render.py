"""The whole report: markdown (with PNG figures), one self-contained HTML page, or the loss grids
as csv, rendered from stored rows, and written to files.

    >>> import tempfile
    >>> from rnnbench.results import load, load_curves
    >>> from rnnbench.report import write_markdown
    >>> rows = load("results")                                    # the published rows
    >>> folder, n = write_markdown(rows[rows.dataset == "synthetic"], load_curves("results"),
    ...                            f"{tempfile.mkdtemp()}/REPORT.md")
    >>> n, folder.name
    (3, 'figures')
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from rnnbench.files import write_atomic
from rnnbench.report.baselines import baselines_markdown, frequency_floor, stored_baseline
from rnnbench.report.devices import device_comparison_markdown, speedup_bars
from rnnbench.report.figures import (
    FigureFn,
    curves_figure,
    device_speedup_figure,
    loss_vs_params_figure,
    loss_vs_time_figure,
    paper_scatter_figure,
    throughput_figure,
)
from rnnbench.report.grids import (
    BUSY_CORES,
    DATASET_TITLES,
    PAPER_PROTOCOL,
    PAPER_SIZES,
    budget_text,
    cell_values,
    concurrent_runs,
    dropout_values,
    experiments,
    findings,
    findings_by_size,
    findings_summary,
    grid_markdown,
    headline_experiments,
    is_paper_protocol,
    model_name,
    not_solo,
    paper_comparison,
    paper_table,
    protocol_text,
    reproduction_headline,
)
from rnnbench.report.kernels import kernels_markdown
from rnnbench.report.protocol import checklist_markdown
from rnnbench.report.speed import default_targets, hardware_markdown, time_to_target, time_to_target_markdown
from rnnbench.report.tables import is_missing as _is_missing
from rnnbench.report.tables import table, when
from rnnbench.results.metrics import METRICS


def protocol_cell(exp) -> str:
    """The protocol column: the paper's, the paper's cut short in time, or a budget run; and how
    many runs shared the device, when more than one did."""
    text = (
        "paper"
        if exp.protocol == "paper"
        else "**budget**"
        if exp.protocol == "budget"
        else f"**paper, cut at {exp.first['time_budget_s']:g} s**"
    )
    return text + (f"; **up to {exp.most_at_once} runs at once on one device**" if exp.most_at_once > 1 else "")


def baseline_of(df: pd.DataFrame):
    """The n-gram baseline an experiment is held against: its corpus's, under its layout."""
    return lambda exp: stored_baseline(df, exp.first["dataset"], exp.first["split"])


def floor_of(df: pd.DataFrame):
    """The loss of the characters' frequencies alone (the stored 1-gram) for an experiment's corpus
    and layout: a model no lower learned nothing from the context."""
    return lambda exp: frequency_floor(df, exp.first["dataset"], exp.first["split"])


def layout_text(row) -> str:
    """How a run's text was split, in words: 'chunked 80/10/10'."""
    t, v = float(row["train_fraction"]), float(row["val_fraction"])
    return f"{row['split']} {100 * t:g}/{100 * v:g}/{100 * (1 - t - v):g}"


def headline_markdown(df: pd.DataFrame, prefix: str = "figures/") -> Lines:
    """Table 1 as reproduced so far, a line per corpus (README.md quotes these lines), and each
    corpus's cells against the paper's in one figure of a name that does not change (README shows it)."""
    lines = reproduction_headline(df, floor_of(df))
    if not lines:
        return glance_markdown(df), {}
    out, figures = ["## Table 1 reproduced", ""] + [f"- {line}" for line in lines] + [""], {}
    for dataset, exp, joined, _ in headline_experiments(df):
        name = f"table1-{dataset}.png"
        figures[name] = paper_scatter_figure(joined, exp.title)
        out += [f"![{DATASET_TITLES[dataset]}: ours against the paper's Table 1]({prefix}{name})", ""]
    return out + glance_markdown(df), figures


def glance_markdown(df: pd.DataFrame) -> list[str]:
    """The rest of what a reader came for, in a few lines: per corpus the best model of the headline's
    experiment against the n-gram, and per model size the fastest hardware."""
    lines = []
    for dataset, exp, _, _ in headline_experiments(df):  # the experiment each corpus's headline is of
        ok = exp.rows.dropna(subset=["test_loss_nats"])
        baseline = baseline_of(df)(exp)
        if ok.empty or baseline is None:
            continue
        best = ok.loc[ok.test_loss_nats.idxmin()]
        order, loss, _ = baseline
        lines.append(
            f"{DATASET_TITLES[dataset]}: the best of its models trained under the paper's protocol so far, "
            f"{model_name(best)} ({best.test_loss_nats:.3f} nats), "
            f"{'beats' if best.test_loss_nats < loss else 'does not beat'} the {order}-gram of the same layout "
            f"({loss:.3f})."
        )
    lines += fastest_lines(df)
    return ["## At a glance", ""] + [f"- {line}" for line in lines] + [""] if lines else []


def fastest_lines(df: pd.DataFrame) -> list[str]:
    """Per model size (the paper's batch and sequence): the hardware with the highest median training
    throughput over its solo runs of that size."""
    sweeps = df[(df.kind == "sweep") & df.train_chars_per_s.notna()]
    if sweeps.empty or "batch_size" not in sweeps:  # a folder of other rows only
        return []
    sweeps = sweeps[(sweeps.batch_size == PAPER_PROTOCOL["batch_size"]) & (sweeps.seq_len == PAPER_PROTOCOL["seq_len"])]
    if sweeps.empty:
        return []
    sweeps = sweeps.assign(concurrent_runs=concurrent_runs(sweeps))
    solo = sweeps[~not_solo(sweeps)].assign(where=lambda d: d.device + ": " + d.hardware)
    out = []
    for size, rows in solo.groupby("size"):
        rates = rows.groupby("where").train_chars_per_s.median().sort_values(ascending=False)
        if len(rates) < 2:
            continue
        out.append(
            f"Size {int(size)}: the fastest hardware is {rates.index[0]}, a median {rates.iloc[0]:,.0f} training "
            f"characters/s over its solo runs of that size ({rates.iloc[0] / rates.iloc[1]:.1f}x {rates.index[1]})."
        )
    return out


def kernel_rows_text(df: pd.DataFrame) -> str:
    n = int((df.kind == "kernel").sum())
    return f", {n} layer timings" if n else ""


def header_markdown(df: pd.DataFrame, prefix: str = "figures/") -> Lines:
    """The report's head: what it is made of, the headline, the findings, what was run and on what."""
    sweeps = df[df.kind == "sweep"]
    headline, figures = headline_markdown(df, prefix)
    lines = (
        [
            "# rnnbench report",
            "",
            f"Rendered by `rnnbench report` from {len(df)} stored rows ({len(sweeps)} sweep runs, "
            f"{int((df.kind == 'compare').sum())} device measurements{kernel_rows_text(df)}). Every number below "
            "is a stored measurement or arithmetic on stored measurements.",
            "",
        ]
        + headline
        + findings_summary(df, baseline_of(df))
        + ["## What was run", ""]
        + experiments_markdown(df)
        + machines_markdown(df)
    )
    return lines, figures


EXPERIMENT_COLUMNS = (
    "dataset",
    "hardware",
    "runs",
    "protocol",
    "budget",
    "layout",
    "batch x seq",
    "lr",
    "dropout",
    "sizes",
    "seeds",
    "when",
    "git commit",
)


def experiment_row(exp) -> list[str]:
    """One experiment's line of "What was run"."""
    f = exp.first
    seeds = sorted({int(x) for x in exp.rows.seed})
    # 12 hex digits, and whether the checkout had uncommitted changes
    commits = (
        sorted({str(c)[:12] + ("-dirty" if str(c).endswith("-dirty") else "") for c in exp.rows.git_commit.dropna()})
        if "git_commit" in exp.rows
        else []
    )
    return [
        DATASET_TITLES.get(f["dataset"], f["dataset"]),
        f"{f['device']}: {f['hardware']}",
        str(len(exp.rows)),
        protocol_cell(exp),
        budget_text(f),
        layout_text(f),
        f"{int(f['batch_size'])} x {int(f['seq_len'])}",
        f"{f['lr']:g}",
        ", ".join(f"{d:g}" for d in dropout_values(exp)),
        f"{f['size_mode']}",
        ", ".join(map(str, seeds)),
        f"{when(exp.rows.started_at.min())[:10]} to {when(exp.rows.finished_at.max())[:10]}",
        ", ".join(commits) or "-",
    ]


def experiments_markdown(df: pd.DataFrame) -> list[str]:
    """A line per experiment, and what a budget run is."""
    body = [experiment_row(exp) for exp in experiments(df)]
    if not body:
        return []
    return [
        table(list(EXPERIMENT_COLUMNS), body, ["l"] * len(EXPERIMENT_COLUMNS)),
        "",
        f"The paper's protocol is {protocol_text()} with early stopping on "
        "validation loss. A **budget** run stops far earlier: its losses say what that budget buys, "
        "not what the paper's models reach.",
        "",
    ]


def machines_markdown(df: pd.DataFrame) -> list[str]:
    """A line per machine that made rows."""
    # A run whose Ray task was lost never described its machine.
    machines = df.dropna(subset=["host"]).drop_duplicates(["host", "cpu_model", "gpu_name", "torch_version"])
    return [
        table(
            ["host", "CPU", "logical cores", "GPU", "torch", "CUDA", "cuDNN"],
            [
                [
                    str(m.host),
                    str(m.cpu_model),
                    "-" if _is_missing(m.cpu_cores_logical) else str(int(m.cpu_cores_logical)),
                    m.gpu_name if isinstance(m.gpu_name, str) else "none",
                    str(m.torch_version),
                    str(m.cuda_version) if isinstance(m.cuda_version, str) else "-",
                    "-" if _is_missing(m.cudnn_version) else str(int(m.cudnn_version)),
                ]
                for m in machines.itertuples()
            ],
            ["l"] * 7,
        ),
        "",
    ]


def shared_note(exp) -> str:
    """The footnote of throughput that is not a solo figure."""
    rows = exp.rows
    recorded = int(rows["runs_sharing_device"].fillna(1).max()) if "runs_sharing_device" in rows else 1
    most = max(recorded, exp.most_at_once)
    return (
        f"† Not a solo figure: every run of this cell was timed while other work shared its machine (up to "
        f"{most} runs at once on the device, or other processes keeping {BUSY_CORES:g} or more CPU cores "
        "busy). Such throughput says what the machine gave under that load, not what the model runs at alone."
    )


def seed_spread_markdown(values: pd.DataFrame) -> list[str]:
    """How far seeds alone move a cell's test loss: the yardstick for a difference from the paper."""
    spread = values.dropna(subset=["test_loss_std"])
    if spread.empty:
        return []
    cells = ", ".join(
        f"{r.cell.upper()} {r.num_layers}x{r.size} {r.test_loss_std:.3f} ({r.n_seeds} seeds)"
        for r in spread.itertuples()
    )
    return [
        f"Seed spread (standard deviation of the test loss over seeds, same model and settings): {cells}. "
        f"A difference from the paper within about twice a cell's spread is not distinguishable from the choice "
        "of seed (the paper reports one run per cell).",
        "",
    ]


def dropout_markdown(exp, values: pd.DataFrame, sizes) -> list[str]:
    """With several dropout values: which won each model on validation, and every value's grid."""
    choices = dropout_values(exp)
    if len(choices) < 2:
        return []
    listed = ", ".join(f"{d:g}" for d in choices)
    out = [
        f"Each model's test loss is that of the dropout value, among {listed}, with the lowest mean validation "
        "loss, as the paper chose dropout per model on validation. The value that won:",
        "",
        grid_markdown(
            values.assign(dropout_text=[f"{d:g}" for d in values.dropout]), "dropout_text", "s", False, sizes
        ),
        "",
        "### Test loss by dropout",
        "",
    ]
    for d in choices:
        out += [f"Dropout {d:g}:", "", grid_markdown(cell_values(exp, d), "test_loss_nats", ".3f", True, sizes), ""]
    return out


@dataclass
class Page:
    """What every section of the report reads: the rows, the curves, where figures go, and the options."""

    df: pd.DataFrame
    curves: pd.DataFrame
    prefix: str  # of figure links
    targets: dict[str, float]
    baseline_hardware: str | None

    def baseline_of(self, exp):
        return baseline_of(self.df)(exp)

    def floor_of(self, exp):
        return floor_of(self.df)(exp)


@dataclass
class ExperimentView:
    """One experiment as its parts see it: its grid values, the paper's beside them, and the target
    of its time-to-target section."""

    exp: object
    values: pd.DataFrame
    comparison: tuple | None
    sizes: list | None
    multi_seed: bool
    target: float | None

    @classmethod
    def of(cls, exp, page: Page) -> ExperimentView:
        values = cell_values(exp)
        comparison = paper_comparison(exp, values)
        target = page.targets.get(exp.first["dataset"])
        if target is not None and time_to_target(exp, page.curves, target) is None:
            target = None  # curves without a clock: no time to target, no figure of it
        return cls(
            exp,
            values,
            comparison,
            list(PAPER_SIZES) if comparison is not None else None,
            bool((values.n_seeds > 1).any()),
            target,
        )


Lines = tuple[list[str], dict[str, FigureFn]]  # what a section gives: its markdown lines and its figures


def loss_part(page: Page, v: ExperimentView) -> Lines:
    exp = v.exp
    return [
        f"## {exp.title}",
        "",
        f"Budget: {budget_text(exp.first)}."
        + (
            f" Up to {exp.most_at_once} of these runs trained at once on this device (from their start and "
            "finish times): their losses are what that bought, and their throughput is not a solo figure."
            if exp.most_at_once > 1
            else ""
        ),
        "",
        "### Test loss, nats per character" + (" (mean ± standard deviation over seeds)" if v.multi_seed else ""),
        "",
        "The lowest loss in each row is in bold.",
        "",
        grid_markdown(v.values, "test_loss_nats", ".3f", True, v.sizes, "test_loss_std" if v.multi_seed else None),
        "",
    ], {}


PAPER_PRESETS = {"warpeace": "paper", "linux": "paper-linux"}  # the campaign of each paper corpus


def campaign_part(page: Page, v: ExperimentView) -> Lines:
    """How much of the paper preset's grid a paper-protocol experiment holds: its runs stored, the
    models with every dropout value, and those models' grid with the dropout validation chose."""
    from rnnbench.config import load_preset

    exp = v.exp
    preset = PAPER_PRESETS.get(exp.first["dataset"])
    if v.comparison is None or exp.protocol == "budget" or preset is None:
        return [], {}
    grid = load_preset(preset)
    wanted = {(c, n, z, float(d)) for c in grid.cells for n in grid.layers for z in grid.sizes for d in grid.dropout}
    rows = exp.rows[exp.rows.status.isin(("ok", "diverged"))]
    have = {(r.cell, int(r.num_layers), int(r.size), float(r.dropout)) for r in rows.itertuples()} & wanted
    models = {(c, n, z) for c, n, z, _ in wanted}
    complete = {m for m in models if all((*m, float(d)) in have for d in grid.dropout)}
    values = ", ".join(f"{d:g}" for d in grid.dropout)
    out = [
        "### The paper grid so far",
        "",
        f"{len(have)} of {len(wanted)} runs of the `{preset}` preset's grid are stored ({len(models)} models x "
        f"dropout {values}), for one seed; {len(complete)} of {len(models)} models have every dropout value"
        + (", and their grid, with the value validation chose, is:" if complete else "."),
        "",
    ]
    if complete:
        keep = v.values[[(r.cell, r.num_layers, r.size) in complete for r in v.values.itertuples()]]
        out += [grid_markdown(keep, "test_loss_nats", ".3f", True, v.sizes), ""]
    return out, {}


def checklist_part(page: Page, v: ExperimentView) -> Lines:
    return (checklist_markdown(v.exp) if v.comparison is not None and v.exp.protocol != "budget" else []), {}


def dropout_part(page: Page, v: ExperimentView) -> Lines:
    return dropout_markdown(v.exp, v.values, v.sizes), {}


def paper_part(page: Page, v: ExperimentView) -> Lines:
    if v.comparison is None:
        return [], {}
    joined, stats = v.comparison
    paper = paper_table()
    paper_values = paper[paper.dataset == v.exp.first["dataset"]].copy()
    paper_values["status"] = ["ok" if pd.notna(x) else "not published" for x in paper_values.test_loss_nats]
    out = [
        "### The paper (Karpathy, Johnson & Fei-Fei 2015, Table 1)",
        "",
        grid_markdown(paper_values, "test_loss_nats", ".3f", True, v.sizes),
        "",
        "### Ours minus the paper" + (" (± the standard deviation of ours over seeds)" if v.multi_seed else ""),
        "",
        grid_markdown(
            joined.assign(status="ok"), "diff_nats", "+.3f", False, v.sizes, "test_loss_std" if v.multi_seed else None
        ),
        "",
    ]
    out += seed_spread_markdown(v.values)
    if stats["n"]:
        worst = "; ".join(
            f"{r.cell.upper()} {r.num_layers}x{r.size} {r.diff_nats:+.3f}" for r in stats["worst"].itertuples()
        )
        rank = (  # computed from three cells on (grids.paper_comparison)
            f"Spearman rank correlation **{stats['spearman']:.2f}**"
            if math.isfinite(stats["spearman"])
            else "no rank correlation (it needs three cells)"
        )
        cells = f"{stats['n']} cell{'s' if stats['n'] != 1 else ''}"
        out += [
            f"Over the {cells} with both values: mean absolute difference **{stats['mad']:.3f} nats**, "
            f"{rank}. Largest differences: {worst}.",
            "",
        ]
    return out, {}


def throughput_part(page: Page, v: ExperimentView) -> Lines:
    exp, values = v.exp, v.values
    text = [
        "-" if _is_missing(r) else f"{r:,.0f} ({g:,.0f})" + (" †" if shared else "")
        for r, g, shared in zip(values.train_chars_per_s, values.achieved_gflops, values.throughput_shared)
    ]
    out = [
        "### Training throughput, characters/s (achieved GFLOP/s)",
        "",
        f"Median step time over each run's timed steps on {exp.first['device']} ({exp.first['hardware']}).",
        "",
        grid_markdown(values.assign(throughput_text=text), "throughput_text", "s", False, v.sizes),
        "",
    ]
    return out + ([shared_note(exp), ""] if values.throughput_shared.any() else []), {}


def energy_part(page: Page, v: ExperimentView) -> Lines:
    """Energy per training character, where the rows have it from the device's own counter."""
    values, rows = v.values, v.exp.rows
    if not values.joules_per_char.notna().any():
        return [], {}
    text = [
        "-" if _is_missing(j) else f"{j * 1e3:,.3f}" + (" †" if shared else "")
        for j, shared in zip(values.joules_per_char, values.throughput_shared)
    ]
    scopes = sorted({s for s in rows.get("energy_scope", pd.Series(dtype=object)).dropna()})
    out = [
        "### Energy, millijoules per training character",
        "",
        "The device's own energy counter over each whole run (training, evaluation and checkpoints), over "
        f"the characters it trained on; the counter counts {'; '.join(scopes)}.",
        "",
        grid_markdown(values.assign(energy_text=text), "energy_text", "s", False, v.sizes),
        "",
    ]
    return out + ([shared_note(v.exp), ""] if values.throughput_shared.any() else []), {}


def time_to_target_part(page: Page, v: ExperimentView) -> Lines:
    return time_to_target_markdown(v.exp, page.curves, page.targets, v.sizes)[0], {}


def findings_part(page: Page, v: ExperimentView) -> Lines:
    baseline = page.baseline_of(v.exp)
    lines = findings(v.values, v.comparison, baseline, page.floor_of(v.exp))
    out = ["### What stands out", ""] + [f"- {line}" for line in lines] + [""]
    by_size = findings_by_size(v.values, v.comparison, baseline)
    if by_size and v.comparison is not None:
        out += [
            "The paper's findings size by size, each tested on our models and, after the slash, on the "
            "paper's values of the same cells (Table 1): depth helps (the better of 2 and 3 layers below "
            "1 layer, per cell), LSTM and GRU both below the vanilla RNN (per depth), and our best model "
            "against the n-gram baseline"
            + (f" ({baseline[0]}-gram, {baseline[1]:.3f} nats)." if baseline is not None else " (none stored)."),
            "",
            table(
                ["size", "models", "MAD", "depth >= 2 helps", "LSTM and GRU beat RNN", "best", "beats the n-gram"],
                by_size,
                ["r", "l", "r", "l", "l", "l", "l"],
            ),
            "",
        ]
    return out, {}


def figures_part(page: Page, v: ExperimentView) -> Lines:
    exp = v.exp
    if not v.values.test_loss_nats.notna().any():  # an experiment whose runs all failed has nothing to plot
        return [], {}
    figures = {
        f"{exp.slug}-val-curves.png": ("validation loss curves", curves_figure(exp, page.curves)),
        f"{exp.slug}-loss-vs-params.png": ("test loss against parameters", loss_vs_params_figure(v.values, exp.title)),
    }
    if v.comparison is not None and v.comparison[1]["n"]:
        figures[f"{exp.slug}-vs-paper.png"] = (
            "ours against the paper's Table 1",
            paper_scatter_figure(v.comparison[0], exp.title),
        )
    if v.target is not None:
        figures[f"{exp.slug}-loss-vs-time.png"] = (
            "validation loss against training time",
            loss_vs_time_figure(exp, page.curves, v.target),
        )
    lines = [line for name, (alt, _) in figures.items() for line in (f"![{alt}]({page.prefix}{name})", "")]
    return lines, {name: draw for name, (_, draw) in figures.items()}


# An experiment's sections, in order: a new one is a function and an entry here.
EXPERIMENT_PARTS = [
    loss_part,
    campaign_part,
    checklist_part,
    dropout_part,
    paper_part,
    throughput_part,
    energy_part,
    time_to_target_part,
    findings_part,
    figures_part,
]


def header_section(page: Page) -> Lines:
    return header_markdown(page.df, page.prefix)


def baselines_section(page: Page) -> Lines:
    return baselines_markdown(page.df, page.prefix)


def experiments_section(page: Page) -> Lines:
    out, figures, under_heading = [], {}, False
    for exp in experiments(page.df):
        if exp.protocol != "paper" and not under_heading:
            under_heading = True
            out += [
                "## Shorter runs: not the paper's protocol",
                "",
                "The experiments from here on stop far earlier than the paper's protocol (a budget of steps, "
                "characters or wall time): their losses say what that budget buys, not what the paper's models reach.",
                "",
            ]
        view = ExperimentView.of(exp, page)
        for part in EXPERIMENT_PARTS:
            lines, drawn = part(page, view)
            out += lines
            figures |= drawn
    return out, figures


def throughput_section(page: Page) -> Lines:
    sweeps = page.df[page.df.kind == "sweep"]
    if sweeps.empty:
        return [], {}
    figure = throughput_figure(sweeps.assign(concurrent_runs=concurrent_runs(sweeps)))
    return ["## Throughput by device", "", f"![training throughput]({page.prefix}throughput.png)", ""], {
        "throughput.png": figure
    }


def hardware_section(page: Page) -> Lines:
    return hardware_markdown(page.df, page.baseline_hardware), {}


def devices_section(page: Page) -> Lines:
    if not (page.df.kind == "compare").any():
        return [], {}
    text = (
        device_comparison_markdown(page.df)
        .replace("\n## ", "\n### ")
        .replace("# Device comparison", "## Device comparison", 1)
    )
    bars = speedup_bars(page.df)
    if bars is None:
        return [text], {}
    return (
        [text, "", f"![speedup of each device over the baseline CPU]({page.prefix}device-speedup.png)", ""],
        {"device-speedup.png": device_speedup_figure(*bars)},
    )


def kernels_section(page: Page) -> Lines:
    return kernels_markdown(page.df, page.prefix)


# The report's sections, in order: a new section is a function and an entry here.
REPORT_SECTIONS = [
    header_section,
    baselines_section,
    experiments_section,
    throughput_section,
    hardware_section,
    devices_section,
    kernels_section,
]


def render_markdown(
    df: pd.DataFrame,
    curves: pd.DataFrame,
    figures_prefix: str = "figures/",
    targets: dict[str, float] | None = None,
    baseline_hardware: str | None = None,
) -> tuple[str, dict[str, FigureFn]]:
    """(markdown, {figure file name: draw function}) for every stored row. `targets`: target
    validation loss per corpus for the time to target (over the defaults, speed.default_targets);
    `baseline_hardware`: text naming the hardware the cross-hardware speedups are against."""
    if df.empty:
        return (
            "# rnnbench report\n\nNo runs are stored yet: run `rnnbench sweep` (and `rnnbench compare-devices`).\n",
            {},
        )
    page = Page(df, curves, figures_prefix, default_targets() | (targets or {}), baseline_hardware)
    out, figures = [], {}
    for section in REPORT_SECTIONS:
        lines, drawn = section(page)
        out += lines
        figures |= drawn
    return "\n".join(with_contents(out)).rstrip() + "\n", figures


def anchor(heading: str, seen: dict[str, int]) -> str:
    """The link target GitHub (and markdown's toc) gives a heading: lower case, punctuation
    dropped, spaces as dashes, a repeat numbered."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
    count = seen.get(slug, 0)
    seen[slug] = count + 1
    return f"{slug}-{count}" if count else slug


SUMMARY_HEADINGS = ("## Table 1 reproduced", "## At a glance")  # what a reader came for: before the contents


def with_contents(lines: list[str]) -> list[str]:
    """The report with a list of its sections (its ## headings, linked) after its first paragraph
    and the summary sections (SUMMARY_HEADINGS), so that the first screen shows results."""
    lines = "\n".join(lines).split("\n")  # a section may hand over a block of several lines as one
    seen: dict[str, int] = {}
    headings = [(line[3:], anchor(line[3:], seen)) for line in lines if line.startswith("## ")]
    if len(headings) < 3:
        return lines
    rest = [i for i, line in enumerate(lines) if line.startswith("## ") and line not in SUMMARY_HEADINGS]
    at = rest[0] if rest else len(lines)
    contents = ["**Contents**", ""] + [f"- [{text}](#{target})" for text, target in headings] + [""]
    return lines[:at] + contents + lines[at:]


def render_csv(df: pd.DataFrame) -> str:
    """The loss grids in long form: one row per experiment, grid cell and dropout value, with the
    paper's value; `chosen` marks the dropout value each model's validation loss chose."""
    rows = []
    for exp in experiments(df):
        chosen = cell_values(exp).set_index(["cell", "num_layers", "size"]).dropout
        for dropout in dropout_values(exp) or [None]:
            values = cell_values(exp, dropout)
            comparison = paper_comparison(exp, values)
            table_ = (
                comparison[0] if comparison is not None else values.assign(paper_loss_nats=math.nan, diff_nats=math.nan)
            )
            f = exp.first
            picked = [chosen.get((r.cell, r.num_layers, r.size)) == r.dropout for r in table_.itertuples()]
            table_ = table_.assign(
                dataset=f["dataset"],
                device=f["device"],
                size_mode=f["size_mode"],
                protocol="paper" if is_paper_protocol(f) else "budget",
                budget=budget_text(f),
                chosen=picked,
            )
            rows.append(table_)
    if not rows:
        return ""
    columns = [
        "dataset",
        "device",
        "protocol",
        "budget",
        "size_mode",
        "cell",
        "num_layers",
        "size",
        "n_params",
        "dropout",
        "chosen",
        "n_seeds",
        "status",
        "test_loss_nats",
        "test_loss_std",
        "paper_loss_nats",
        "diff_nats",
        "train_chars_per_s",
        "achieved_gflops",
    ]
    table_ = pd.concat(rows)
    columns += [m for m in METRICS if m in table_.columns and m not in columns]  # a metric declared since
    return table_[columns].to_csv(index=False)


def render_html(markdown_text: str, images: dict[str, bytes], figures_prefix: str = "figures/") -> str:
    """The markdown report as one self-contained page: figures inlined as data URIs."""
    import base64

    import markdown as md

    for name, data in images.items():
        uri = "data:image/png;base64," + base64.b64encode(data).decode()
        markdown_text = markdown_text.replace(f"({figures_prefix}{name})", f"({uri})")
    body = md.markdown(markdown_text, extensions=["tables"])
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;line-height:1.45}"
        "table{border-collapse:collapse;margin:1em 0;font-size:90%}th,td{border:1px solid #ccc;padding:3px 7px}"
        "td{text-align:right}td:first-child{text-align:left}img{max-width:100%}"
    )
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>rnnbench report</title>'
        f"<style>{style}</style></head><body>\n{body}\n</body></html>\n"
    )


def write_markdown(
    df: pd.DataFrame, curves: pd.DataFrame, out: str | Path, figures_dir: str | Path | None = None, **options
) -> tuple[Path, int]:
    """Write the markdown report to `out` and its figures as PNG files (by default in figures/
    beside it), linked relative to the report; returns (the figures' folder, how many).
    `options`: render_markdown's targets and baseline_hardware."""
    out = Path(out)
    figures_dir = Path(figures_dir) if figures_dir is not None else out.parent / "figures"
    prefix = os.path.relpath(figures_dir, out.parent).replace(os.sep, "/") + "/"
    text, figures = render_markdown(df, curves, figures_prefix=prefix, **options)
    figures_dir.mkdir(parents=True, exist_ok=True)
    for name, draw in figures.items():
        draw(str(figures_dir / name))
    write_atomic(out, text.encode())
    return figures_dir, len(figures)


def write_html(df: pd.DataFrame, curves: pd.DataFrame, out: str | Path, **options) -> None:
    """Write the report as one self-contained HTML page: its figures drawn and inlined."""
    prefix = "figures/"
    text, figures = render_markdown(df, curves, figures_prefix=prefix, **options)
    with tempfile.TemporaryDirectory() as tmp:
        images = {}
        for name, draw in figures.items():
            draw(os.path.join(tmp, name))
            images[name] = Path(tmp, name).read_bytes()
    write_atomic(out, render_html(text, images, prefix).encode())
