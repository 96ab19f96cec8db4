"""The report's section for `rnnbench kernels` rows: each layer shape's times on this machine beside
every processor DeepBench published, and the achieved rate against the shape's size.

    >>> from rnnbench.results import load
    >>> from rnnbench.report.kernels import kernels_markdown
    >>> lines, figures = kernels_markdown(load("results"))
    >>> lines[0], sorted(figures)
    ('## Recurrent layers beside DeepBench', ['kernels-tflops.png'])

Times are compared in the same precision family (float32 with DeepBench's fp32 sheets, float16 and
bfloat16 with its reduced-precision ones). "Closest" is the published processor whose forward +
backward time is nearest this machine's by ratio. FLOP/s are DeepBench's count (recurrent products
only, forward x 3 for training), for ours and theirs alike.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from rnnbench.deepbench import CELL_GATES, published, short_name
from rnnbench.report.figures import FigureFn, _figure
from rnnbench.report.tables import table

SHAPE_KEYS = ["cell", "hidden", "batch", "timesteps"]


def _family(dtype: str) -> str:
    return "fp32" if dtype == "float32" else "reduced"


def published_totals(family: str) -> pd.DataFrame:
    """Forward + backward ms of every published processor in a precision family: a row per shape,
    a column per processor (short names), slowest processor first."""
    rows = published()
    rows = rows[(rows.precision == "fp32") == (family == "fp32")]
    names = rows.processor.map(short_name) + np.where(rows.precision == "fp32", "", " (" + rows.precision + ")")
    wide = rows.assign(name=names).pivot_table(index=SHAPE_KEYS, columns="name", values="total_ms")
    return wide[wide.median().sort_values(ascending=False).index]


def training_tflops(rows: pd.DataFrame, total_ms: pd.Series) -> pd.Series:
    """DeepBench's count of a training call (3 x the recurrent products forward) per second."""
    gates = rows.cell.map(CELL_GATES)
    return 3 * 2 * gates * rows.hidden**2 * rows.batch * rows.timesteps / (total_ms / 1e3) / 1e12


def _ms(value) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.3g}"


def deepbench_markdown(ours: pd.DataFrame, title: str) -> list[str]:
    """One machine, one dtype: a row per shape, ours and every published processor's."""
    theirs = published_totals(_family(ours.dtype.iloc[0]))
    ours = ours.sort_values(SHAPE_KEYS)
    body, ratios = [], {}
    for r in ours.itertuples():
        key = (r.cell, int(r.hidden), int(r.batch), int(r.timesteps))
        pub = theirs.loc[key] if key in theirs.index else pd.Series(dtype=float)
        cells = [f"{r.cell} {int(r.hidden)}, batch {int(r.batch)}, {int(r.timesteps)} steps", r.application or "-"]
        if r.status != "ok":
            body.append(cells + ["-", r.status, "-", "-", "-"] + ["-"] * len(theirs.columns))
            continue
        ratio = (r.total_ms_median / pub).dropna()
        for name, value in ratio.items():
            ratios.setdefault(name, []).append(value)
        closest = ratio.map(lambda x: abs(math.log(x))).idxmin() if len(ratio) else None
        body.append(
            cells
            + [
                _ms(r.fwd_ms_median),
                f"{_ms(r.total_ms_median)} ({_ms(r.total_ms_iqr)})",
                f"{r.deepbench_tflops_total:.3g}",
                f"{r.share_of_matmul:.0%}",
                f"{closest} ({_ms(pub[closest])})" if closest else "-",
            ]
            + [_ms(pub.get(name)) for name in theirs.columns]
        )
    header = ["layer", "application", "forward ms", "fwd+bwd ms (IQR)", "TFLOP/s", "of matmul", "closest"]
    header += [f"{name} ms" for name in theirs.columns]
    summary = ", ".join(f"{name} {np.median(v):,.3g}x" for name, v in ratios.items())
    return [
        f"### {title}",
        "",
        f"Median time ratio over the shapes, this machine's forward + backward against each processor's "
        f"(above 1: slower here): {summary or '-'}.",
        "",
        table(header, body, ["l", "l"] + ["r"] * (len(header) - 2)),
        "",
    ]


def paper_markdown(ours: pd.DataFrame, sweeps: pd.DataFrame, title: str) -> list[str]:
    """The paper suite on one machine and dtype: each model's recurrent stack, and where the
    sweep timed that model's whole training step on the same hardware, the stack's share of it."""
    body = []
    columns = {"num_layers", "hidden_size", "batch_size", "seq_len", "step_ms_median"}
    if not columns <= set(sweeps.columns):  # no sweep row to set beside the stacks
        sweeps = pd.DataFrame(columns=sorted(columns | {"cell", "hardware"}))
    for r in ours.sort_values(["cell", "layers", "hidden"]).itertuples():
        steps = sweeps[
            (sweeps.cell == r.cell)
            & (sweeps.num_layers == r.layers)
            & (sweeps.hidden_size == r.hidden)
            & (sweeps.batch_size == r.batch)
            & (sweeps.seq_len == r.timesteps)
            & (sweeps.hardware == r.hardware)
        ].step_ms_median.dropna()
        step = steps.median() if len(steps) else math.nan
        ok = r.status == "ok"
        body.append(
            [
                f"{r.cell.upper()} {int(r.layers)}x{int(r.hidden)}",
                _ms(r.fwd_ms_median) if ok else r.status,
                _ms(r.total_ms_median) if ok else "-",
                f"{r.rnnbench_tflops_total:.3g}" if ok else "-",
                f"{r.share_of_matmul:.0%}" if ok else "-",
                _ms(step),
                f"{r.total_ms_median / step:.0%}" if ok and not math.isnan(step) else "-",
            ]
        )
    header = ["stack", "forward ms", "fwd+bwd ms", "TFLOP/s (all products)", "of matmul", "training step ms", "share"]
    return [f"### {title}", "", table(header, body), ""]


def tflops_figure(ours: pd.DataFrame) -> FigureFn:
    """Achieved TFLOP/s (DeepBench's count, forward + backward) against the work of a training call,
    one panel per cell type, log scales: every published fp32 processor, and this report's machines."""
    rows = published()
    rows = rows[rows.precision == "fp32"].assign(tflops=lambda d: training_tflops(d, d.total_ms))
    rows = rows.assign(work=3 * 2 * rows.cell.map(CELL_GATES) * rows.hidden**2 * rows.batch * rows.timesteps)
    mine = ours[ours.status == "ok"]
    mine = mine.assign(
        work=3 * 2 * mine.cell.map(CELL_GATES) * mine.hidden**2 * mine.batch * mine.timesteps,
        where=mine.hardware + ", " + mine.dtype,
    )
    cells = [c for c in CELL_GATES if c in set(rows.cell)]

    def draw(plt):
        fig, axes = plt.subplots(1, len(cells), figsize=(5.0 * len(cells), 4.2), sharey=True, squeeze=False)
        for ax, cell in zip(axes[0], cells):
            for processor, points in rows[rows.cell == cell].groupby("processor"):
                points = points.sort_values("work")
                ax.plot(points.work, points.tflops, "o", ms=3.5, alpha=0.75, label=short_name(processor))
            for where, points in mine[mine.cell == cell].groupby("where"):
                ax.plot(points.work, points.deepbench_tflops_total, "*", ms=10, color="black", label=where)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.xaxis.set_minor_formatter(plt.NullFormatter())  # decades only: minor labels overlap
            ax.set_title({"rnn_relu": "vanilla (ReLU)"}.get(cell, cell.upper()))
            ax.set_xlabel("FLOPs of one training call (DeepBench's count)")
            ax.grid(True, which="both", alpha=0.3)
        axes[0][0].set_ylabel("achieved TFLOP/s, forward + backward")
        handles, labels = axes[0][0].get_legend_handles_labels()
        seen = dict(zip(labels, handles))
        for ax in axes[0][1:]:
            for handle, label in zip(*ax.get_legend_handles_labels()):
                seen.setdefault(label, handle)
        fig.legend(seen.values(), seen.keys(), loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
        return fig

    return _figure(draw)


def kernels_markdown(df: pd.DataFrame, prefix: str = "figures/") -> tuple[list[str], dict[str, FigureFn]]:
    """The section's lines and its figure; nothing where no kernel row is stored."""
    rows = df[df.kind == "kernel"] if "kind" in df else df.iloc[0:0]
    if rows.empty:
        return [], {}
    out = [
        "## Recurrent layers beside DeepBench",
        "",
        "One recurrent layer (torch's fused module, `rnnbench kernels`) timed at DeepBench's training shapes, "
        "forward and forward + backward (gradients of the input and the weights), median of calls after a "
        "warm-up (IQR in brackets), each call waited for. DeepBench timed cuDNN or MIOpen with the input "
        "product skipped and took the mean of its calls; here the layer's input has size 1, which leaves "
        "that product at 1/hidden of the recurrent one (0.4% at hidden 256, under 0.1% from 1024). "
        "TFLOP/s count the recurrent products only (DeepBench's "
        "count: 2 x gates x hidden^2 a sequence and step forward, x 3 for training); 'of matmul' is "
        "rnnbench's count of every product against the device's measured matrix-product rate.",
        "",
    ]
    figures = {}
    deepbench = rows[rows.suite == "deepbench"]
    for (hardware, device, dtype), ours in deepbench.groupby(["hardware", "device", "dtype"]):
        out += deepbench_markdown(ours, f"{device}: {hardware}, {dtype}")
    if not deepbench.empty:
        out += ["![achieved TFLOP/s against work per call](" + prefix + "kernels-tflops.png)", ""]
        figures["kernels-tflops.png"] = tflops_figure(deepbench)
    sweeps = df[df.kind == "sweep"]
    for (hardware, device, dtype), ours in rows[rows.suite == "paper"].groupby(["hardware", "device", "dtype"]):
        out += paper_markdown(ours, sweeps, f"The paper's recurrent stacks on {device}: {hardware}, {dtype}")
    return out, figures
