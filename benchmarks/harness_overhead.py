"""Does rnnbench's training loop cost anything over a minimal hand-written torch loop?

    python benchmarks/harness_overhead.py [--rounds 5] [--steps 30] [--data-dir ../shared/datasets]

In one process, alternating A (rnnbench's `train()`, its training-loop time `train_loop_s`, which
holds the per-step timers, loss bookkeeping and budget checks but not evaluation) and B (the loop
below: the same CharRNN, optimizer, batch and War and Peace data on the same device), for LSTM 1x128,
2x256 and 1x512 on the CPU. Prints the median ratio of training characters/s, A over B (goal: at
least 0.97); the machine's float32 matmul rate and LSTM 1x512's achieved GFLOP/s as a fraction of
it; and the wall time of `rnnbench --help` (goal: under 1 second).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from rnnbench.config import Grid
from rnnbench.core.data import Corpus, load_corpus, streams
from rnnbench.core.models import CharRNN, flops_per_char
from rnnbench.core.train import train
from rnnbench.measure.device_speed import matmul_rate

MODELS = [("lstm", 1, 128), ("lstm", 2, 256), ("lstm", 1, 512)]
BATCH, SEQ = 100, 100


def minimal_loop(corpus: Corpus, cell: str, layers: int, hidden: int, steps: int) -> float:
    """Training characters/s of the plainest correct loop: no timers, no bookkeeping."""
    torch.manual_seed(0)
    data = streams(corpus.splits()["train"], BATCH)
    model = CharRNN(corpus.vocab_size, cell, hidden, layers)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=2e-3, alpha=0.95)
    state = None
    start = time.perf_counter()
    for i in range(steps):
        x, y = data[:, i * SEQ : (i + 1) * SEQ], data[:, i * SEQ + 1 : (i + 1) * SEQ + 1]
        if state is not None:
            state = tuple(s.detach() for s in state)
        logits, state = model(x, state)
        loss = F.cross_entropy(logits.reshape(-1, corpus.vocab_size), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
    return steps * BATCH * SEQ / (time.perf_counter() - start)


def rnnbench_loop(corpus: Corpus, cell: str, layers: int, hidden: int, steps: int) -> dict:
    grid = Grid.from_settings(
        dataset=corpus.name,
        cells=(cell,),
        layers=(layers,),
        sizes=(hidden,),
        size_mode="hidden",
        devices=("cpu",),
        max_steps=steps,
        eval_every_steps=10**9,
    )
    metrics = train(grid.expand(corpus.sha256)[0], corpus).metrics
    return {"chars_per_s": metrics["chars_trained"] / metrics["train_loop_s"], "metrics": metrics}


def help_wall_s(repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "rnnbench", "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--data-dir", default=os.environ.get("RNNBENCH_DATA_DIR"))
    args = parser.parse_args()

    full = load_corpus("warpeace", args.data_dir)
    # The first 1.2 MB keep the same vocabulary and text; its smaller val/test splits keep the
    # evaluation that train() ends with short. Neither loop's timed part touches them.
    corpus = Corpus("warpeace-head", full.data[:1_200_000], full.source)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH} x {SEQ}, "
        f"{args.steps} steps per trial, {args.rounds} rounds alternating A/B"
    )
    print(f"{'model':<12} {'rnnbench chars/s':>17} {'minimal chars/s':>16} {'ratio A/B':>10} {'ratios (all rounds)'}")
    last_metrics = {}
    for cell, layers, hidden in MODELS:
        a_rates, b_rates = [], []
        for _ in range(args.rounds):
            result = rnnbench_loop(corpus, cell, layers, hidden, args.steps)
            a_rates.append(result["chars_per_s"])
            b_rates.append(minimal_loop(corpus, cell, layers, hidden, args.steps))
            last_metrics[(cell, layers, hidden)] = result["metrics"]
        ratios = [a / b for a, b in zip(a_rates, b_rates)]
        print(
            f"{cell} {layers}x{hidden:<6} {statistics.median(a_rates):>17,.0f} {statistics.median(b_rates):>16,.0f} "
            f"{statistics.median(ratios):>10.3f} {', '.join(f'{r:.3f}' for r in ratios)}"
        )

    limit = matmul_rate("cpu", torch.float32, torch.get_num_threads(), min_time_s=1.0)
    peak = limit["gflops"]
    m = last_metrics[("lstm", 1, 512)]
    flops = flops_per_char("lstm", corpus.vocab_size, 512, 1)
    print(
        f"\nfloat32 matmul, best of square sizes 512-2048: {peak:.1f} GFLOP/s (IQR {limit['gflops_iqr']:.1f}) "
        f"at n={limit['matmul_n']} (torch.utils.benchmark, median)"
    )
    print(
        f"LSTM 1x512 training: {m['train_chars_per_s']:,.0f} chars/s (IQR {m['train_chars_per_s_iqr']:,.0f}) x "
        f"{flops / 1e6:.2f} MFLOP/char = {m['achieved_gflops']:.1f} GFLOP/s = {m['achieved_gflops'] / peak:.0%} "
        "of the matmul rate"
    )
    print(f"`rnnbench --help` wall time: {help_wall_s():.2f} s (median of 5)")


if __name__ == "__main__":
    main()
