"""Pure functions from stored rows (DataFrames from results.load / load_curves) to a report.

    >>> from rnnbench.results import load, load_curves
    >>> from rnnbench.report import render_markdown
    >>> text, figures = render_markdown(load("results"), load_curves("results"))   # doctest: +SKIP

Nothing here measures anything: every number printed is a value of a stored row, or arithmetic on
such values (a mean, a difference, a ratio, a rank correlation). Figures are returned as functions
that draw them, so the caller decides where files go.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from importlib import resources
from typing import Callable

import pandas as pd

MODEL_WORKLOADS = ("train", "infer", "generate")


def _fmt(value, spec: str, missing: str = "-") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    return format(value, spec)


def table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> str:
    """A GitHub markdown table; align holds 'l' or 'r' per column."""
    align = align or ["l"] + ["r"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |",
             "| " + " | ".join("---:" if a == "r" else "---" for a in align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def device_label(row) -> str:
    """How a measurement's device is named in a heading: the device itself, never another."""
    if row["device"] == "cpu":
        label = f"cpu, {int(row['threads'])} thread{'s' if row['threads'] != 1 else ''}"
    else:
        label = f"{row['device']} ({row['gpu_name']})" if isinstance(row.get("gpu_name"), str) else row["device"]
    return label if row["dtype"] == "float32" else f"{label}, {row['dtype']}"


def _model_label(row) -> str:
    return f"{row['cell']} {int(row['num_layers'])}x{int(row['size'])}"


def device_comparison_markdown(df: pd.DataFrame) -> str:
    """The compare-devices report: limits, the three workloads with speedups, the data path."""
    rows = df[df.get("kind", pd.Series(dtype=object)) == "compare"] if "kind" in df else df.iloc[0:0]
    if rows.empty:
        return "# Device comparison\n\nNo compare-devices rows are stored: run `rnnbench compare-devices`.\n"
    rows = rows.sort_values(["device", "threads", "dtype", "size", "num_layers", "cell"], na_position="first").copy()
    rows["label"] = rows.apply(device_label, axis=1)
    ok = rows[rows.status == "ok"]
    first = rows.iloc[0]
    kinds = sorted(set(rows.device))
    gpus = sorted({g for g in rows.get("gpu_name", pd.Series(dtype=object)).dropna()})
    out = ["# Device comparison", ""]
    out.append(f"Measured {rows.started_at.min()} to {rows.finished_at.max()} on host `{first['host']}`: "
               f"CPU {first['cpu_model']} ({first['cpu_cores_logical']} logical cores); "
               f"GPU {', '.join(gpus) if gpus else 'none'}; torch {first['torch_version']}"
               + (f", CUDA {first['cuda_version']}" if isinstance(first.get("cuda_version"), str) else "") + ".")
    if not any(d.startswith("cuda") for d in kinds):
        why = ("CUDA was present but not asked for" if rows.get("cuda_available", pd.Series([False])).any()
               else "this machine has no CUDA device")
        out += ["", f"**Only the CPU was measured**: {why}. No figure below is a GPU figure."]
    out += ["", f"Models: batch {int(first['batch_size'])} x {int(first['seq_len'])} characters of "
            f"`{first['dataset']}`, sizes in {first['size_mode']} mode. Each figure is the median (IQR) of at least "
            "5 blocks timed by torch.utils.benchmark after 3 warm-up calls that are not kept; CUDA is "
            "synchronised around every block. GFLOP/s count matrix products only (see rnnbench.models.flops_per_char); "
            "'of peak' is that over the same device's measured matmul rate in the same dtype and thread count.", ""]

    limits = ok[ok.workload.isin(["matmul", "copy"])]
    if not limits.empty:
        out += ["## Device limits", ""]
        body = []
        for label, group in limits.groupby("label", sort=False):
            mm = group[group.workload == "matmul"].iloc[0] if (group.workload == "matmul").any() else None
            cp = group[group.workload == "copy"].iloc[0] if (group.workload == "copy").any() else None
            body.append([label,
                         "-" if mm is None else f"{mm['gflops']:,.1f} ({mm['gflops_iqr']:,.1f}) at n={int(mm['matmul_n'])}",
                         "-" if cp is None else f"{cp['gb_per_s']:,.1f} ({cp['gb_per_s_iqr']:,.1f})"])
        out += [table(["device", "matmul GFLOP/s (IQR)", "copy GB/s (IQR)"], body), ""]

    models = ok[ok.workload.isin(MODEL_WORKLOADS)]
    labels = list(dict.fromkeys(models.label))
    cpu_rows = models[models.device == "cpu"]
    baseline_label = None
    if not cpu_rows.empty:
        full = cpu_rows[cpu_rows.threads == cpu_rows.threads.max()]
        baseline_label = (full[full.dtype == "float32"] if (full.dtype == "float32").any() else full).label.iloc[0]
    titles = {"train": "Training: characters/s", "infer": "Inference: characters/s",
              "generate": "Generation, batch 1: ms per character"}
    for workload in MODEL_WORKLOADS:
        w = models[models.workload == workload]
        if w.empty:
            continue
        out += [f"## {titles[workload]}", ""]
        if baseline_label:
            out.append(f"Speedup is against {baseline_label} on the same model.")
            out.append("")
        body = []
        for model, group in w.groupby(w.apply(_model_label, axis=1), sort=False):
            by_label = {r.label: r for r in group.itertuples()}
            base = by_label.get(baseline_label)
            cells = [model, f"{int(group.n_params.iloc[0]):,}"]
            for label in labels:
                r = by_label.get(label)
                if r is None:
                    cells.append("-")
                    continue
                if workload == "generate":
                    text = f"{r.ms_per_char:.3f} ({r.ms_per_char_iqr:.3f})"
                else:
                    text = f"{r.chars_per_s:,.0f} ({r.chars_per_s_iqr:,.0f}); {r.achieved_gflops:,.1f} GFLOP/s, {r.matmul_fraction:.0%} of peak"
                if base is not None:
                    text += f"; {r.chars_per_s / base.chars_per_s:.2f}x"
                cells.append(text)
            body.append(cells)
        out += [table(["model", "params", *labels], body), ""]

    transfer = ok[ok.workload.isin(["h2d_pageable", "h2d_pinned"])]
    out += ["## Data path", ""]
    if transfer.empty:
        out.append("No GPU was measured, so no batch crosses a host-device link.")
    else:
        body = []
        for (label, model), group in transfer.groupby([transfer.label, transfer.apply(_model_label, axis=1)], sort=False):
            page = group[group.workload == "h2d_pageable"].iloc[0]
            pin = group[group.workload == "h2d_pinned"].iloc[0]
            body.append([label, model, f"{int(page.batch_bytes):,}", f"{page.time_ms_median:.3f}",
                         f"{pin.time_ms_median:.3f}", f"{page.share_of_train_step:.1%}", f"{pin.share_of_train_step:.1%}"])
        out.append(table(["device", "model", "batch bytes", "pageable ms", "pinned ms",
                          "pageable / train step", "pinned / train step"], body))
    out += ["", "rnnbench keeps the whole corpus on the training device as one tensor and slices each batch "
            "from it, so training moves no input across the host-device link after the first copy.", ""]

    failed = rows[rows.status != "ok"]
    if not failed.empty:
        out += ["## Not measured", ""]
        out.append(table(["device", "model", "workload", "status", "why"],
                         [[r.label, _model_label(r._asdict()) if isinstance(r.cell, str) else "-",
                           r.workload, r.status, str(r.error)] for r in failed.itertuples()]))
        out.append("")
    return "\n".join(out)


# --- the loss grid, side by side with the paper -------------------------------------------------

CELL_ORDER = ("lstm", "rnn", "gru")  # the paper's column order
PAPER_SIZES = (64, 128, 256, 512)
PAPER_DATASETS = ("warpeace", "linux")
DATASET_TITLES = {"warpeace": "War and Peace", "linux": "Linux Kernel", "synthetic": "synthetic"}
# The paper's protocol (../shared/reference/PAPER.md), to tell a budget run from a reproduction.
PAPER_PROTOCOL = {"batch_size": 100, "seq_len": 100, "lr": 0.002, "epochs": 50, "max_steps": None,
                  "max_chars": None, "time_budget_s": None}
# Columns that make one experiment: everything about training except the seed.
EXPERIMENT_KEYS = ["dataset", "size_mode", "device", "batch_size", "seq_len", "lr", "rmsprop_alpha", "lr_decay",
                   "lr_decay_after_epochs", "grad_clip", "dropout", "epochs", "max_steps", "max_chars",
                   "time_budget_s", "eval_every_steps", "patience_evals"]


def paper_table() -> pd.DataFrame:
    """Table 1 of Karpathy, Johnson & Fei-Fei (2015), as published (test loss in nats)."""
    with resources.files("rnnbench").joinpath("karpathy2015_table1.csv").open() as f:
        return pd.read_csv(f)


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


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


def is_paper_protocol(row) -> bool:
    return all((_is_missing(row[k]) and v is None) or row[k] == v for k, v in PAPER_PROTOCOL.items())


@dataclass
class Experiment:
    """Sweep rows that differ only in cell, depth, size and seed."""

    key: tuple
    rows: pd.DataFrame

    @property
    def first(self):
        return self.rows.iloc[0]

    @property
    def slug(self) -> str:
        f = self.first
        digest = hashlib.sha256(repr(self.key).encode()).hexdigest()[:6]  # stable across processes
        return f"{f['dataset']}-{f['device'].replace(':', '')}-{digest}"

    @property
    def title(self) -> str:
        f = self.first
        kind = "the paper's protocol" if is_paper_protocol(f) else "budget run, not the paper's protocol"
        return f"{DATASET_TITLES.get(f['dataset'], f['dataset'])} on {f['device']}: {kind}"


def _threads_text(rows: pd.DataFrame) -> str:
    """How many torch threads the CPU runs trained with: runs merged from several machines or
    executors (a Ray task trains with the CPUs it asked for) may differ, and so does their speed."""
    if "torch_num_threads" not in rows or rows.iloc[0]["device"] != "cpu":
        return ""
    counts = rows.torch_num_threads.dropna().astype(int).value_counts().sort_index()
    if counts.empty:
        return ""
    if len(counts) == 1:
        return f", {counts.index[0]} torch thread{'s' if counts.index[0] != 1 else ''}"
    return ", **torch threads differ between runs**: " + ", ".join(
        f"{n} run{'s' if n != 1 else ''} at {t} thread{'s' if t != 1 else ''}" for t, n in counts.items())


def experiments(df: pd.DataFrame) -> list[Experiment]:
    sweeps = df[df["kind"] == "sweep"] if "kind" in df else df
    if sweeps.empty:
        return []
    keys = [k for k in EXPERIMENT_KEYS if k in sweeps]
    groups = sweeps.groupby(keys, dropna=False, sort=True)
    return [Experiment(tuple(key), rows) for key, rows in groups]


def cell_values(exp: Experiment) -> pd.DataFrame:
    """One row per (cell, layers, size): test loss mean, std and n over seeds, and the status."""
    out = []
    for (cell, layers, size), runs in exp.rows.groupby(["cell", "num_layers", "size"]):
        ok = runs[runs.status == "ok"]
        losses = ok.test_loss_nats.dropna()
        out.append({
            "cell": cell, "num_layers": int(layers), "size": int(size),
            "test_loss_nats": losses.mean() if len(losses) else math.nan,
            "test_loss_std": losses.std() if len(losses) > 1 else math.nan,
            "n_seeds": len(losses),
            "status": "ok" if len(losses) else ", ".join(sorted(set(runs.status))),
            "n_params": int(runs.n_params.iloc[0]) if "n_params" in runs and not _is_missing(runs.n_params.iloc[0]) else None,
            "train_chars_per_s": ok.train_chars_per_s.median() if len(ok) else math.nan,
            "achieved_gflops": ok.achieved_gflops.median() if len(ok) else math.nan,
            "vocab_size": runs.vocab_size.iloc[0] if "vocab_size" in runs else None,
        })
    return pd.DataFrame(out)


def _grid_columns(values: pd.DataFrame) -> list[tuple[str, int]]:
    cells = [c for c in CELL_ORDER if c in set(values.cell)] + sorted(set(values.cell) - set(CELL_ORDER))
    layers = sorted(set(values.num_layers))
    return [(c, n) for c in cells for n in layers]


def grid_markdown(values: pd.DataFrame, column: str, fmt: str, mark_lowest: bool, sizes=None,
                  std_column: str | None = None) -> str:
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
                    text += f" ± {format(getattr(r, std_column), fmt)}"
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
    joined = values.merge(paper[["cell", "num_layers", "size", "paper_loss_nats"]],
                          on=["cell", "num_layers", "size"], how="left")
    joined["diff_nats"] = joined.test_loss_nats - joined.paper_loss_nats
    both = joined.dropna(subset=["test_loss_nats", "paper_loss_nats"])
    stats = {"n": len(both), "mad": both.diff_nats.abs().mean() if len(both) else math.nan,
             "spearman": spearman(both.test_loss_nats, both.paper_loss_nats) if len(both) > 2 else math.nan,
             "worst": both.reindex(both.diff_nats.abs().sort_values(ascending=False).index).head(3)}
    return joined, stats


def findings(values: pd.DataFrame, comparison) -> list[str]:
    """What stands out, as measured facts with their numbers."""
    ok = values.dropna(subset=["test_loss_nats"])
    lines = []
    if ok.empty:
        return ["No run finished with a test loss."]
    for size, group in ok.groupby("size"):
        best = group.loc[group.test_loss_nats.idxmin()]
        lines.append(f"Size {size}: the lowest test loss is {best.cell.upper()} with {best.num_layers} "
                     f"layer{'s' if best.num_layers > 1 else ''}, {best.test_loss_nats:.3f} nats "
                     f"({best.test_loss_nats / math.log(2):.3f} bits) per character.")
    means = ok.groupby("cell").test_loss_nats.mean().sort_values()
    if len(means) > 1:
        lines.append("Mean test loss over the grid by cell: "
                     + ", ".join(f"{c.upper()} {v:.3f}" for c, v in means.items()) + " nats.")
    depth = ok.pivot_table(index=["cell", "size"], columns="num_layers", values="test_loss_nats")
    for deeper in (2, 3):
        if 1 in depth and deeper in depth:
            diff = (depth[deeper] - depth[1]).dropna()
            if len(diff):
                helped = int((diff < 0).sum())
                lines.append(f"{deeper} layers against 1 (same cell and size): lower loss in {helped} of {len(diff)} "
                             f"pairs, median change {diff.median():+.3f} nats.")
    if ok.vocab_size.notna().any():
        uniform = math.log(float(ok.vocab_size.dropna().iloc[0]))
        worse = ok[ok.test_loss_nats > uniform]
        for r in worse.itertuples():
            lines.append(f"{r.cell.upper()} {r.num_layers}x{r.size} ended worse than a uniform guess over the "
                         f"vocabulary ({r.test_loss_nats:.3f} against {uniform:.3f} nats): its training went unstable.")
    not_ok = values[values.status != "ok"]
    if len(not_ok):
        lines.append(f"{len(not_ok)} grid cell(s) have no test loss: "
                     + ", ".join(f"{r.cell.upper()} {r.num_layers}x{r.size} ({r.status})" for r in not_ok.itertuples()) + ".")
    if comparison is not None:
        _, stats = comparison
        if stats["n"]:
            lines.append(f"Against the paper's {stats['n']} published cells: mean absolute difference "
                         f"{stats['mad']:.3f} nats, Spearman rank correlation {stats['spearman']:.2f}.")
    return lines


# --- figures -----------------------------------------------------------------------------------

FigureFn = Callable[[str], None]  # draws one figure into the PNG file at the given path


def _figure(draw) -> FigureFn:
    def save(path: str) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig = draw(plt)
        fig.tight_layout()
        fig.savefig(path, dpi=110, metadata={"Software": None})
        plt.close(fig)
    return save


def curves_figure(exp: Experiment, curves: pd.DataFrame) -> FigureFn:
    runs = exp.rows[["run_id", "cell", "num_layers", "size"]]
    data = curves.merge(runs, on="run_id").dropna(subset=["val_loss_nats"])
    cells = [c for c in CELL_ORDER if c in set(runs.cell)]
    uniform = _uniform_loss(exp.rows)

    def draw(plt):
        fig, axes = plt.subplots(1, len(cells), figsize=(4.2 * len(cells), 3.4), sharey=True, squeeze=False)
        for ax, cell in zip(axes[0], cells):
            for (layers, size), points in data[data.cell == cell].groupby(["num_layers", "size"]):
                for _, run in points.groupby("run_id"):
                    ax.plot(run.epoch, run.val_loss_nats, marker=".", label=f"{int(layers)}x{int(size)}", alpha=0.8)
            ax.set_title(f"{cell.upper()}: validation loss")
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
            _clip_at_uniform(ax, uniform)
        axes[0][0].set_ylabel("nats per character")
        axes[0][-1].legend(fontsize=7, ncol=2)
        return fig
    return _figure(draw)


def _uniform_loss(rows: pd.DataFrame) -> float | None:
    """ln(vocabulary): the loss of a uniform guess, above which a model has learned nothing."""
    vocab = rows.vocab_size.dropna() if "vocab_size" in rows else pd.Series(dtype=float)
    return math.log(float(vocab.iloc[0])) if len(vocab) else None


def _clip_at_uniform(ax, uniform: float | None) -> None:
    """Keep the useful range readable: a run that blew up would flatten every other line."""
    if uniform is None:
        return
    ax.axhline(uniform, color="grey", linestyle="--", linewidth=0.8)
    low = ax.get_ylim()[0]
    if ax.get_ylim()[1] > uniform * 1.15:
        ax.set_ylim(low, uniform * 1.15)
        ax.text(0.01, 0.98, "dashed: uniform guess; higher values cut off", transform=ax.transAxes,
                fontsize=7, va="top", color="grey")


def loss_vs_params_figure(values: pd.DataFrame, title: str) -> FigureFn:
    ok = values.dropna(subset=["test_loss_nats", "n_params"])
    uniform = _uniform_loss(values)

    def draw(plt):
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for (cell, layers), points in ok.groupby(["cell", "num_layers"]):
            points = points.sort_values("n_params")
            ax.plot(points.n_params, points.test_loss_nats, marker="o", label=f"{cell.upper()} {layers}")
        ax.set_xscale("log")
        ax.set_xlabel("parameters")
        ax.set_ylabel("test loss, nats per character")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        _clip_at_uniform(ax, uniform)
        ax.legend(fontsize=7, ncol=3, loc="lower left")
        return fig
    return _figure(draw)


def throughput_figure(sweeps: pd.DataFrame) -> FigureFn:
    ok = sweeps[sweeps.status == "ok"].dropna(subset=["train_chars_per_s"])

    def draw(plt):
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for (device, cell, layers), points in ok.groupby(["device", "cell", "num_layers"]):
            points = points.groupby("size").train_chars_per_s.median()
            ax.plot(points.index, points.values, marker="o", label=f"{device} {cell.upper()} {int(layers)}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        sizes = sorted(set(ok["size"].astype(int)))
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.set_xlabel("size (as the sweep named it; the median over stored runs of each size)")
        ax.set_ylabel("training characters/s (median step)")
        ax.set_title("Training throughput by model size and device", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, ncol=3)
        return fig
    return _figure(draw)


# --- the whole report --------------------------------------------------------------------------


def header_markdown(df: pd.DataFrame) -> list[str]:
    sweeps = df[df.kind == "sweep"]
    out = ["# rnnbench report", "",
           f"Rendered by `rnnbench report` from {len(df)} stored rows ({len(sweeps)} sweep runs, "
           f"{int((df.kind == 'compare').sum())} device measurements). Every number below is a stored "
           "measurement or arithmetic on stored measurements.", "", "## What was run", ""]
    body = []
    for exp in experiments(df):
        f = exp.first
        seeds = sorted({int(x) for x in exp.rows.seed})
        commits = sorted({str(c)[:12] for c in exp.rows.git_commit.dropna()}) if "git_commit" in exp.rows else []
        body.append([DATASET_TITLES.get(f["dataset"], f["dataset"]), f["device"], str(len(exp.rows)),
                     "paper" if is_paper_protocol(f) else "**budget**", budget_text(f),
                     f"{int(f['batch_size'])} x {int(f['seq_len'])}", f"{f['lr']:g}", f"{f['dropout']:g}",
                     f"{f['size_mode']}", ", ".join(map(str, seeds)),
                     f"{exp.rows.started_at.min()[:10]} to {exp.rows.finished_at.max()[:10]}",
                     ", ".join(commits) or "-"])
    if body:
        out += [table(["dataset", "device", "runs", "protocol", "budget", "batch x seq", "lr", "dropout",
                       "sizes", "seeds", "when", "git commit"], body, ["l"] * 12), ""]
        out += ["The paper's protocol is batch 100 x 100, RMSProp 2e-3, up to 50 epochs with early stopping on "
                "validation loss. A **budget** run stops far earlier: its losses say what that budget buys, "
                "not what the paper's models reach.", ""]
    # A run whose Ray task was lost never described its machine.
    machines = df.dropna(subset=["host"]).drop_duplicates(["host", "cpu_model", "gpu_name", "torch_version"])
    out += [table(["host", "CPU", "logical cores", "GPU", "torch", "CUDA", "cuDNN"],
                  [[str(m.host), str(m.cpu_model), str(int(m.cpu_cores_logical)),
                    m.gpu_name if isinstance(m.gpu_name, str) else "none",
                    str(m.torch_version), str(m.cuda_version) if isinstance(m.cuda_version, str) else "-",
                    "-" if _is_missing(m.cudnn_version) else str(int(m.cudnn_version))]
                   for m in machines.itertuples()], ["l"] * 7), ""]
    return out


def render_markdown(df: pd.DataFrame, curves: pd.DataFrame, figures_prefix: str = "figures/") -> tuple[str, dict[str, FigureFn]]:
    """(markdown, {figure file name: draw function}) for every stored row."""
    if df.empty:
        return "# rnnbench report\n\nNo runs are stored yet: run `rnnbench sweep` (and `rnnbench compare-devices`).\n", {}
    figures: dict[str, FigureFn] = {}
    out = header_markdown(df)
    for exp in experiments(df):
        values = cell_values(exp)
        comparison = paper_comparison(exp, values)
        sizes = list(PAPER_SIZES) if comparison is not None else None
        multi_seed = (values.n_seeds > 1).any()
        out += [f"## {exp.title}", "", f"Budget: {budget_text(exp.first)}.", "",
                "### Test loss, nats per character" + (" (mean ± standard deviation over seeds)" if multi_seed else ""),
                "", "The lowest loss in each row is in bold.", "",
                grid_markdown(values, "test_loss_nats", ".3f", True, sizes, "test_loss_std" if multi_seed else None), ""]
        if comparison is not None:
            joined, stats = comparison
            paper = paper_table()
            paper_values = paper[paper.dataset == exp.first["dataset"]].copy()
            paper_values["status"] = ["ok" if pd.notna(v) else "not published" for v in paper_values.test_loss_nats]
            out += ["### The paper (Karpathy, Johnson & Fei-Fei 2015, Table 1)", "",
                    grid_markdown(paper_values, "test_loss_nats", ".3f", True, sizes), "",
                    "### Ours minus the paper", "",
                    grid_markdown(joined.assign(status="ok"), "diff_nats", "+.3f", False, sizes), ""]
            if stats["n"]:
                worst = "; ".join(f"{r.cell.upper()} {r.num_layers}x{r.size} {r.diff_nats:+.3f}" for r in stats["worst"].itertuples())
                out += [f"Over the {stats['n']} cells with both values: mean absolute difference **{stats['mad']:.3f} nats**, "
                        f"Spearman rank correlation **{stats['spearman']:.2f}**. Largest differences: {worst}.", ""]
        out += ["### Training throughput, characters/s (achieved GFLOP/s)", "",
                f"Median step time over each run's timed steps on {exp.first['device']}{_threads_text(exp.rows)}.", ""]
        values["throughput_text"] = [
            "-" if _is_missing(r) else f"{r:,.0f} ({g:,.0f})" for r, g in zip(values.train_chars_per_s, values.achieved_gflops)]
        out += [grid_markdown(values, "throughput_text", "s", False, sizes), ""]
        out += ["### What stands out", ""] + [f"- {line}" for line in findings(values, comparison)] + [""]
        if values.test_loss_nats.notna().any():  # an experiment whose runs all failed has nothing to plot
            curves_name, params_name = f"{exp.slug}-val-curves.png", f"{exp.slug}-loss-vs-params.png"
            figures[curves_name] = curves_figure(exp, curves)
            figures[params_name] = loss_vs_params_figure(values, exp.title)
            out += [f"![validation loss curves]({figures_prefix}{curves_name})", "",
                    f"![test loss against parameters]({figures_prefix}{params_name})", ""]
    sweeps = df[df.kind == "sweep"]
    if not sweeps.empty:
        figures["throughput.png"] = throughput_figure(sweeps)
        out += ["## Throughput by device", "", f"![training throughput]({figures_prefix}throughput.png)", ""]
    if (df.kind == "compare").any():
        device_md = device_comparison_markdown(df).replace("\n## ", "\n### ").replace("# Device comparison", "## Device comparison", 1)
        out += [device_md]
    return "\n".join(out).rstrip() + "\n", figures


def render_csv(df: pd.DataFrame) -> str:
    """The loss grids in long form: one row per experiment and grid cell, with the paper's value."""
    rows = []
    for exp in experiments(df):
        values = cell_values(exp)
        comparison = paper_comparison(exp, values)
        table_ = comparison[0] if comparison is not None else values.assign(paper_loss_nats=math.nan, diff_nats=math.nan)
        f = exp.first
        table_ = table_.assign(dataset=f["dataset"], device=f["device"], size_mode=f["size_mode"],
                               protocol="paper" if is_paper_protocol(f) else "budget", budget=budget_text(f))
        rows.append(table_)
    if not rows:
        return ""
    columns = ["dataset", "device", "protocol", "budget", "size_mode", "cell", "num_layers", "size", "n_params",
               "n_seeds", "status", "test_loss_nats", "test_loss_std", "paper_loss_nats", "diff_nats",
               "train_chars_per_s", "achieved_gflops"]
    return pd.concat(rows)[columns].to_csv(index=False)


def render_html(markdown_text: str, images: dict[str, bytes], figures_prefix: str = "figures/") -> str:
    """The markdown report as one self-contained page: figures inlined as data URIs."""
    import base64

    import markdown as md

    for name, data in images.items():
        uri = "data:image/png;base64," + base64.b64encode(data).decode()
        markdown_text = markdown_text.replace(f"({figures_prefix}{name})", f"({uri})")
    body = md.markdown(markdown_text, extensions=["tables"])
    style = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;line-height:1.45}"
             "table{border-collapse:collapse;margin:1em 0;font-size:90%}th,td{border:1px solid #ccc;padding:3px 7px}"
             "td{text-align:right}td:first-child{text-align:left}img{max-width:100%}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>rnnbench report</title>"
            f"<style>{style}</style></head><body>\n{body}\n</body></html>\n")
