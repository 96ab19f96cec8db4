"""Where CUDA-graph training parts from eager training: eager twice (is eager deterministic?), eager
with the graph's optimizer setup (capturable RMSProp, learning rate as a device tensor) but no graph,
and the graph itself, 200 steps each (2x128, dropout 0), the largest relative difference of their
validation losses:

    python benchmarks/graph_vs_eager.py            # needs a CUDA GPU
"""

from __future__ import annotations

import sys

import torch

from rnnbench.config import Grid
from rnnbench.core.data import Corpus
from rnnbench.core.synthetic import generate
from rnnbench.core.train import Trainer, train_step


def losses(cfg, corpus, graphs: bool, eager_step: bool = False) -> list[float]:
    trainer = Trainer(cfg, corpus, cuda_graphs=graphs)
    if eager_step:
        trainer.step_fn = train_step  # the graph's optimizer and lr tensor, stepped eagerly
    return [p["val_loss_nats"] for p in trainer.run().curve]


def worst(a: list[float], b: list[float]) -> float:
    return max(abs(x - y) / x for x, y in zip(a, b))


def main() -> None:
    if not torch.cuda.is_available():
        print("graph_vs_eager: no CUDA device here; nothing measured", file=sys.stderr)
        sys.exit(2)
    corpus = Corpus("tiny", generate(200_000, seed=2), "generated")
    for cell in ("rnn", "lstm", "gru"):
        cfg = Grid.from_settings(
            dataset="tiny",
            cells=(cell,),
            layers=(2,),
            sizes=(128,),
            size_mode="hidden",
            devices=("cuda",),
            batch_size=32,
            seq_len=64,
            max_steps=200,
            eval_every_steps=50,
        ).expand(corpus.sha256)[0]
        eager, again = losses(cfg, corpus, False), losses(cfg, corpus, False)
        capturable, graph = losses(cfg, corpus, True, eager_step=True), losses(cfg, corpus, True)
        print(
            f"{cell.upper()} 2x128: eager vs eager {worst(eager, again):.1e}; eager vs capturable-eager "
            f"{worst(eager, capturable):.1e}; capturable-eager vs graph {worst(capturable, graph):.1e}; "
            f"eager vs graph {worst(eager, graph):.1e}"
        )


if __name__ == "__main__":
    main()
