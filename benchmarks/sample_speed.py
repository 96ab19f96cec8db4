"""How fast `rnnbench sample` generates, against compare-devices' generation loop for the same
model and against the previous sampler (the whole recurrent module called once per character):

    python benchmarks/sample_speed.py [--chars 2000] [--rounds 5] [--threads 1] [--device cpu]

Models get random weights (speed does not depend on what a model learned) on War and Peace's
vocabulary of 87. Each figure is the median characters/s over --rounds rounds, the three ways
alternating within each round.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from rnnbench.core.data import load_corpus
from rnnbench.core.models import CharRNN, hidden_size_for
from rnnbench.core.timing import synchronize
from rnnbench.measure.device_speed import GENERATE_CHARS, ModelWorkloads
from rnnbench.measure.sample import stream

MODELS = [("rnn", 2, 64, "hidden"), ("lstm", 1, 128, "hidden"), ("gru", 2, 128, "hidden"), ("lstm", 2, 512, "params")]


@torch.no_grad()
def previous_sampler(model, vocab, length, device, generator):
    """The sampler before: the module called once per character, each character read back."""
    logits, state = model(torch.tensor([[0]], device=device))
    for _ in range(length):
        last = logits[0, -1].float().cpu()
        nxt = int(torch.multinomial(F.softmax(last, dim=-1), 1, generator=generator))
        logits, state = model(torch.tensor([[nxt]], device=device), state)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    corpus = load_corpus("synthetic")  # feeds ModelWorkloads' batches; its model is replaced below
    vocab = list(range(87))  # War and Peace's vocabulary size
    print(f"{args.device}, {args.threads} thread(s), {args.chars} characters per timing, median of {args.rounds}")
    print("| model | hidden | rnnbench sample | compare-devices' loop | previous sampler |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for cell, layers, size, mode in MODELS:
        hidden = hidden_size_for(cell, layers, size, 87, mode)
        torch.manual_seed(0)
        model = CharRNN(87, cell, hidden, layers).to(args.device).eval()
        workloads = ModelWorkloads(corpus, cell, hidden, layers, args.device, torch.float32, 1, 16)
        workloads.model = model  # the same weights and vocabulary size for all three
        workloads.prime = torch.zeros(1, 1, dtype=torch.long, device=args.device)
        rates = {"sample": [], "compare": [], "previous": []}
        for _ in range(args.rounds):
            start = time.perf_counter()
            for _ in stream(model, vocab, args.chars, 1.0, b"\x00", 0):
                pass
            rates["sample"].append(args.chars / (time.perf_counter() - start))
            start = time.perf_counter()
            for _ in range(args.chars // GENERATE_CHARS):
                workloads.generate()
            synchronize(args.device)
            rates["compare"].append(args.chars // GENERATE_CHARS * GENERATE_CHARS / (time.perf_counter() - start))
            start = time.perf_counter()
            previous_sampler(model, vocab, args.chars, args.device, torch.Generator().manual_seed(0))
            rates["previous"].append(args.chars / (time.perf_counter() - start))
        med = {k: statistics.median(v) for k, v in rates.items()}
        print(
            f"| {cell.upper()} {layers}x{size} ({mode}) | {hidden} | {med['sample']:,.0f} | {med['compare']:,.0f} "
            f"| {med['previous']:,.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
