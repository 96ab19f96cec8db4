"""How good the sweep's plan was: each stored run's estimate (what the plan expected when it
started, `estimated_s`) against what it took (`wall_s`), from the rows of a results folder.

    python benchmarks/plan_accuracy.py results            # every run that had an estimate
    python benchmarks/plan_accuracy.py results --device cuda
    python benchmarks/plan_accuracy.py results --probe-shapes 12 --dataset warpeace   # probes against rows

With --probe-shapes N, the probe itself is put to the test on this machine (quiet it first): for N
model shapes that have finished rows of this hardware (CPU, one thread or the default count as the
rows say), a probe of the shape now, as a plan takes it (time-boxed: sweep.estimate.PROBE_TIME_S
of timed steps, at least PROBE_MIN_STEPS), and the longer probe of earlier versions (5 warm-up
steps, 30 timed), each against the rows' median step time; with each probe's own wall time.
With --slow-shapes N, the N slowest shapes of the paper preset on one thread, which today's probe
times at a quarter of their sequence: that probe against the long one.

    python benchmarks/plan_accuracy.py results --slow-shapes 4

Runs that were stopped and resumed are left out: their estimate was of the part still to train,
their wall time is of the whole; so are runs that stopped early (the estimate is of every epoch).
Prints one line per run and the median absolute error in percent, by where the estimate came from
(stored rows of the same shape, or a probe). Then the same per step (`estimated_step_ms` against
the row's median step): there every run counts, a resumed one or one that stopped early too, since
neither changes what a step takes.
"""

from __future__ import annotations

import argparse
import statistics

from rnnbench import results


def timed_probe(cfg, corpus, boxed: bool) -> tuple[float, float]:
    """(step seconds, seconds the probe took): as a plan probes today (`boxed`), or as before the
    time box: 5 warm-up steps and 30 timed ones, every step at the run's own length."""
    import time

    from rnnbench.sweep import estimate

    names = ("PROBE_WARMUP", "PROBE_TIME_S", "PROBE_EVAL_STEPS", "PROBE_SLOW_STEP_S")
    saved = {name: getattr(estimate, name) for name in names}
    if not boxed:
        for name, value in zip(names, (5, float("inf"), 10, float("inf"))):
            setattr(estimate, name, value)
    try:
        start = time.perf_counter()
        step_s, _ = estimate.probe(cfg, corpus, 30)
        return step_s, time.perf_counter() - start
    finally:
        for name, value in saved.items():
            setattr(estimate, name, value)


def slow_shapes(n: int, dataset: str) -> None:
    """The `n` slowest shapes of the paper preset on one thread (none has rows on this machine yet):
    today's probe, which times a slow shape at a quarter of its sequence and scales, against the
    probe before the time box (35 steps at full length), as the reference."""
    from rnnbench.config import Hardware, load_preset
    from rnnbench.core.data import load_corpus
    from rnnbench.core.models import flops_per_char, hidden_size_for

    corpus = load_corpus(dataset)
    cfgs = load_preset("paper").replace(dataset=dataset, devices=("cpu",), dropout=(0.0,))
    cfgs = cfgs.expand(corpus.sha256, hardware={"cpu": Hardware("cpu", "x", 1, "t")})

    def work(cfg) -> float:
        hidden = hidden_size_for(cfg.cell, cfg.num_layers, cfg.size, corpus.vocab_size, cfg.size_mode)
        return flops_per_char(cfg.cell, corpus.vocab_size, hidden, cfg.num_layers)

    chosen = sorted(cfgs, key=work)[-n:]
    print(f"{'model':<12} {'long ms':>8} {'took s':>7} {'today ms':>9} {'err':>6} {'took s':>7}")
    errors, saved = [], 0.0
    for cfg in chosen:
        long_s, long_took = timed_probe(cfg, corpus, boxed=False)
        step_s, took = timed_probe(cfg, corpus, boxed=True)
        errors.append(100 * (step_s - long_s) / long_s)
        saved += long_took - took
        print(
            f"{cfg.cell} {cfg.num_layers}x{cfg.size:<6} {long_s * 1e3:>8.1f} {long_took:>7.1f} "
            f"{step_s * 1e3:>9.1f} {errors[-1]:>+5.1f}% {took:>7.1f}"
        )
    print(
        f"today's probe against the long one: median absolute difference {statistics.median(map(abs, errors)):.1f}% "
        f"over {len(errors)} shapes, {saved:.0f} s of probing saved"
    )


def probe_shapes(results_dir: str, n: int, dataset: str) -> None:
    from rnnbench.config import Grid, Hardware
    from rnnbench.core.data import load_corpus
    from rnnbench.core.devices import hardware

    df = results.load(results_dir)
    rows = df[(df.kind == "sweep") & (df.status == "ok") & (df.device == "cpu") & (df.dataset == dataset)]
    rows = rows[rows.step_ms_median.notna() & rows.hardware.isin({hardware("cpu", t).label for t in (1, 2)})]
    keys = ["cell", "num_layers", "size", "size_mode", "batch_size", "seq_len", "gru_reset", "torch_num_threads"]
    shapes = rows.groupby(keys, dropna=False).step_ms_median.median().reset_index()
    shapes = shapes.sort_values("step_ms_median").iloc[:: max(1, len(shapes) // n)].head(n)
    corpus = load_corpus(dataset)
    errors = {"time-boxed": [], "30 steps": []}
    columns = f"{'boxed ms':>9} {'err':>6} {'took s':>7} {'30-step ms':>10} {'err':>6} {'took s':>7}"
    print(f"{'model':<12} {'threads':>7} {'rows ms':>8} " + columns)
    for s in shapes.itertuples():
        grid = Grid.from_settings(
            dataset=dataset,
            cells=(s.cell,),
            layers=(int(s.num_layers),),
            sizes=(int(s.size),),
            size_mode=s.size_mode,
            devices=("cpu",),
            batch_size=int(s.batch_size),
            seq_len=int(s.seq_len),
            gru_reset=s.gru_reset if isinstance(s.gru_reset, str) else "after",
        )
        threads = int(s.torch_num_threads)
        cfg = grid.expand(corpus.sha256, hardware={"cpu": Hardware("cpu", "x", threads, "t")})[0]
        out = []
        for label, boxed in (("time-boxed", True), ("30 steps", False)):
            step_s, took = timed_probe(cfg, corpus, boxed)
            error = 100 * (step_s * 1e3 - s.step_ms_median) / s.step_ms_median
            errors[label].append(error)
            out += [f"{step_s * 1e3:>9.1f}", f"{error:>+5.0f}%", f"{took:>7.1f}"]
        print(f"{s.cell} {int(s.num_layers)}x{int(s.size):<6} {threads:>7} {s.step_ms_median:>8.1f} " + " ".join(out))
    for label, found in errors.items():
        print(
            f"{label}: median absolute error {statistics.median(map(abs, found)):.1f}% over {len(found)} shapes, "
            f"median signed {statistics.median(found):+.1f}%"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_dir")
    parser.add_argument("--device", default=None, help="only the runs on this device kind (cpu, cuda)")
    parser.add_argument("--probe-shapes", type=int, default=0, help="probe this many shapes now (see above)")
    parser.add_argument("--slow-shapes", type=int, default=0, help="probe the N slowest paper shapes (see above)")
    parser.add_argument("--dataset", default="warpeace", help="with --probe-shapes: the corpus of the rows")
    args = parser.parse_args()
    if args.slow_shapes:
        slow_shapes(args.slow_shapes, args.dataset)
        return
    if args.probe_shapes:
        probe_shapes(args.results_dir, args.probe_shapes, args.dataset)
        return
    df = results.load(args.results_dir)
    needed = {"estimated_s", "wall_s", "estimate_source"}
    if df.empty or not needed <= set(df.columns):
        raise SystemExit(
            f"no run in {args.results_dir} has an estimate (a sweep stores one from --stop-after's probes, "
            "or from stored rows or kept probes of the shape, or a stopped run's own steps)"
        )
    if args.device:
        df = df[df.device.str.startswith(args.device)]
    whole_runs(df[df.estimated_s.notna() & df.wall_s.notna() & (df.status == "ok")])
    if "estimated_step_ms" in df.columns:
        per_step(df[df.estimated_step_ms.notna() & df.step_ms_median.notna() & (df.status == "ok")])


def judge(df, estimated: str, took: str, unit: str) -> None:
    """One line per run, the estimate (column `estimated`) against what it took (`took`), then the
    median absolute error in percent by where the estimate came from."""
    df = df.assign(error_pct=100 * (df[estimated] - df[took]) / df[took])
    header = f"{'run':<13} {'model':<10} {'device':<6} {'from':<7} {'estimate ' + unit:>12} {'took ' + unit:>10}"
    print(f"{header} {'error':>7}")
    for r in df.sort_values(took).itertuples():
        print(
            f"{r.run_id:<13} {f'{r.cell} {r.num_layers}x{r.size}':<10} {r.device:<6} {r.estimate_source:<7} "
            f"{getattr(r, estimated):>12,.1f} {getattr(r, took):>10,.1f} {r.error_pct:>+6.0f}%"
        )
    for source, part in df.groupby("estimate_source"):
        print(
            f"from {source}: {len(part)} run(s), median absolute error "
            f"{statistics.median(part.error_pct.abs()):.0f}%, median signed {statistics.median(part.error_pct):+.0f}%"
        )


def whole_runs(df) -> None:
    if "resumed_at_steps" in df.columns:
        df = df[df.resumed_at_steps.map(lambda r: not (isinstance(r, list) and r))]
    if "stop_reason" in df.columns:
        df = df[df.stop_reason != "early_stop"]
    if df.empty:
        print("whole runs: none with an estimate that was neither resumed nor stopped early")
        return
    print("whole runs:")
    judge(df, "estimated_s", "wall_s", "s")


def per_step(df) -> None:
    if not df.empty:
        print("\nper step (resumed runs and early stops too):")
        judge(df, "estimated_step_ms", "step_ms_median", "ms")


if __name__ == "__main__":
    main()
