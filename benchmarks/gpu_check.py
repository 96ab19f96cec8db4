"""The GPU check: what CUDA graphs and side-by-side runs give on one GPU, in one short window.

    python benchmarks/gpu_check.py [--data-dir DIR] [--results-dir results-gpu-check] [--jobs 8]
    python benchmarks/gpu_check.py --cpu-dry-run      # the same code on the CPU, tiny, to test the script
    python benchmarks/gpu_check.py --parts ac         # only some parts: here (a), and (c) for jobs 1 only

On one CUDA GPU, in about 5-8 minutes:
(a) times one training step, eager and replayed from a CUDA graph, for the 36 models of the paper's
    grid (War and Peace vocabulary, sizes matched by parameters): CUDA events around each step,
    median of --steps steps after warm-up;
(b) times --jobs processes training at once (graph steps, LSTM 1x128 and 3x512, under the CUDA MPS
    daemon as a sweep runs them) against one alone:
    the steps per second of all of them together, wall clock between device synchronisations;
(c) prints the projected training time of the War and Peace and Linux paper presets (50 epochs per
    run, early stopping aside, evaluation excluded) for jobs 1 and N, eager and graphs: the sum of
    each model's step time x its steps, divided by (b)'s gain for jobs N;
(d) checks that graph replays and the same step run eagerly reach the same losses over 200 steps
    (dropout 0; to 1e-5 relative), and that dropout draws new masks at every replay.
Every figure is also stored as a row (kind "gpu_check") in --results-dir, which `rnnbench results
merge` can combine with other folders. Without a GPU it says so in one line and exits 2.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time

import torch

from rnnbench import results
from rnnbench.config import Grid, content_id
from rnnbench.core.data import Corpus, load_corpus
from rnnbench.core.devices import environment, hardware
from rnnbench.core.timing import summarize, synchronize
from rnnbench.core.train import Trainer, train, train_step
from rnnbench.sweep.cuda_mps import daemon_for

PAPER_EPOCHS = 50
START_WAIT_S = 120  # (b): how long the workers wait for each other; one that died must not hold the rest
JOB_MODELS = [("lstm", 1, 128), ("lstm", 3, 512)]


def config(corpus: Corpus, device: str, cell: str, layers: int, size: int, steps: int, dropout: float = 0.0):
    return Grid.from_settings(
        dataset=corpus.name,
        cells=(cell,),
        layers=(layers,),
        sizes=(size,),
        devices=(device,),
        max_steps=steps,
        eval_every_steps=10**9,
        dropout=dropout,
    ).expand(corpus.sha256)[0]


def store(out: str, device: str, identity: dict, metrics: dict, status: str = "ok", error: str | None = None) -> None:
    identity = {"check": "gpu_check", "device": device, "hardware": hardware(device).as_dict()} | identity
    results.write_run(
        out,
        results.make_record("gpu_check", content_id(identity), status, identity, environment(device), metrics, error),
    )


def step_ms(corpus: Corpus, device: str, cell: str, layers: int, size: int, graphs: bool, steps: int) -> dict:
    """Median (and quartiles) of one training step's CUDA-event time, warm-up (and capture) left out."""
    trainer = Trainer(config(corpus, device, cell, layers, size, steps), corpus, cuda_graphs=graphs)
    for i in range(trainer.t.warmup_steps + steps):
        trainer.step(i % trainer.steps_per_epoch)
    s = summarize([x * 1e3 for x in trainer.timer.samples_s()])
    replayed = bool(getattr(trainer.step_fn, "replaying", False))
    return {
        "step_ms_median": s["median"],
        "step_ms_q1": s["q1"],
        "step_ms_q3": s["q3"],
        "n_timed_steps": s["n"],
        "cuda_graphs": replayed,
        "cuda_graphs_failure": getattr(trainer.step_fn, "failure", None),
        "hidden_size": trainer.hidden,
    }


def _job(corpus_parts, device, cell, layers, size, graphs, steps, threads, barrier, rates):
    """One of N processes training at once: its steps per second between synchronisations."""
    torch.set_num_threads(threads)  # as --jobs splits them: N processes must not spin against each other
    corpus = Corpus(*corpus_parts)
    trainer = Trainer(config(corpus, device, cell, layers, size, steps), corpus, cuda_graphs=graphs)
    for i in range(trainer.t.warmup_steps):
        trainer.step(i)
    synchronize(device)
    barrier.wait(timeout=START_WAIT_S)
    start = time.perf_counter()
    for i in range(steps):
        trainer.step(i % trainer.steps_per_epoch)
    synchronize(device)
    rates.put(steps / (time.perf_counter() - start))


def together(corpus: Corpus, device: str, model: tuple, graphs: bool, jobs: int, steps: int) -> float:
    """Steps per second of `jobs` processes training `model` at once, all of them together."""
    context = multiprocessing.get_context("spawn")
    barrier, rates = context.Barrier(jobs), context.Queue()
    threads = max(1, torch.get_num_threads() // jobs)
    workers = [
        context.Process(
            target=_job,
            args=((corpus.name, corpus.data, corpus.source), device, *model, graphs, steps, threads, barrier, rates),
        )
        for _ in range(jobs)
    ]
    for w in workers:
        w.start()
    try:
        return sum(rates.get(timeout=START_WAIT_S + 300) for _ in workers)
    finally:
        for w in workers:
            w.join(timeout=10)
            if w.is_alive():
                w.terminate()


def paper_steps(corpus: Corpus) -> int:
    """Steps of one paper run: 50 epochs of batch 100 x 100 (early stopping aside)."""
    train_len = corpus.split_sizes[0] // 100
    return PAPER_EPOCHS * ((train_len - 1) // 100)


def check_equal_losses(corpus: Corpus, device: str, steps: int, out: str) -> list[str]:
    lines = []
    for cell in ("lstm", "gru", "rnn"):
        cfg = Grid.from_settings(
            dataset=corpus.name,
            cells=(cell,),
            layers=(2,),
            sizes=(128,),
            devices=(device,),
            max_steps=steps,
            eval_every_steps=50,
        ).expand(corpus.sha256)[0]
        # The graph against the same step run eagerly (capturable RMSProp, learning rate on the
        # device): plain eager training's optimizer parts from it by rounding (1e-2 to 9e-2 after 200
        # steps), so it is not what a replay is checked against (tests/test_jobs.py does the same).
        same_step = Trainer(cfg, corpus, cuda_graphs=True)
        same_step.step_fn = train_step
        eager, graphed = same_step.run(), train(cfg, corpus, cuda_graphs=True)
        diffs = [
            abs(a["val_loss_nats"] - b["val_loss_nats"]) / a["val_loss_nats"]
            for a, b in zip(eager.curve, graphed.curve)
        ]
        worst = max(diffs)
        ok = worst <= 1e-5 and graphed.metrics["cuda_graphs"] == (device != "cpu")
        store(
            out,
            device,
            {"workload": "graph_vs_eager", "cell": cell, "num_layers": 2, "size": 128, "steps": steps},
            {
                "max_rel_diff_val_loss": worst,
                "eager_test_loss_nats": eager.metrics["test_loss_nats"],
                "graph_test_loss_nats": graphed.metrics["test_loss_nats"],
                "cuda_graphs": graphed.metrics["cuda_graphs"],
            },
            "ok" if ok else "failed",
        )
        lines.append(
            f"  {cell.upper()} 2x128, {steps} steps: validation losses differ by at most {worst:.2e} (relative); "
            f"test {eager.metrics['test_loss_nats']:.4f} eager, {graphed.metrics['test_loss_nats']:.4f} graph"
            f"{'' if ok else '  <-- NOT EQUAL'}"
        )
    return lines


def check_dropout_masks(corpus: Corpus, device: str) -> str:
    trainer = Trainer(config(corpus, device, "lstm", 2, 128, 10, dropout=0.5), corpus, cuda_graphs=True)
    step = trainer.step_fn
    x, y = trainer.data["train"][:, :100], trainer.data["train"][:, 1:101]
    for _ in range(getattr(step, "warmup", 0) + 1):
        step(trainer.model, trainer.optimizer, x, y, None, trainer.clip)
    weights = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    first = float(step(trainer.model, trainer.optimizer, x, y, None, trainer.clip)[0])
    trainer.model.load_state_dict(weights)
    second = float(step(trainer.model, trainer.optimizer, x, y, None, trainer.clip)[0])
    return (
        f"  dropout 0.5, the same batch and weights replayed twice: losses {first:.6f} and {second:.6f} "
        f"({'new masks each replay' if first != second else 'THE SAME MASKS: dropout is frozen in the graph'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("RNNBENCH_DATA_DIR"))
    parser.add_argument("--results-dir", default="results-gpu-check")
    parser.add_argument("--steps", type=int, default=100, help="timed steps per model and mode in (a)")
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument(
        "--cpu-dry-run", action="store_true", help="run every part on the CPU, tiny, to test the script"
    )
    parser.add_argument("--parts", default="abcd", help="which parts to run, e.g. 'ac' ((c) needs (a))")
    args = parser.parse_args()
    if not set(args.parts) <= set("abcd") or ("c" in args.parts and "a" not in args.parts):
        parser.error(f"--parts takes letters of 'abcd', and (c) needs (a); got {args.parts!r}")

    if args.cpu_dry_run:
        device, sizes, steps, jobs_steps, loss_steps = "cpu", (64,), 3, 5, 20
        print(
            "CPU DRY RUN: tests this script's code on the CPU; no figure below is a GPU figure, and CUDA graphs "
            "cannot run here (eager only)."
        )
    elif not torch.cuda.is_available():
        print("gpu_check: no CUDA device here (torch.cuda.is_available() is False); nothing measured", file=sys.stderr)
        sys.exit(2)
    else:
        device, sizes, steps, jobs_steps, loss_steps = "cuda", (64, 128, 256, 512), args.steps, 150, 200
        print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    started = time.perf_counter()
    corpus = load_corpus("warpeace", args.data_dir)
    modes = (False,) if device == "cpu" else (False, True)

    step_times: dict[tuple, float] = {}
    gains: list[float] = []
    if "a" in args.parts:
        step_times = part_a(args, corpus, device, modes, sizes, steps)
    jobs = 2 if device == "cpu" else args.jobs
    if "b" in args.parts:
        # Under the MPS daemon, as a sweep of several CUDA jobs trains (started here when none runs).
        with daemon_for([argparse.Namespace(device=device)], jobs, wanted=True, tell=lambda n: print(n.text)):
            gains = part_b(args, corpus, device, modes, jobs, jobs_steps)
    if "c" in args.parts:
        part_c(corpus, device, modes, jobs, step_times, gains)
    if "d" in args.parts:
        print(f"\n(d) graph against eager training, {loss_steps} steps, dropout 0")
        for line in check_equal_losses(corpus, device, loss_steps, args.results_dir):
            print(line)
        if device != "cpu":
            print(check_dropout_masks(corpus, device))
    print(f"\nrows in {args.results_dir}/runs; {time.perf_counter() - started:.0f} s in all")


def part_a(args, corpus: Corpus, device: str, modes: tuple, sizes: tuple, steps: int) -> dict[tuple, float]:
    print(f"\n(a) one training step, ms (median of {steps} after warm-up), batch 100 x 100, War and Peace")
    step_times: dict[tuple, float] = {}
    for size in sizes:
        for layers in (1,) if device == "cpu" else (1, 2, 3):  # the dry run: one layer, a few seconds
            for cell in ("lstm", "rnn", "gru"):
                row = []
                for graphs in modes:
                    m = step_ms(corpus, device, cell, layers, size, graphs, steps)
                    step_times[(cell, layers, size, graphs)] = m["step_ms_median"]
                    store(
                        args.results_dir,
                        device,
                        {
                            "workload": "train_step",
                            "cell": cell,
                            "num_layers": layers,
                            "size": size,
                            "size_mode": "params",
                            "graphs_requested": graphs,
                        },
                        m,
                    )
                    row.append(
                        f"{'graph' if graphs else 'eager'} {m['step_ms_median']:7.3f}"
                        + (" (capture failed: eager)" if m["cuda_graphs_failure"] else "")
                    )
                gain = (
                    f"  x{step_times[(cell, layers, size, False)] / step_times[(cell, layers, size, True)]:.2f}"
                    if len(modes) == 2
                    else ""
                )
                print(f"  {cell.upper():4} {layers}x{size:<4} " + "   ".join(row) + gain)
    return step_times


def part_b(args, corpus: Corpus, device: str, modes: tuple, jobs: int, jobs_steps: int) -> list[float]:
    print(
        f"\n(b) {jobs} processes training at once vs one ({jobs_steps} steps each, "
        f"{'graphs' if modes[-1] else 'eager'})"
    )
    gains = []
    for model in JOB_MODELS if device != "cpu" else [("lstm", 1, 64)]:
        solo = together(corpus, device, model, modes[-1], 1, jobs_steps)
        many = together(corpus, device, model, modes[-1], jobs, jobs_steps)
        gains.append(many / solo)
        store(
            args.results_dir,
            device,
            {
                "workload": "jobs",
                "cell": model[0],
                "num_layers": model[1],
                "size": model[2],
                "jobs": jobs,
                "graphs_requested": modes[-1],
            },
            {"steps_per_s_solo": solo, "steps_per_s_together": many, "gain": many / solo},
        )
        print(
            f"  {model[0].upper()} {model[1]}x{model[2]}: one alone {solo:,.0f} steps/s; {jobs} together "
            f"{many:,.0f} steps/s in all = x{many / solo:.2f}"
        )
    return gains


def part_c(corpus: Corpus, device: str, modes: tuple, jobs: int, step_times: dict, gains: list[float]) -> None:
    print("\n(c) projected training time of the paper presets, all 36 runs, training steps only (evaluation excluded)")
    gain = statistics.median(gains) if gains else None  # without (b), jobs 1 only
    for name, n_steps in (("War and Peace", paper_steps(corpus)), ("Linux", 24_800)):
        for graphs in modes:
            total_s = sum(ms for (_cell, _layers, _size, g), ms in step_times.items() if g == graphs) / 1e3 * n_steps
            if device == "cpu":
                total_s *= 36 / sum(1 for k in step_times if k[3] == graphs)  # the dry run timed fewer models
            shared = (
                f"; jobs {jobs} {total_s / gain / 60:6.1f} min (using (b)'s median gain x{gain:.2f})" if gain else ""
            )
            print(
                f"  {name} ({n_steps:,} steps per run), {'graphs' if graphs else 'eager '}: "
                f"jobs 1 {total_s / 60:6.1f} min{shared}"
            )
    print("  (Linux projected from the War and Peace models' step times: its vocabulary is 99, not 87.)")


if __name__ == "__main__":
    main()
