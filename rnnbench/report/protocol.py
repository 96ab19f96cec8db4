"""The protocol checklist of an experiment on a paper corpus: every item of the paper's protocol,
its value in the paper (or in char-rnn, the code its models were trained with, where the paper is
silent), ours as the experiment's stored rows record it, and whether the two are the same.

    >>> from rnnbench.results import load
    >>> from rnnbench.report.grids import experiments
    >>> from rnnbench.report.protocol import checklist
    >>> paper = max((e for e in experiments(load("results")) if e.protocol == "paper"), key=lambda e: len(e.rows))
    >>> verdicts = {c.name: c.verdict for c in checklist(paper)}
    >>> verdicts["data layout"], verdicts["gradient clipping"]
    ('same', 'differs')

The paper's and char-rnn's values are written once, here, with where each comes from
(each with the confidence the sources give it: the paper's text, or char-rnn's code of the time);
ours are read from the rows, never assumed.
A verdict is "same", "differs", or "partly" (some runs of the experiment as the paper, some not).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from rnnbench.core.data import REGISTRY, Layout
from rnnbench.core.models import INIT_RANGE
from rnnbench.report.grids import Experiment, cell_values
from rnnbench.report.tables import is_missing, table

# The corpora as the paper counted them (characters are bytes, as char-rnn reads them).
PAPER_CORPORA = {
    "warpeace": "War and Peace, 3,258,246 characters",
    "linux": "Linux Kernel, 6,206,996 characters (the authors' own file, never published)",
}
PAPER_FRACTIONS = (0.8, 0.1)  # War and Peace; for Linux no other fractions could be cited
TORCH_RMSPROP_EPS = 1e-8  # torch.optim.RMSprop's default, which rnnbench leaves; torch/optim's rmsprop has the same


@dataclass(frozen=True)
class Check:
    """One item as rendered: the paper's value, ours, and the verdict."""

    name: str
    paper: str
    ours: str
    verdict: str  # same, differs, partly


def _values(rows: pd.DataFrame, column: str) -> list:
    return sorted({v for v in rows[column] if not is_missing(v)}, key=str) if column in rows else []


def _one(rows: pd.DataFrame, column: str, fmt: Callable = str) -> str:
    values = _values(rows, column)
    return ", ".join(fmt(v) for v in values) if values else "not recorded"


def _span(values: pd.Series, fmt: Callable) -> str:
    """'a' when every value reads the same, else 'a to b' (lowest to highest).

    >>> _span(pd.Series([50.0, 50.0]), lambda v: f"{v:g}"), _span(pd.Series([0, 7.7e-5]), lambda v: f"{100 * v:.2g}%")
    ('50', '0% to 0.0077%')
    """
    low, high = fmt(values.min()), fmt(values.max())
    return low if low == high else f"{low} to {high}"


def _verdict(flags: pd.Series | list[bool]) -> str:
    flags = list(flags)
    return "same" if all(flags) else "differs" if not any(flags) else "partly"


def _corpus(exp: Experiment) -> Check:
    rows, dataset = exp.rows, exp.first["dataset"]
    spec = REGISTRY.get(dataset)
    sha = _values(rows, "dataset_sha256")
    registered = spec is not None and sha == [spec.sha256]
    ours = (
        f"{dataset}, {spec.n_bytes:,} bytes" if registered else f"{dataset} (sha256 {', '.join(s[:12] for s in sha)})"
    )
    if dataset == "linux":
        return Check(
            "corpus",
            PAPER_CORPORA["linux"],
            ours + ": real kernel source of the same length, not the paper's file",
            "differs",
        )
    return Check(
        "corpus",
        PAPER_CORPORA.get(dataset, "-"),
        ours,
        "same" if registered and dataset in PAPER_CORPORA else "differs",
    )


def _layout(exp: Experiment) -> Check:
    splits = exp.rows["split"].fillna("contiguous")
    ours = ", ".join(f"{s}: {n} runs" if len(set(splits)) > 1 else s for s, n in splits.value_counts().items())
    return Check(
        "data layout",
        "char-rnn's loader: the text as batch-size rows, each row's first chunks train, the "
        "next validation, the rest test (validation and test spread through the text)",
        ours,
        _verdict(splits == "chunked"),
    )


def split_bytes(exp: Experiment) -> list[tuple[int, int, int]]:
    """The (train, val, test) bytes of the experiment's runs: as recorded, or for rows stored before
    runs recorded them, as their layout cuts the registered corpus they name."""
    out = set()
    spec = REGISTRY.get(exp.first["dataset"])
    for r in exp.rows.itertuples():
        recorded = [getattr(r, f"{name}_split_bytes", None) for name in ("train", "val", "test")]
        if not any(is_missing(x) for x in recorded):
            out.add(tuple(int(x) for x in recorded))
        elif spec is not None and r.dataset_sha256 == spec.sha256:
            out.add(
                Layout(r.split, r.train_fraction, r.val_fraction, int(r.batch_size), int(r.seq_len)).sizes(spec.n_bytes)
            )
    return sorted(out)


def _fractions(exp: Experiment) -> Check:
    rows = exp.rows
    fractions = sorted({(float(t), float(v)) for t, v in zip(rows.train_fraction, rows.val_fraction)})
    text = "; ".join(f"{100 * t:g}/{100 * v:g}/{100 * (1 - t - v):g}" for t, v in fractions)
    sizes = split_bytes(exp)
    if sizes:
        text += " (" + "; ".join(f"{a:,} / {b:,} / {c:,} bytes" for a, b, c in sizes) + ")"
    paper = "80/10/10" + (
        " (the Linux split is not stated: the same is kept)" if exp.first["dataset"] == "linux" else ""
    )
    return Check("split fractions", paper, text, _verdict([f == PAPER_FRACTIONS for f in fractions]))


def _vocabulary(exp: Experiment) -> Check:
    return Check(
        "vocabulary",
        "every byte value of the file, sorted (char-rnn)",
        f"{_one(exp.rows, 'vocab_size', lambda v: str(int(v)))} byte values of the whole file",
        "same",
    )


def _sizes(exp: Experiment) -> Check:
    rows = exp.rows
    modes = _values(rows, "size_mode")
    params = rows.n_params.dropna() if "n_params" in rows else pd.Series(dtype=float)
    ours = f"size mode {', '.join(modes)}" + (
        f"; {int(params.min()):,} to {int(params.max()):,} parameters" if len(params) else ""
    )
    return Check(
        "model sizes",
        "64-512 is the hidden width of a 1-layer LSTM; every other cell and depth has the "
        "width with the closest parameter count",
        ours,
        _verdict([m == "params" for m in modes]),
    )


def _init(exp: Experiment) -> Check:
    return Check(
        "initialisation",
        "every parameter uniform in [-0.08, 0.08] (char-rnn)",
        f"uniform in [-{INIT_RANGE:g}, {INIT_RANGE:g}]",
        "same",
    )


def _forget_bias(exp: Experiment) -> Check:
    rows = exp.rows[exp.rows.cell == "lstm"]
    if rows.empty:
        return Check(
            "LSTM forget-gate bias", "uniform like the rest (char-rnn before 2015-09-20)", "no LSTM run", "same"
        )
    values = rows.lstm_forget_bias.fillna("1")
    return Check(
        "LSTM forget-gate bias",
        "uniform like the rest (char-rnn set it to 1 only from 2015-09-20, after the paper)",
        ", ".join(f"{'1' if v == '1' else 'uniform'}" for v in sorted(set(values))),
        _verdict(values == "uniform"),
    )


def _gru(exp: Experiment) -> Check:
    rows = exp.rows[exp.rows.cell == "gru"]
    paper = "the reset gate multiplies the state before the recurrent product (char-rnn's GRU)"
    if rows.empty:
        return Check("GRU reset gate", paper, "no GRU run", "same")
    values = rows.gru_reset.fillna("after")
    words = {"after": "after the recurrent product (torch's fused GRU, as cuDNN)", "before": "before the product"}
    return Check(
        "GRU reset gate", paper, ", ".join(words[v] for v in sorted(set(values))), _verdict(values == "before")
    )


def _optimizer(exp: Experiment) -> Check:
    rows = exp.rows
    pairs = sorted({(float(lr), float(a)) for lr, a in zip(rows.lr, rows.rmsprop_alpha)})
    eps = f"{TORCH_RMSPROP_EPS:.0e}".replace("e-0", "e-")
    ours = "; ".join(f"RMSProp, lr {lr:g}, alpha {a:g}, epsilon {eps}" for lr, a in pairs)
    return Check(
        "optimizer", "RMSProp, lr 2e-3, alpha 0.95, epsilon 1e-8", ours, _verdict([p == (2e-3, 0.95) for p in pairs])
    )


def _schedule(exp: Experiment) -> Check:
    rows = exp.rows
    pairs = sorted({(float(d), int(a)) for d, a in zip(rows.lr_decay, rows.lr_decay_after_epochs)})
    ours = "; ".join(f"x{d:g} per epoch after epoch {a}" for d, a in pairs)
    return Check(
        "learning-rate schedule",
        "x0.95 per epoch after epoch 10 (char-rnn's default is x0.97)",
        ours,
        _verdict([p == (0.95, 10) for p in pairs]),
    )


def _clipping(exp: Experiment) -> Check:
    rows = exp.rows
    modes = rows.grad_clip_mode.fillna("norm")
    words = {
        "norm": "the norm of the mean gradient clipped at {}",
        "clamp": "each element of the gradient summed over the steps clamped to [-{0}, {0}]",
    }
    at = _one(rows, "grad_clip", lambda v: f"{v:g}")
    ours = "; ".join(words[m].format(at) for m in sorted(set(modes)))
    if "clipped_step_share" in rows and rows.clipped_step_share.notna().any():
        share = rows.clipped_step_share.dropna()
        ours += f" (it acted on {_span(share, lambda v: f'{100 * v:.2g}%')} of the steps)"
    return Check(
        "gradient clipping",
        "each element clamped to [-5, 5], of the gradient summed over the 100 time steps (char-rnn)",
        ours,
        _verdict((modes == "clamp") & (rows.grad_clip == 5)),
    )


def _dropout(exp: Experiment) -> Check:
    values = cell_values(exp)
    tried = exp.rows.groupby(["cell", "num_layers", "size"]).dropout.nunique()
    chosen = ", ".join(f"{d:g} for {n}" for d, n in values.dropout.value_counts().sort_index().items())
    ours = (
        f"tried {', '.join(f'{d:g}' for d in sorted(set(exp.rows.dropout)))}; chosen on validation: {chosen} "
        f"models; {int((tried > 1).sum())} of {len(tried)} models had more than one value"
    )
    return Check("dropout", "chosen per model on validation (the values are not stated)", ours, _verdict(tried > 1))


def _batch(exp: Experiment) -> Check:
    rows = exp.rows
    pairs = sorted({(int(b), int(s)) for b, s in zip(rows.batch_size, rows.seq_len)})
    return Check(
        "batch x unroll",
        "100 x 100 (char-rnn's default is 50 x 50)",
        "; ".join(f"{b} x {s}" for b, s in pairs),
        _verdict([p == (100, 100) for p in pairs]),
    )


def _epochs(exp: Experiment) -> Check:
    rows = exp.rows
    others = [c for c in ("max_steps", "max_chars", "time_budget_s") if c in rows]
    budgets = []
    for column, unit in (
        ("epochs", "epochs"),
        ("max_steps", "steps"),
        ("max_chars", "characters"),
        ("time_budget_s", "s of wall time"),
    ):
        if column in rows and rows[column].notna().any():
            budgets.append(f"up to {_one(rows, column, lambda v: f'{v:,g}')} {unit}")
    trained = rows.epochs_trained.dropna() if "epochs_trained" in rows else pd.Series(dtype=float)
    ours = "; ".join(budgets) + (
        f" (trained {_span(trained, lambda v: f'{v:.1f}'.removesuffix('.0'))} epochs)" if len(trained) else ""
    )
    flags = (rows.epochs == 50) & rows[others].isna().all(axis=1)
    return Check("training length", "up to 50 epochs", ours, _verdict(flags))


def _stopping(exp: Experiment) -> Check:
    rows = exp.rows
    every = _one(rows, "eval_every_steps", lambda v: f"{int(v):,}")
    patience = _one(rows, "patience_evals", lambda v: str(int(v)))
    stopped = int((rows.get("stop_reason") == "early_stop").sum()) if "stop_reason" in rows else 0
    ours = (
        f"validation every {every} steps and at each epoch's end; stop after {patience} evaluations without a "
        f"better one ({stopped} of {len(rows)} runs stopped so); the best weights are tested"
    )
    same = [int(v) == 1000 for v in _values(rows, "eval_every_steps")] + [stopped == 0]
    return Check(
        "evaluation and stopping",
        "validation every 1,000 iterations, every checkpoint kept; the one with "
        "the lowest validation loss is the model",
        ours,
        _verdict(same) if all(same[:-1]) else "differs",
    )


def steps_per_epoch(exp: Experiment) -> list[tuple[int, int]]:
    """(training steps per epoch, bytes of each stream never an input) of the experiment's runs: a
    stream of L bytes gives (L - 1) // seq steps."""
    batch, seq = int(exp.first["batch_size"]), int(exp.first["seq_len"])
    out = set()
    for train, _, _ in split_bytes(exp):
        length = train // batch
        steps = (length - 1) // seq
        out.add((steps, length - steps * seq))
    return sorted(out)


def _state(exp: Experiment) -> Check:
    steps = steps_per_epoch(exp)
    return Check(
        "hidden state across epochs",
        "carried from the end of an epoch into the next (char-rnn)",
        "reset to zero at each epoch's start"
        + (f" (1 step of an epoch's {', '.join(str(n) for n, _ in steps)})" if steps else ""),
        "differs",
    )


def _chunks(exp: Experiment) -> Check:
    steps = steps_per_epoch(exp)
    ours = (
        "; ".join(f"{n}: each stream's last {unused} bytes are never an input" for n, unused in steps)
        + ", and a step's last target is inside its stream"
        if steps
        else "not recorded"
    )
    return Check(
        "steps per epoch",
        "every train chunk (260 at 100 x 100 on War and Peace), each chunk's last target the next chunk's first byte",
        ours,
        "differs",
    )


def _seeds(exp: Experiment) -> Check:
    per_model = exp.rows.groupby(["cell", "num_layers", "size", "dropout"]).seed.nunique()
    seeds = sorted({int(s) for s in exp.rows.seed})
    return Check(
        "seeds",
        "one run per model (char-rnn's default seed is 123)",
        f"seeds {', '.join(map(str, seeds))}; {int((per_model > 1).sum())} of {len(per_model)} models with "
        "more than one",
        "same" if (per_model == 1).all() else "partly",
    )


def _metric(exp: Experiment) -> Check:
    return Check(
        "metric",
        "mean cross-entropy per character on test, nats",
        "mean cross-entropy per character on test, nats, of the best-validation weights",
        "same",
    )


ITEMS = (
    _corpus,
    _layout,
    _fractions,
    _vocabulary,
    _sizes,
    _init,
    _forget_bias,
    _gru,
    _optimizer,
    _schedule,
    _clipping,
    _dropout,
    _batch,
    _epochs,
    _stopping,
    _state,
    _chunks,
    _seeds,
    _metric,
)


def checklist(exp: Experiment) -> list[Check]:
    """Every item of the protocol for an experiment's rows."""
    return [item(exp) for item in ITEMS]


def checklist_markdown(exp: Experiment) -> list[str]:
    """The checklist as a table with a one-line summary of what differs."""
    checks = checklist(exp)
    differs = [c.name for c in checks if c.verdict != "same"]
    marks = {"same": "same", "differs": "**differs**", "partly": "**partly**"}
    return [
        "### Protocol checklist",
        "",
        f"The paper's protocol item by item (the paper's value, or char-rnn's where the paper is silent), "
        f"against these rows: {len(checks) - len(differs)} of {len(checks)} the same"
        + (f"; not the same: {', '.join(differs)}." if differs else "."),
        "",
        table(
            ["item", "the paper / char-rnn", "ours (from the rows)", ""],
            [[c.name, c.paper, c.ours, marks[c.verdict]] for c in checks],
            ["l", "l", "l", "l"],
        ),
        "",
    ]
