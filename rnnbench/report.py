"""Pure functions from stored rows (a DataFrame from results.load) to markdown.

    >>> from rnnbench.results import load
    >>> from rnnbench.report import device_comparison_markdown
    >>> print(device_comparison_markdown(load("results")))     # doctest: +SKIP

Nothing here measures or reads files: every figure printed is a value of a stored row, or
arithmetic on such values (a ratio, a share).
"""

from __future__ import annotations

import math

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
                         [[r.label, "-" if r.cell is None or (isinstance(r.cell, float)) else _model_label(r._asdict()),
                           r.workload, r.status, str(r.error)] for r in failed.itertuples()]))
        out.append("")
    return "\n".join(out)
