"""How good the sweep's plan was: each stored run's estimate (what the plan expected when it
started, `estimated_s`) against what it took (`wall_s`), from the rows of a results folder.

    python benchmarks/plan_accuracy.py results            # every run that had an estimate
    python benchmarks/plan_accuracy.py results --device cuda

Runs that were stopped and resumed are left out: their estimate was of the part still to train,
their wall time is of the whole. Prints one line per run and the median absolute error in percent,
by where the estimate came from (stored rows of the same shape, or a probe).
"""

from __future__ import annotations

import argparse
import statistics

from rnnbench import results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_dir")
    parser.add_argument("--device", default=None, help="only the runs on this device kind (cpu, cuda)")
    args = parser.parse_args()
    df = results.load(args.results_dir)
    needed = {"estimated_s", "wall_s", "estimate_source"}
    if df.empty or not needed <= set(df.columns):
        raise SystemExit(f"no run in {args.results_dir} has an estimate (rows from a sweep with --stop-after have)")
    df = df[df.estimated_s.notna() & df.wall_s.notna() & (df.status == "ok")]
    if "resumed_at_steps" in df.columns:
        df = df[df.resumed_at_steps.map(lambda r: not (isinstance(r, list) and r))]
    if args.device:
        df = df[df.device.str.startswith(args.device)]
    if df.empty:
        raise SystemExit("no finished run with an estimate that was not resumed")
    df = df.assign(error_pct=100 * (df.estimated_s - df.wall_s) / df.wall_s)
    print(f"{'run':<13} {'model':<10} {'device':<6} {'from':<7} {'estimate s':>10} {'took s':>8} {'error':>7}")
    for r in df.sort_values("wall_s").itertuples():
        model = f"{r.cell} {r.num_layers}x{r.size}"
        print(
            f"{r.run_id:<13} {model:<10} {r.device:<6} {r.estimate_source:<7} "
            f"{r.estimated_s:>10,.0f} {r.wall_s:>8,.0f} {r.error_pct:>+6.0f}%"
        )
    for source, part in df.groupby("estimate_source"):
        print(
            f"from {source}: {len(part)} run(s), median absolute error "
            f"{statistics.median(part.error_pct.abs()):.0f}%, median signed {statistics.median(part.error_pct):+.0f}%"
        )


if __name__ == "__main__":
    main()
