"""What char-rnn's GRU costs: the training step of the paper's GRUs with the reset gate after the
recurrent product (torch's fused nn.GRU) and before it (models.ResetBeforeGRU, plain torch ops),
timed alternately, A then B, in the same process; medians of the rounds and their ratio.

    python benchmarks/gru_reset_speed.py                      # the three size-64 GRUs, one CPU thread
    python benchmarks/gru_reset_speed.py --sizes 64,128,256,512 --device cuda

The models are the `paper` preset's (params mode on War and Peace's 87-byte vocabulary), batch
100 x 100, RMSProp, norm clipping: `train.train_step` as a sweep runs it, eager.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from rnnbench.core.models import CharRNN, hidden_size_for
from rnnbench.core.timing import synchronize
from rnnbench.core.train import GradClip, train_step

VOCAB = 87


def step_seconds(model: CharRNN, device: torch.device, steps: int) -> float:
    """Median seconds of `steps` training steps, after 3 not timed."""
    optimizer = torch.optim.RMSprop(model.parameters(), lr=2e-3, alpha=0.95)
    data = torch.randint(0, VOCAB, (100, 101), device=device)
    state, samples, clip = None, [], GradClip("norm", 5.0, 100, device)
    for i in range(3 + steps):
        synchronize(device)
        start = time.perf_counter()
        _, state = train_step(model, optimizer, data[:, :100], data[:, 1:], state, clip)
        synchronize(device)
        if i >= 3:
            samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64")
    parser.add_argument("--layers", default="1,2,3")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(
        f"torch {torch.__version__}, {device}, {torch.get_num_threads()} thread(s); "
        f"median step of {args.steps} steps, median of {args.rounds} alternating rounds"
    )
    print(f"{'model':<12} {'hidden':>6} {'after (fused) ms':>17} {'before ms':>10} {'before / after':>15}")
    for size in map(int, args.sizes.split(",")):
        for layers in map(int, args.layers.split(",")):
            hidden = hidden_size_for("gru", layers, size, VOCAB, "params")
            times = {"after": [], "before": []}
            for _ in range(args.rounds):
                for reset in ("after", "before"):  # alternating, so that drift hits both alike
                    torch.manual_seed(0)
                    model = CharRNN(VOCAB, "gru", hidden, layers, gru_reset=reset).to(device)
                    times[reset].append(step_seconds(model, device, args.steps))
            after, before = (statistics.median(times[r]) * 1e3 for r in ("after", "before"))
            print(f"GRU {layers}x{size:<6} {hidden:>6} {after:>17.1f} {before:>10.1f} {before / after:>14.2f}x")


if __name__ == "__main__":
    main()
