"""The compare-devices report: each device's limits, the three workloads with speedups against
the CPU, and the data path.

    >>> from rnnbench.report.devices import device_comparison_markdown
    >>> from rnnbench.results import load
    >>> device_comparison_markdown(load("results")).splitlines()[0]   # the published rows
    '# Device comparison'
"""

from __future__ import annotations

import pandas as pd

from rnnbench.report.tables import is_missing, table, when

MODEL_WORKLOADS = ("train", "infer", "generate")


def device_label(row) -> str:
    """How a measurement's device is named in a heading: the device itself, never another."""
    if row["device"] == "cpu":
        label = f"cpu, {int(row['threads'])} thread{'s' if row['threads'] != 1 else ''}"
    else:
        label = f"{row['device']} ({row['gpu_name']})" if isinstance(row.get("gpu_name"), str) else row["device"]
    return label if row["dtype"] == "float32" else f"{label}, {row['dtype']}"


def machines(rows: pd.DataFrame) -> pd.Series:
    """Which machine measured each row, in words: its host, core count and torch. Host names alone
    do not tell machines apart (every cloud VM may be called `vm`)."""

    def name(r) -> str:
        cores = "?" if pd.isna(r.get("cpu_cores_logical")) else int(r["cpu_cores_logical"])
        return f"{r.get('host')} ({cores} cores, torch {r.get('torch_version')})"

    return rows.apply(name, axis=1) if len(rows) else pd.Series(dtype=object)


def _model_label(row) -> str:
    return f"{row['cell']} {int(row['num_layers'])}x{int(row['size'])}"


def device_comparison_markdown(df: pd.DataFrame) -> str:
    """The compare-devices report: limits, the three workloads with speedups, the data path."""
    rows = df[df.get("kind", pd.Series(dtype=object)) == "compare"] if "kind" in df else df.iloc[0:0]
    if rows.empty:
        return "# Device comparison\n\nNo compare-devices rows are stored: run `rnnbench compare-devices`.\n"
    rows = _labelled(df)  # rows from several machines: a device is named with its machine
    ok = rows[rows.status == "ok"]
    out = ["# Device comparison", ""] + _method(rows)
    out += _limits(ok[ok.workload.isin(["matmul", "copy"])])
    out += _workloads(ok[ok.workload.isin(MODEL_WORKLOADS)])
    out += _data_path(ok[ok.workload.isin(["h2d_pageable", "h2d_pinned"])])
    out += _dtype_ran(ok[ok.workload.isin(MODEL_WORKLOADS)])
    failed = rows[rows.status != "ok"]
    if not failed.empty:
        out += ["## Not measured", ""]
        out.append(
            table(
                ["device", "model", "workload", "status", "why"],
                [
                    [
                        r.label,
                        _model_label(r._asdict()) if isinstance(r.cell, str) else "-",
                        r.workload,
                        r.status,
                        str(r.error),
                    ]
                    for r in failed.itertuples()
                ],
            )
        )
        out.append("")
    return "\n".join(out)


def _dtype_ran(rows: pd.DataFrame) -> list[str]:
    """Rows whose recurrent layer computed in another dtype than the one asked for (autocast's rules):
    their figures are that dtype's."""
    if "recurrent_dtype" not in rows:
        return []
    ran = rows.recurrent_dtype.fillna("")
    other = rows[(ran != "") & (ran != rows.dtype)]
    if other.empty:
        return []
    pairs = sorted({(r.label, r.dtype, r.recurrent_dtype) for r in other.itertuples()})
    said = "; ".join(f"{label}: asked {asked}, the recurrent layer ran in {ran}" for label, asked, ran in pairs)
    return [f"**Not the dtype asked for.** {said}. Those rows time the dtype that ran.", ""]


def _method(rows: pd.DataFrame) -> list[str]:
    """Where and how the rows were measured, and whether any figure is a GPU figure."""
    first = rows.iloc[0]
    out = []
    for _, measured in rows.groupby("machine", sort=False):
        m = measured.iloc[0]
        gpus = sorted({g for g in measured.get("gpu_name", pd.Series(dtype=object)).dropna()})
        out.append(
            f"Measured {when(measured.started_at.min())} to {when(measured.finished_at.max())} on host `{m['host']}`: "
            f"CPU {m['cpu_model']} ({m['cpu_cores_logical']} logical cores); "
            f"GPU {', '.join(gpus) if gpus else 'none'}; torch {m['torch_version']}"
            + (f", CUDA {m['cuda_version']}" if isinstance(m.get("cuda_version"), str) else "")
            + "."
        )
    out = [" ".join(out)]
    if not any(d.startswith("cuda") for d in set(rows.device)):
        why = (
            "CUDA was present but not asked for"
            if rows.get("cuda_available", pd.Series([False])).any()
            else "this machine has no CUDA device"
        )
        out += ["", f"**Only the CPU was measured**: {why}. No figure below is a GPU figure."]
    return out + [
        "",
        f"Models: batch {int(first['batch_size'])} x {int(first['seq_len'])} characters of "
        f"`{first['dataset']}`, sizes in {first['size_mode']} mode. Each figure is the median (IQR) of at least "
        "5 blocks timed by torch.utils.benchmark after 3 warm-up calls that are not kept; CUDA is "
        "synchronised around every block. GFLOP/s count matrix products only (see "
        "rnnbench.core.models.flops_per_char); "
        "'of peak' is that over the same device's measured matmul rate in the same dtype and thread count.",
        "",
    ]


def _limits(limits: pd.DataFrame) -> list[str]:
    if limits.empty:
        return []
    body = []
    for label, group in limits.groupby("label", sort=False):
        mm = group[group.workload == "matmul"].iloc[0] if (group.workload == "matmul").any() else None
        cp = group[group.workload == "copy"].iloc[0] if (group.workload == "copy").any() else None
        body.append(
            [
                label,
                "-" if mm is None else f"{mm['gflops']:,.1f} ({mm['gflops_iqr']:,.1f}) at n={int(mm['matmul_n'])}",
                "-" if cp is None else f"{cp['gb_per_s']:,.1f} ({cp['gb_per_s_iqr']:,.1f})",
                "-" if cp is None else copy_buffer_text(cp),
            ]
        )
    return [
        "## Device limits",
        "",
        table(["device", "matmul GFLOP/s (IQR)", "copy GB/s (IQR)", "copy buffers"], body),
        "",
    ]


def copy_buffer_text(row) -> str:
    """What a copy row streamed through: its buffers against the cache they were sized from
    (rows written before copies recorded it used 64 MiB on a CPU, 256 MiB on a GPU)."""
    if "buffer_mb" not in row or is_missing(row["buffer_mb"]):
        return "not recorded (64 MiB on a CPU: possibly inside its cache)"
    cache = "unknown cache" if is_missing(row.get("cache_mb")) else f"largest cache {row['cache_mb']:,.0f} MiB"
    return f"2 x {row['buffer_mb']:,.0f} MiB ({cache})"


def _labelled(df: pd.DataFrame) -> pd.DataFrame:
    """The ok compare-devices rows with a device label (named with its machine when rows come from several)."""
    rows = df[df["kind"] == "compare"] if "kind" in df else df.iloc[0:0]
    rows = rows.sort_values(["device", "threads", "dtype", "size", "num_layers", "cell"], na_position="first").copy()
    if rows.empty:
        return rows
    rows["label"] = rows.apply(device_label, axis=1)
    rows["machine"] = machines(rows)
    if rows.machine.nunique() > 1:
        rows["label"] = rows.machine + ": " + rows.label
    return rows


def _baseline_label(models: pd.DataFrame) -> str | None:
    """The CPU at its most threads (float32 where measured): what speedups are against."""
    cpu_rows = models[models.device == "cpu"]
    if cpu_rows.empty:
        return None
    full = cpu_rows[cpu_rows.threads == cpu_rows.threads.max()]
    return (full[full.dtype == "float32"] if (full.dtype == "float32").any() else full).label.iloc[0]


def speedup_bars(df: pd.DataFrame) -> tuple[pd.DataFrame, str] | None:
    """(workload, model, label, speedup) of every device against the baseline CPU, per model and
    workload, from compare-devices rows; None without a CPU baseline and another device."""
    rows = _labelled(df)
    if rows.empty:
        return None
    models = rows[(rows.status == "ok") & rows.workload.isin(MODEL_WORKLOADS)]
    baseline = _baseline_label(models)
    if baseline is None or models.label.nunique() < 2:
        return None
    out = []
    for (workload, model), group in models.groupby([models.workload, models.apply(_model_label, axis=1)], sort=False):
        base = group[group.label == baseline]
        if base.empty:
            continue
        for r in group[group.label != baseline].itertuples():
            out.append(
                {
                    "workload": workload,
                    "model": model,
                    "label": r.label,
                    "speedup": r.chars_per_s / base.chars_per_s.iloc[0],
                }
            )
    return (pd.DataFrame(out), baseline) if out else None


def _workloads(models: pd.DataFrame) -> list[str]:
    """A table per workload: model by device, with the speedup over the CPU at its most threads."""
    labels = list(dict.fromkeys(models.label))
    baseline_label = _baseline_label(models)
    titles = {
        "train": "Training: characters/s",
        "infer": "Inference: characters/s",
        "generate": "Generation, batch 1: ms per character",
    }
    out = []
    for workload in MODEL_WORKLOADS:
        w = models[models.workload == workload]
        if w.empty:
            continue
        out += [f"## {titles[workload]}", ""]
        if baseline_label:
            out += [f"Speedup is against {baseline_label} on the same model.", ""]
        body = []
        for model, group in w.groupby(w.apply(_model_label, axis=1), sort=False):
            by_label = {r.label: r for r in group.itertuples()}
            base = by_label.get(baseline_label)
            body.append(
                [model, f"{int(group.n_params.iloc[0]):,}"]
                + [_workload_cell(workload, by_label.get(label), base) for label in labels]
            )
        out += [table(["model", "params", *labels], body), ""]
    return out


def _workload_cell(workload: str, r, base) -> str:
    if r is None:
        return "-"
    if workload == "generate":
        text = f"{r.ms_per_char:.3f} ({r.ms_per_char_iqr:.3f})"
    else:
        text = (
            f"{r.chars_per_s:,.0f} ({r.chars_per_s_iqr:,.0f}); {r.achieved_gflops:,.1f} GFLOP/s, "
            f"{r.matmul_fraction:.0%} of peak"
        )
    if base is not None:
        text += f"; {r.chars_per_s / base.chars_per_s:.2f}x"
    return text


def _data_path(transfer: pd.DataFrame) -> list[str]:
    out = ["## Data path", ""]
    if transfer.empty:
        out.append("No GPU was measured, so no batch crosses a host-device link.")
    else:
        body = []
        for (label, model), group in transfer.groupby(
            [transfer.label, transfer.apply(_model_label, axis=1)], sort=False
        ):
            page = group[group.workload == "h2d_pageable"].iloc[0]
            pin = group[group.workload == "h2d_pinned"].iloc[0]
            body.append(
                [
                    label,
                    model,
                    f"{int(page.batch_bytes):,}",
                    f"{page.time_ms_median:.3f}",
                    f"{pin.time_ms_median:.3f}",
                    f"{page.share_of_train_step:.1%}",
                    f"{pin.share_of_train_step:.1%}",
                ]
            )
        out.append(
            table(
                [
                    "device",
                    "model",
                    "batch bytes",
                    "pageable ms",
                    "pinned ms",
                    "pageable / train step",
                    "pinned / train step",
                ],
                body,
            )
        )
    return out + [
        "",
        "rnnbench keeps the whole corpus on the training device as one tensor and slices each batch "
        "from it, so training moves no input across the host-device link after the first copy.",
        "",
    ]
