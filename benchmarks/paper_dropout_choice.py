"""The paper campaign's dropout rule for the 2- and 3-layer models of one size: which of them run at
0.25 too. The paper chose dropout per model on validation; on a CPU the campaign saves runs by
reading a deeper model's choice off the 1-layer model of its cell: the deeper models of a cell run
at 0.25 too only where its 1-layer model chose 0.25. That reading says nothing about a model whose
own run at 0 learned nothing from the context (its validation loss no lower than the characters'
frequencies alone, the stored 1-gram's of the same layout): its choice is open, so it runs at 0.25
too, and validation chooses between the two as for any other model.

    python benchmarks/paper_dropout_choice.py RESULTS_DIR SIZE
    python benchmarks/paper_dropout_choice.py RESULTS_DIR --floor   # exit 3: no 1-gram stored

Prints the sweeps' options a line (`--cells lstm,gru --layers 2,3`, `--cells rnn --layers 3`),
nothing when no deeper model runs at 0.25 or a 1-layer model is not stored at both values yet; on
stderr each model's validation losses. Without a 1-gram of the preset's corpus and layout in
RESULTS_DIR (`rnnbench baseline ngram --preset paper` stores it) it says so on stderr and makes
only the 1-layer reading; `--floor` says only whether one is stored (exit code 0, or 3).
The runs are looked up by identity, as the sweep (`--preset paper --devices cpu --threads 1`)
would plan them, so that rows of other settings or hardware in the same folder are never read for them.
"""

from __future__ import annotations

import sys

from rnnbench.config import load_preset
from rnnbench.report.baselines import frequency_floor
from rnnbench.results import identity, iter_records, load
from rnnbench.sweep import plan
from rnnbench.sweep.runs import LocalExecutor

CHOICES = (0.0, 0.25)
NO_FLOOR = 3


def validation_losses(results_dir: str, size: int) -> dict[tuple[str, int, float], float | None]:
    """(cell, layers, dropout) -> the stored validation loss of that run of the preset at `size`, or None."""
    grid = load_preset("paper").replace(sizes=(size,), dropout=CHOICES, devices=("cpu",), threads=1)
    _, runs = plan(grid, executor=LocalExecutor(1))
    records, _ = iter_records(results_dir)
    val = {r.identity: r.metrics.get("val_loss_nats") for r in records if r.status == "ok"}
    return {
        (cfg.cell, cfg.num_layers, cfg.train.dropout): val.get(identity("sweep", cfg.as_dict(), cfg.hardware))
        for cfg in runs
    }


def sweeps_at_0_25(
    losses: dict[tuple[str, int, float], float | None], size: int, floor: float | None
) -> tuple[list[str], list[str]]:
    """(a sweep's options a line, a line per model saying why) for the 2- and 3-layer models at
    `size` that run at 0.25: those of the cells whose 1-layer model chose 0.25, and those whose own
    run at 0 ended with a validation loss no lower than `floor` (None: that check is not made)."""
    lines, chosen, stuck = [], [], {}
    for cell in dict.fromkeys(c for c, _, _ in losses):
        at = {d: losses.get((cell, 1, d)) for d in CHOICES}
        said = ", ".join(f"{d:g}: {'not stored' if v is None else f'{v:.4f}'}" for d, v in at.items())
        lines.append(f"{cell} 1x{size}: validation loss at dropout {said}")
        if None not in at.values() and min(at, key=at.get) == 0.25:
            chosen.append(cell)
            continue
        for layers in (2, 3):
            loss = losses.get((cell, layers, 0.0))
            if floor is not None and loss is not None and loss >= floor:
                lines.append(
                    f"{cell} {layers}x{size}: validation loss {loss:.4f} at dropout 0, no lower than the "
                    f"characters' frequencies ({floor:.4f}): it learned nothing from the context, so it runs "
                    "at 0.25 too"
                )
                stuck.setdefault(cell, []).append(str(layers))
    sweeps = [f"--cells {','.join(chosen)} --layers 2,3"] if chosen else []
    sweeps += [f"--cells {cell} --layers {','.join(layers)}" for cell, layers in stuck.items()]
    return sweeps, lines


def main(argv: list[str]) -> None:
    if len(argv) != 2 or not (argv[1].isdigit() or argv[1] == "--floor"):
        print("usage: python benchmarks/paper_dropout_choice.py RESULTS_DIR SIZE|--floor", file=sys.stderr)
        sys.exit(2)
    results_dir = argv[0]
    preset = load_preset("paper")
    floor = frequency_floor(load(results_dir), preset.dataset, preset.train.split, "val_loss_nats")
    if floor is None:
        print(
            f"no 1-gram of {preset.dataset} ({preset.train.split} layout) is stored in {results_dir}: a model that "
            "learned nothing cannot be told (rnnbench baseline ngram --preset paper stores it)",
            file=sys.stderr,
        )
    if argv[1] == "--floor":  # only whether the 1-gram is stored
        sys.exit(0 if floor is not None else NO_FLOOR)
    size = int(argv[1])
    sweeps, lines = sweeps_at_0_25(validation_losses(results_dir, size), size, floor)
    print("\n".join(lines), file=sys.stderr)
    for sweep in sweeps:
        print(sweep)


if __name__ == "__main__":
    main(sys.argv[1:])
