"""DeepBench's published recurrent-layer training results (baidu-research/DeepBench, commit
da81ba7820739e2e506dc27f382d15be5479f98f, `results/train/DeepBench_*.xlsx`; Apache-2.0): 583 rows,
53 layer shapes on 9 processors in float32, plus the P100's pseudo-fp16 and the V100's mixed
precision sheets. The shapes are `rnnbench kernels`' deepbench suite; the times are what the
report sets beside this machine's.

    >>> from rnnbench.deepbench import published
    >>> rows = published()
    >>> len(rows), rows[["cell", "hidden", "batch", "timesteps"]].drop_duplicates().shape[0]
    (583, 53)

Columns: file, processor, precision (fp32, pseudo_fp16, fp16_mixed), cell (rnn_relu: DeepBench's
vanilla layer uses ReLU; lstm; gru), application, hidden, batch, timesteps (one layer, input size
= hidden), fwd_ms, bwd_inputs_ms, bwd_weights_ms, bwd_ms, total_ms, tflops_fwd. DeepBench timed
cuDNN (MIOpen on AMD) with the input product skipped (CUDNN_SKIP_INPUT), one warm-up then the
mean of repeated calls, and counted the recurrent products only: 2 x gates x hidden^2 per
sequence per step forward.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

DEEPBENCH_FILE = "deepbench_rnn_train.csv"
CELL_GATES = {"rnn_relu": 1, "lstm": 4, "gru": 3}


def published() -> pd.DataFrame:
    """The published rows, with `bwd_ms` the backward (both gradients) and `total_ms` computed as
    forward + backward: the sheets' own total column is not that sum in 38 GRU rows."""
    with resources.files("rnnbench").joinpath(DEEPBENCH_FILE).open() as f:
        rows = pd.read_csv(f)
    backward = rows.bwd_ms.fillna(rows.bwd_inputs_ms + rows.bwd_weights_ms)
    return rows.assign(bwd_ms=backward, total_ms=rows.fwd_ms + backward, application=rows.application.fillna(""))


def short_name(processor: str) -> str:
    """'NVIDIA Tesla P100' -> 'P100', 'AMD Vega Frontier Edition 16GB' -> 'Vega FE'."""
    for noise in ("NVIDIA ", "Nvidia ", "Tesla ", "GTX ", "AMD "):
        processor = processor.replace(noise, "")
    return processor.replace(" Frontier Edition 16GB", " FE")
