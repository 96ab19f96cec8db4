"""The report's figures, returned as functions that draw them, so the caller decides where files go.

    >>> from rnnbench.report.figures import throughput_figure
    >>> draw = throughput_figure(sweep_rows)                         # doctest: +SKIP
    >>> draw("throughput.png")                                       # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import Callable

import pandas as pd

from rnnbench.report.grids import CELL_ORDER, Experiment, not_solo

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
    ok = ok[~not_solo(ok)]  # solo figures only: runs that shared the machine are not plotted

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
        if ok.empty:
            ax.text(0.5, 0.5, "no solo throughput stored: every run shared its machine", ha="center",
                    transform=ax.transAxes)
        else:
            ax.legend(fontsize=6, ncol=3)
        return fig
    return _figure(draw)


CELL_COLOURS = {"lstm": "tab:blue", "rnn": "tab:orange", "gru": "tab:green"}
LAYER_STYLES = {1: "-", 2: "--", 3: ":"}
SIZE_MARKERS = ["o", "s", "^", "D", "v", "P"]


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
                ax.plot(run.train_s, run.val_loss_nats, color=CELL_COLOURS.get(cell, "grey"),
                        linestyle=LAYER_STYLES.get(int(layers), "-."), marker=SIZE_MARKERS[sizes.index(int(size)) % 6],
                        markersize=3, linewidth=1, alpha=0.85, label=f"{cell.upper()} {int(layers)}x{int(size)}")
        if target is not None:
            ax.axhline(target, color="black", linewidth=0.8)
            ax.text(0.99, target, f" target {target:g}", transform=ax.get_yaxis_transform(), ha="right", va="bottom",
                    fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel("training seconds (evaluation excluded), log scale")
        ax.set_ylabel("validation loss, nats per character")
        ax.set_title(f"{exp.title}\nvalidation loss against training time", fontsize=8)
        ax.grid(alpha=0.3)
        if len(data):  # fitted to the curves and the target, not to the uniform guess
            low = min(data.val_loss_nats.min(), target if target is not None else math.inf)
            high = min(data.val_loss_nats.quantile(0.98), uniform or math.inf)
            ax.set_ylim(low - 0.05 * (high - low + 0.1), high + 0.05 * (high - low + 0.1))
        ax.legend(fontsize=6, ncol=2, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="cell depth x size",
                  title_fontsize=6)
        return fig
    return _figure(draw)
