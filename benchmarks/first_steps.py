"""The first steps of a stored run, trained again from its first step: every 10 steps the mean
training loss, the spectral norm of each layer's recurrent matrix and the share of the top layer's
outputs at |h| > 0.99 (a tanh or gate at its limit passes almost no gradient). What a model that
never left the characters' frequencies did at its start, and whether a seed or a setting changes it.

    python benchmarks/first_steps.py RUN_ID [--results-dir results] [--steps 60] [--seed N]
        [--grad-clip-mode norm|clamp] [--dropout P]

One torch thread, like the campaign's runs; the corpus is found as a sweep finds it
($RNNBENCH_DATA_DIR, --data-dir). Prints only: nothing is stored.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from rnnbench.config import RunConfig
from rnnbench.core.data import load_corpus
from rnnbench.core.train import Trainer

EVERY = 10  # steps between two lines


def recurrent_norms(rnn: torch.nn.RNNBase) -> list[float]:
    return [torch.linalg.matrix_norm(getattr(rnn, f"weight_hh_l{i}"), ord=2).item() for i in range(rnn.num_layers)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_id")
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--data-dir")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--grad-clip-mode", choices=("norm", "clamp"))
    parser.add_argument("--dropout", type=float)
    args = parser.parse_args()

    torch.set_num_threads(1)
    row = json.loads((Path(args.results_dir) / "runs" / f"{args.run_id}.json").read_text())
    cfg = RunConfig.from_dict(row["config"])
    changes = {k: v for k, v in (("grad_clip_mode", args.grad_clip_mode), ("dropout", args.dropout)) if v is not None}
    cfg = dataclasses.replace(
        cfg,
        seed=cfg.seed if args.seed is None else args.seed,
        train=dataclasses.replace(cfg.train, **changes),
    )
    trainer = Trainer(cfg, load_corpus(cfg.dataset, args.data_dir), cuda_graphs=False)
    rnn, data, seq = trainer.model.rnn, trainer.data["train"], cfg.train.seq_len
    norms = ", ".join(f"{n:.2f}" for n in recurrent_norms(rnn))
    print(f"{cfg.label}, dropout {cfg.train.dropout:g}, clipping {cfg.train.grad_clip_mode}: hidden {trainer.hidden}")
    print(f"step 0: recurrent spectral norms {norms}")
    for n in range(args.steps):
        i = n % trainer.steps_per_epoch  # the step's place in its epoch
        if n and not i:
            trainer.state = None  # a new epoch starts its streams afresh, as in training
        trainer.step(i)
        if (n + 1) % EVERY:
            continue
        loss = trainer.loss_sum.item() / trainer.loop.loss_steps
        trainer.loss_sum.zero_()
        trainer.loop.loss_steps = 0
        with torch.no_grad():  # the top layer's outputs on this step's batch
            x = torch.nn.functional.one_hot(data[:, i * seq : (i + 1) * seq].long(), trainer.vocab_size).float()
            saturated = (rnn(x)[0].abs() > 0.99).float().mean().item()
        norms = ", ".join(f"{n:.2f}" for n in recurrent_norms(rnn))
        print(
            f"step {n + 1}: training loss {loss:.3f} nats, recurrent spectral norms {norms}, "
            f"top layer at |h| > 0.99: {saturated:.0%}, clipping acted on {int(trainer.clip.acted_steps)} step(s)"
        )


if __name__ == "__main__":
    main()
