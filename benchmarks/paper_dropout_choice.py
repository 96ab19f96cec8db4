"""Which cells chose dropout 0.25 on validation at one size: the paper campaign's rule for the 2- and
3-layer models (they run at 0.25 too only where the 1-layer model of their cell chose it).

    python benchmarks/paper_dropout_choice.py RESULTS_DIR SIZE

Prints the cells as a comma list (nothing when none chose 0.25, or a 1-layer model is not stored
at both values yet), and on stderr each 1-layer model's validation losses. The runs are looked up
by identity, as the sweep (`--preset paper --devices cpu --threads 1`) would plan them, so that
rows of other settings or hardware in the same folder are never read for them.
"""

from __future__ import annotations

import sys

from rnnbench.config import load_preset
from rnnbench.results import identity, iter_records
from rnnbench.sweep import plan
from rnnbench.sweep.runs import LocalExecutor

CHOICES = (0.0, 0.25)


def chosen(results_dir: str, size: int) -> tuple[list[str], list[str]]:
    """(cells whose 1-layer model at `size` chose 0.25, a line per model saying why)."""
    grid = load_preset("paper").replace(sizes=(size,), layers=(1,), dropout=CHOICES, devices=("cpu",), threads=1)
    _, runs = plan(grid, executor=LocalExecutor(1))
    records, _ = iter_records(results_dir)
    val = {r.identity: r.metrics.get("val_loss_nats") for r in records if r.status == "ok"}
    cells, lines = [], []
    for cell in grid.cells:
        losses = {}
        for cfg in (c for c in runs if c.cell == cell):
            key = identity("sweep", cfg.as_dict(), cfg.hardware)
            losses[cfg.train.dropout] = val.get(key)
        said = ", ".join(f"{d:g}: {'not stored' if v is None else f'{v:.4f}'}" for d, v in losses.items())
        lines.append(f"{cell} 1x{size}: validation loss at dropout {said}")
        if None not in losses.values() and min(losses, key=losses.get) == 0.25:
            cells.append(cell)
    return cells, lines


def main(argv: list[str]) -> None:
    if len(argv) != 2 or not argv[1].isdigit():
        print("usage: python benchmarks/paper_dropout_choice.py RESULTS_DIR SIZE", file=sys.stderr)
        sys.exit(2)
    cells, lines = chosen(argv[0], int(argv[1]))
    print("\n".join(lines), file=sys.stderr)
    print(",".join(cells))


if __name__ == "__main__":
    main(sys.argv[1:])
