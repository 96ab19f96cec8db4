"""The n-gram baselines in the report: per corpus, layout and smoothing, the loss of every order
on validation and test, the order validation picks, and the paper's 20-gram beside them.

    >>> from rnnbench.results import load
    >>> from rnnbench.report.baselines import frequency_floor, stored_baseline
    >>> order, loss, smoothing = stored_baseline(load("results"), "warpeace", "chunked")   # the published rows
    >>> order, round(loss, 3), smoothing.split(",")[0]
    (20, 1.192, 'modified Kneser-Ney')
    >>> round(frequency_floor(load("results"), "warpeace", "chunked"), 3)   # no context: the 1-gram
    3.121
"""

from __future__ import annotations

import pandas as pd

from rnnbench.report.figures import FigureFn, _figure
from rnnbench.report.grids import DATASET_TITLES, paper_baselines
from rnnbench.report.tables import is_missing, table

PAPER_ORDER = 20  # the paper's baseline is a 20-gram model


def baseline_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The stored n-gram rows, each with its `layout` in words. Rows stored before baselines had a
    layout were counted on the contiguous 80/10/10 split, with a byte's history taken from the
    whole file."""
    rows = df[df["kind"] == "baseline"].copy() if "kind" in df else df.iloc[0:0].copy()
    if rows.empty:
        return rows
    for column, before in (("split", "contiguous"), ("train_fraction", 0.8), ("val_fraction", 0.1)):
        rows[column] = rows[column].fillna(before) if column in rows else before
    rows["layout"] = [
        f"{s} {100 * t:g}/{100 * v:g}/{100 * (1 - t - v):g}"
        for s, t, v in zip(rows.split, rows.train_fraction, rows.val_fraction)
    ]
    if "val_loss_nats" not in rows:
        rows["val_loss_nats"] = float("nan")
    return rows


def _stored(df: pd.DataFrame, dataset: str, split: str) -> pd.DataFrame:
    rows = baseline_rows(df)
    return rows[(rows.dataset == dataset) & (rows.split == split)] if not rows.empty else rows


def stored_baseline(df: pd.DataFrame, dataset: str, split: str = "contiguous") -> tuple[int, float, str] | None:
    """(order, test loss, smoothing) of the baseline a grid of `dataset` under the `split` layout is
    held against: the paper's order (else the highest stored), the lowest test loss among the
    smoothings stored for it (a fair n-gram is the best one counted); None if there is none."""
    rows = _stored(df, dataset, split)
    if rows.empty:
        return None
    order = PAPER_ORDER if (rows.order == PAPER_ORDER).any() else int(rows.order.max())
    best = rows[rows.order == order].sort_values("test_loss_nats").iloc[0]
    return order, float(best.test_loss_nats), str(best.smoothing)


def frequency_floor(
    df: pd.DataFrame, dataset: str, split: str = "contiguous", loss: str = "test_loss_nats"
) -> float | None:
    """The loss (`loss`: test or validation) of the characters' frequencies alone: the stored 1-gram
    of `dataset` under the `split` layout, the lowest of its smoothings. A model that ends no lower
    learned nothing from the context; None if no 1-gram is stored."""
    rows = _stored(df, dataset, split)
    rows = rows[rows.order == 1] if not rows.empty else rows
    return float(rows[loss].min()) if not rows.empty else None


def baselines_markdown(df: pd.DataFrame, figures_prefix: str = "figures/") -> tuple[list[str], dict[str, FigureFn]]:
    """The report's Baselines section and its figure of loss by order."""
    rows = baseline_rows(df)
    if rows.empty:
        return [], {}
    paper = paper_baselines().set_index("dataset").test_loss_nats
    body = []
    for (dataset, layout, smoothing), group in rows.groupby(["dataset", "layout", "smoothing"], sort=True):
        group = group.sort_values("order")
        top = group.iloc[-1] if not (group.order == PAPER_ORDER).any() else group[group.order == PAPER_ORDER].iloc[0]
        scored = group.dropna(subset=["val_loss_nats"])
        picked = scored.loc[scored.val_loss_nats.idxmin()] if not scored.empty else None
        took = f"{top.seconds:.0f} s, {top.peak_rss_mb:,.0f} MB"
        if len(group) > 1:
            took += f" (orders 1-{int(group.order.max())} in one pass)"
        body.append(
            [
                DATASET_TITLES.get(dataset, dataset),
                layout,
                smoothing,
                f"{int(top.order)}-gram",
                "-" if is_missing(top.val_loss_nats) else f"{top.val_loss_nats:.3f}",
                f"{top.test_loss_nats:.3f}",
                "-" if picked is None else f"{int(picked.order)}: {picked.test_loss_nats:.3f}",
                f"{paper[dataset]:.3f}" if dataset in paper.index and top.order == PAPER_ORDER else "-",
                took,
            ]
        )
    out = [
        "## Baselines",
        "",
        "Character n-gram models counted on the same train streams and scored on the same validation and test "
        "streams as the RNNs (`rnnbench baseline ngram --preset paper` for the paper's layout), in nats per "
        "character: the highest order stored (the paper's baseline is a 20-gram), and the order whose "
        "validation loss is lowest with its test loss. The chunked layout is char-rnn's (validation and test "
        "spread through the text), the contiguous one holds out the text's end.",
        "",
        table(
            [
                "corpus",
                "layout",
                "smoothing",
                "model",
                "val",
                "test",
                "order validation picks: test",
                "the paper's 20-gram",
                "took",
            ],
            body,
            ["l", "l", "l", "l", "r", "r", "r", "r", "r"],
        ),
        "",
    ]
    figures = {"ngram-orders.png": orders_figure(rows)}
    out += [f"![n-gram loss by order]({figures_prefix}ngram-orders.png)", ""]
    return out, figures


def orders_figure(rows: pd.DataFrame) -> FigureFn:
    """Test (solid) and validation (dashed) loss against the order, a panel per corpus, a colour
    per layout and smoothing; the paper's 20-gram as a star."""
    datasets = sorted(set(rows.dataset))
    paper = paper_baselines().set_index("dataset").test_loss_nats
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    series = sorted(set(zip(rows.layout, rows.smoothing)))

    def draw(plt):
        fig, axes = plt.subplots(1, len(datasets), figsize=(5.0 * len(datasets) + 2.5, 3.6), squeeze=False)
        for ax, dataset in zip(axes[0], datasets):
            mine = rows[rows.dataset == dataset]
            for i, (layout, smoothing) in enumerate(series):
                points = mine[(mine.layout == layout) & (mine.smoothing == smoothing)].sort_values("order")
                if points.empty:
                    continue
                label = f"{layout}, {smoothing.split(' (')[0].split(',')[0]}"
                colour = colours[i % len(colours)]
                ax.plot(
                    points.order,
                    points.test_loss_nats,
                    "-",
                    marker="o",
                    markersize=3,
                    color=colour,
                    label=f"{label}: test",
                )
                if points.val_loss_nats.notna().any():
                    ax.plot(points.order, points.val_loss_nats, "--", color=colour, label=f"{label}: val")
            if dataset in paper.index:
                ax.plot([PAPER_ORDER], [paper[dataset]], "*", color="black", markersize=10, label="the paper's 20-gram")
            low = min(mine.test_loss_nats.min(), paper.get(dataset, float("inf")))
            ax.set_ylim(low - 0.04, min(mine.test_loss_nats.max(), low + 0.6))  # orders 1-3 are far above
            ax.set_xticks(sorted({1, *range(5, int(mine.order.max()) + 1, 5)}))
            ax.set_title(DATASET_TITLES.get(dataset, dataset), fontsize=9)
            ax.set_xlabel("order n")
            ax.set_ylabel("loss, nats per character")
            ax.grid(alpha=0.3)
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7)
        return fig

    return _figure(draw)
