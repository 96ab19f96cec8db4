"""The report's figures, returned as functions that draw them, so the caller decides where files go.

>>> import os, tempfile
>>> from rnnbench.results import load
>>> from rnnbench.report.figures import throughput_figure
>>> rows = load("results")                                       # the published rows
>>> draw = throughput_figure(rows[(rows.kind == "sweep") & (rows.dataset == "synthetic")])
>>> path = os.path.join(tempfile.mkdtemp(), "throughput.png")
>>> draw(path)
>>> os.path.getsize(path) > 1000
True
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

from rnnbench.core.models import cell_colour, in_cell_order
from rnnbench.report.grids import Experiment, chosen_dropout, model_name, not_solo, place

FigureFn = Callable[[str], None]  # draws one figure into the PNG file at the given path
# Series styles: a cell's colour, a depth's line style and marker, a size's colour or marker.
LAYER_STYLES = {1: "-", 2: "--", 3: ":"}
LAYER_MARKERS = {1: "o", 2: "s", 3: "^"}
SIZE_COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive"]
SIZE_MARKERS = ["o", "s", "^", "D", "v", "P"]


def _figure(draw, tight: bool = True) -> FigureFn:
    def save(path: str) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig = draw(plt)
        if tight:
            fig.tight_layout()
        fig.savefig(path, dpi=110, metadata={"Software": None}, bbox_inches="tight")  # legends outside stay whole
        plt.close(fig)

    return save


def _fit_losses(ax, values: pd.Series, uniform: float | None, extra: float | None = None) -> None:
    """A loss axis fitted to the data (its lowest value, or `extra` if lower, to its 98th
    percentile or just above the uniform guess, whichever is lower, padded); the uniform-guess
    line is drawn, or named as off the scale."""
    values = values.dropna()
    if values.empty:
        return
    low = min(values.quantile(0.0), extra if extra is not None else math.inf)
    # Above the uniform guess a model has learned nothing: a diverged run is cut off there.
    high = min(values.quantile(0.98), uniform * 1.05 if uniform is not None else math.inf)
    pad = 0.06 * (high - low) + 0.01
    ax.set_ylim(low - pad, high + pad)
    notes = []  # drawn as one block, so that two notes never overlap
    if values.max() > high + pad:
        notes.append("higher values (runs that diverged or lag) cut off")
    if uniform is not None:
        if uniform <= high + pad:
            ax.axhline(uniform, color="grey", linestyle="--", linewidth=0.8)
            ax.text(
                0.01,
                uniform,
                " uniform guess",
                transform=ax.get_yaxis_transform(),
                fontsize=6,
                color="grey",
                va="bottom",
            )
        else:
            notes.append(f"uniform guess ({uniform:.2f} nats) above the axis")
    if notes:
        ax.text(
            0.99,
            0.99,
            "\n".join(notes),
            transform=ax.transAxes,
            fontsize=6,
            ha="right",
            va="top",
            color="grey",
            linespacing=1.3,
        )


def curves_figure(exp: Experiment, curves: pd.DataFrame) -> FigureFn:
    """Validation loss against epoch, a panel per cell: colour by size, line style and marker by
    depth (every series distinct), one legend for all panels. A model tried at several dropout
    values has its runs at the values validation did not choose drawn faint."""
    chosen = exp.rows.groupby(["cell", "num_layers", "size"]).apply(chosen_dropout, include_groups=False)
    not_chosen = exp.rows.apply(
        lambda r: r.dropout != chosen.get((r.cell, r.num_layers, r["size"]), r.dropout), axis=1
    ).rename("not_chosen")
    runs = exp.rows[["run_id", "cell", "num_layers", "size"]].join(not_chosen)
    data = curves.merge(runs, on="run_id").dropna(subset=["val_loss_nats"])
    cells = in_cell_order(runs.cell)
    sizes = sorted(set(runs["size"].astype(int)))
    uniform = _uniform_loss(exp.rows)

    def draw(plt):
        fig, axes = plt.subplots(1, len(cells), figsize=(4.0 * len(cells) + 1.6, 3.6), sharey=True, squeeze=False)
        handles = {}
        for ax, cell in zip(axes[0], cells):
            for (layers, size), points in data[data.cell == cell].groupby(["num_layers", "size"]):
                for _, run in points.groupby("run_id"):
                    label = f"{int(layers)}x{int(size)}"
                    faint = bool(run.not_chosen.iloc[0])
                    (line,) = ax.plot(
                        run.epoch,
                        run.val_loss_nats,
                        color=SIZE_COLOURS[sizes.index(int(size)) % 8],
                        linestyle=LAYER_STYLES.get(int(layers), "-."),
                        marker=LAYER_MARKERS.get(int(layers), "D"),
                        markersize=1.5 if faint else 3,
                        linewidth=0.7 if faint else 1,
                        alpha=0.25 if faint else 0.9,
                    )
                    if not faint:
                        handles.setdefault(label, line)
            ax.set_title(f"{cell.upper()}: validation loss", fontsize=9)
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
        _fit_losses(axes[0][0], data.val_loss_nats, uniform)
        axes[0][0].set_ylabel("nats per character")
        order = sorted(handles, key=lambda k: (int(k.split("x")[0]), int(k.split("x")[1])))
        title = "layers x size" + ("\n(faint: dropout\nnot chosen)" if data.not_chosen.any() else "")
        fig.legend([handles[k] for k in order], order, title=title, fontsize=7, title_fontsize=7, loc="center right")
        fig.subplots_adjust(right=0.86)
        return fig

    return _figure(draw, tight=False)


def _uniform_loss(rows: pd.DataFrame) -> float | None:
    """ln(vocabulary): the loss of a uniform guess, above which a model has learned nothing."""
    vocab = rows.vocab_size.dropna() if "vocab_size" in rows else pd.Series(dtype=float)
    return math.log(float(vocab.iloc[0])) if len(vocab) else None


def loss_vs_params_figure(values: pd.DataFrame, title: str) -> FigureFn:
    ok = values.dropna(subset=["test_loss_nats", "n_params"])
    uniform = _uniform_loss(values)

    def draw(plt):
        fig, ax = plt.subplots(figsize=(7.4, 4.2))
        for (cell, layers), points in ok.groupby(["cell", "num_layers"]):
            points = points.sort_values("n_params")
            ax.plot(
                points.n_params,
                points.test_loss_nats,
                color=cell_colour(cell),
                linestyle=LAYER_STYLES.get(int(layers), "-."),
                marker=LAYER_MARKERS.get(int(layers), "D"),
                label=f"{cell.upper()} {layers} layer{'s' if layers != 1 else ''}",
            )
        ax.set_xscale("log")
        ax.set_xlabel("parameters")
        ax.set_ylabel("test loss, nats per character")
        ax.set_title(title, fontsize=8)
        ax.grid(alpha=0.3)
        _fit_losses(ax, ok.test_loss_nats, uniform)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return fig

    return _figure(draw)


def paper_scatter_figure(joined: pd.DataFrame, title: str) -> FigureFn:
    """Ours against the paper's Table 1, cell by cell, with the y = x line: above it, ours is worse.
    Colour is the cell, the marker the depth, its area the size; a bar spans ours ± its standard
    deviation over seeds where there are several."""
    ok = joined.dropna(subset=["test_loss_nats", "paper_loss_nats"])
    sizes = sorted(int(s) for s in ok["size"].unique())

    def area(size: int) -> float:
        return 26.0 * (1 + sizes.index(size)) ** 1.6  # told apart by eye: each size about twice the last

    def draw(plt):
        fig, ax = plt.subplots(figsize=(5.6, 4.6))
        for (cell, layers), points in ok.groupby(["cell", "num_layers"]):
            ax.scatter(
                points.paper_loss_nats,
                points.test_loss_nats,
                color=cell_colour(cell),
                marker=LAYER_MARKERS.get(int(layers), "D"),
                s=[area(int(s)) for s in points["size"]],
                alpha=0.8,
                edgecolors="black",
                linewidths=0.4,
                label=f"{cell.upper()} {layers} layer{'s' if layers != 1 else ''}",
            )
        spread = ok.dropna(subset=["test_loss_std"]) if "test_loss_std" in ok else ok.iloc[:0]
        if len(spread):
            ax.errorbar(
                spread.paper_loss_nats,
                spread.test_loss_nats,
                yerr=spread.test_loss_std,
                fmt="none",
                ecolor="black",
                elinewidth=0.8,
                capsize=2,
            )
        for size in sizes if len(sizes) > 1 else []:
            ax.scatter([], [], s=area(size), color="white", edgecolors="black", label=f"size {size}")
        both = pd.concat([ok.paper_loss_nats, ok.test_loss_nats])
        low, high = both.min() - 0.05, both.quantile(0.98) + 0.05
        ax.plot([low, high], [low, high], color="black", linewidth=0.8, label="y = x (the paper's value)")
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        ax.set_xlabel("the paper's test loss (Table 1), nats per character")
        ax.set_ylabel("ours, nats per character")
        ax.set_title(f"{title}\nabove the line: ours is higher", fontsize=8)
        ax.grid(alpha=0.3)
        off = ok[ok.test_loss_nats > high]
        if len(off):  # named, with its loss: a model that did not train should not vanish from the picture
            names = ", ".join(
                f"{model_name(r)} at {r.test_loss_nats:.3f} (paper {r.paper_loss_nats:.3f})" for _, r in off.iterrows()
            )
            ax.text(0.02, 0.98, f"above the axis: {names}", transform=ax.transAxes, fontsize=7, va="top", wrap=True)
        legend = ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5), labelspacing=1.0)
        for handle, text in zip(legend.legend_handles, legend.get_texts()):
            if hasattr(handle, "set_sizes") and not text.get_text().startswith("size "):
                handle.set_sizes([30])  # a cell's entry shows its colour and marker, not one size
        return fig

    return _figure(draw)


def device_speedup_figure(bars: pd.DataFrame, baseline: str) -> FigureFn:
    """compare-devices: each device's speedup over the baseline CPU, per model and workload.
    `bars`: workload, model, label, speedup."""
    workloads = [w for w in ("train", "infer", "generate") if w in set(bars.workload)]
    labels = list(dict.fromkeys(bars.label))

    def draw(plt):
        fig, axes = plt.subplots(1, len(workloads), figsize=(4.6 * len(workloads), 4.0), squeeze=False)
        for ax, workload in zip(axes[0], workloads):
            w = bars[bars.workload == workload]
            models = list(dict.fromkeys(w.model))
            width = 0.8 / max(len(labels), 1)
            for i, label in enumerate(labels):
                rows = w[w.label == label].set_index("model")
                xs = [m + (i - (len(labels) - 1) / 2) * width for m in range(len(models))]
                ys = [rows.speedup.get(model, float("nan")) for model in models]
                ax.bar(xs, ys, width=width, color=SIZE_COLOURS[i % 8], label=label)
            ax.axhline(1.0, color="black", linewidth=0.8)
            ax.set_yscale("log")
            ax.set_xticks(range(len(models)), models, rotation=45, ha="right", fontsize=7)
            ax.set_title(f"{workload}: speedup over the baseline", fontsize=9)
            ax.grid(alpha=0.3, axis="y")
        axes[0][0].set_ylabel("x the baseline's characters/s (log scale)")
        fig.suptitle(f"baseline: {baseline}", fontsize=8)
        axes[0][-1].legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return fig

    return _figure(draw)


def throughput_figure(sweeps: pd.DataFrame) -> FigureFn:
    """Training characters/s against size, a panel per hardware (one experiment's figures never mix
    with another machine's), colour by cell and style by depth, error bars the stored IQR."""
    ok = sweeps[sweeps.status == "ok"].dropna(subset=["train_chars_per_s"])
    ok = ok[~not_solo(ok)]  # solo figures only: runs that shared the machine are not plotted
    places = sorted(set(place(ok))) if len(ok) else []

    def draw(plt):
        fig, axes = plt.subplots(1, max(len(places), 1), figsize=(5.2 * max(len(places), 1) + 1.4, 4.0), squeeze=False)
        for ax, where in zip(axes[0], places):
            rows = ok[place(ok) == where]
            for (cell, layers), points in rows.groupby(["cell", "num_layers"]):
                per_size = points.groupby("size").agg(
                    rate=("train_chars_per_s", "median"), iqr=("train_chars_per_s_iqr", "median")
                )
                ax.errorbar(
                    per_size.index.astype(int),
                    per_size.rate,
                    yerr=per_size.iqr.fillna(0) / 2,
                    color=cell_colour(cell),
                    linestyle=LAYER_STYLES.get(int(layers), "-."),
                    marker=LAYER_MARKERS.get(int(layers), "D"),
                    markersize=4,
                    capsize=2,
                    label=f"{cell.upper()} {int(layers)}",
                )
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            sizes = sorted(set(rows["size"].astype(int)))
            ax.set_xticks(sizes, [str(v) for v in sizes])
            ax.set_xlabel("size (as the sweep named it)")
            ax.set_title(where, fontsize=7)
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("training characters/s (median step; bars: IQR)")
        if not places:
            axes[0][0].text(
                0.5,
                0.5,
                "no solo throughput stored: every run shared its machine",
                ha="center",
                transform=axes[0][0].transAxes,
            )
        else:
            axes[0][-1].legend(
                fontsize=7, title="cell, layers", title_fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0)
            )
        return fig

    return _figure(draw)


def loss_vs_time_figure(exp: Experiment, curves: pd.DataFrame, target: float | None) -> FigureFn:
    """Validation loss against training seconds (evaluation excluded), one line per run: colour by
    cell, line style by depth, marker by size; the target loss as a line."""
    runs = exp.rows[["run_id", "cell", "num_layers", "size"]]
    data = curves.merge(runs, on="run_id").dropna(subset=["val_loss_nats", "train_s"])
    sizes = sorted(set(runs["size"].astype(int)))
    uniform = _uniform_loss(exp.rows)

    def draw(plt):
        fig, ax = plt.subplots(figsize=(9.0, 4.6))
        for (cell, layers, size), points in data.groupby(["cell", "num_layers", "size"]):
            for _, run in points.groupby("run_id"):
                run = run.sort_values("train_s")
                ax.plot(
                    run.train_s,
                    run.val_loss_nats,
                    color=cell_colour(cell),
                    linestyle=LAYER_STYLES.get(int(layers), "-."),
                    marker=SIZE_MARKERS[sizes.index(int(size)) % 6],
                    markersize=3,
                    linewidth=1,
                    alpha=0.85,
                    label=f"{cell.upper()} {int(layers)}x{int(size)}",
                )
        if target is not None:
            ax.axhline(target, color="black", linewidth=0.8)
            ax.text(
                0.99,
                target,
                f" target {target:g}",
                transform=ax.get_yaxis_transform(),
                ha="right",
                va="bottom",
                fontsize=7,
            )
        ax.set_xscale("log")
        ax.set_xlabel("training seconds (evaluation excluded), log scale")
        ax.set_ylabel("validation loss, nats per character")
        ax.set_title(f"{exp.title}\nvalidation loss against training time", fontsize=8)
        ax.grid(alpha=0.3)
        _fit_losses(ax, data.val_loss_nats, uniform, target)  # fitted to the curves and the target
        ax.legend(
            fontsize=6,
            ncol=2,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            title="cell depth x size",
            title_fontsize=6,
        )
        return fig

    return _figure(draw)
