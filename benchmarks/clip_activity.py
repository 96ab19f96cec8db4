"""How often each gradient clipping acts over the first steps of the paper protocol: the share of
steps at which it changed the gradient, under rnnbench's norm clip and char-rnn's element clamp.

    RNNBENCH_DATA_DIR=../shared/datasets python benchmarks/clip_activity.py            # 300 steps each
    python benchmarks/clip_activity.py --steps 100 --models lstm:1:64,rnn:1:128

Each model trains as a sweep of the `paper` preset would (War and Peace, chunked layout, seed 0,
dropout 0) for --steps steps on one CPU thread, once per clipping; the counts are the ones every
row stores (clipped_steps). A full run's share is in its row; this is the early phase, where the
gradients are largest.
"""

from __future__ import annotations

import argparse

import torch

from rnnbench.config import load_preset
from rnnbench.core.data import load_corpus
from rnnbench.core.train import train

MODELS = "lstm:1:64,gru:1:128,rnn:1:128,lstm:1:512"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--models", default=MODELS, help="cell:layers:size, comma separated")
    args = parser.parse_args()
    torch.set_num_threads(1)
    corpus = load_corpus("warpeace")
    print(f"{'model':<11} {'clipping':<8} {'steps':>6} {'changed':>8} {'share':>7}")
    for spec in args.models.split(","):
        cell, layers, size = spec.split(":")
        for mode in ("norm", "clamp"):
            grid = load_preset("paper").replace(
                cells=(cell,),
                layers=(int(layers),),
                sizes=(int(size),),
                dropout=(0.0,),
                devices=("cpu",),
                grad_clip_mode=mode,
                max_steps=args.steps,
                eval_every_steps=args.steps,
            )
            m = train(grid.expand(corpus.sha256)[0], corpus).metrics
            print(
                f"{cell} {layers}x{size:<5} {mode:<8} {m['steps']:>6} {m['clipped_steps']:>8} "
                f"{m['clipped_step_share']:>7.1%}"
            )


if __name__ == "__main__":
    main()
