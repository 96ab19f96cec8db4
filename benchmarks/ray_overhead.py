"""What does running a sweep through Ray cost on one machine, against the local executor?

    python benchmarks/ray_overhead.py [--rounds 3] [--tiny-runs 12] [--smoke-rounds 1]

1. Where Ray's time goes: --tiny-runs runs of 5 training steps each (the smoke models on
   `synthetic`) through a Ray cluster already running, with all CPUs given to each run (so runs go
   one at a time, with the same torch threads as locally), against the same runs through the local
   executor, alternating, --rounds times. Each task stamps when its body starts and ends, which
   splits Ray's time into: start-up of a sweep (driver connects, corpus into the object store,
   tasks submitted, worker processes started and importing torch, up to the first task's start),
   the gap between one task's end and the next one's start (scheduling, per task), and the tail
   (last task's end to the sweep's return: result transfer, the driver's writes, disconnect).
2. The `smoke` preset end to end (wall seconds, cluster start excluded): local; Ray with one CPU
   per run (two runs side by side, one thread each); Ray with all CPUs per run (one at a time).
3. Cluster start: seconds for `--executor ray` with no cluster running to start a local one and
   stop it again (RayExecutor("local") entered and left), median of --rounds.
Every sweep writes its results and checkpoints to a scratch folder, as a user's would.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rnnbench.config import load_preset
from rnnbench.sweep import LocalExecutor, run_sweep
from rnnbench.sweep.ray_executor import RayExecutor

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from ray_head import local_head  # noqa: E402  (the tests' local Ray head)

START_LOCAL = """
import time
from rnnbench.sweep.ray_executor import RayExecutor
start = time.perf_counter()
with RayExecutor("local"):
    pass
print(time.perf_counter() - start)
"""


def stamped_task(cfg, corpus, board, threads, keep_checkpoint, cuda_graphs=True):
    """rnnbench's task body, with the wall-clock times it started and ended in its metrics."""
    import time

    from rnnbench.sweep.ray_executor import run_task

    started = time.time()
    record, best = run_task(cfg, corpus, board, threads, keep_checkpoint, cuda_graphs)
    record.metrics.update(task_started=started, task_ended=time.time())
    return record, best


def sweep(grid, executor) -> tuple[float, float, list]:
    """(wall-clock start, seconds, records) of one sweep into a scratch folder."""
    with tempfile.TemporaryDirectory() as out:
        began, start = time.time(), time.perf_counter()
        records = run_sweep(grid, out, executor=executor)
        seconds = time.perf_counter() - start
    bad = [r.run_id for r in records if r.status != "ok"]
    if bad or len(records) != len(grid.expand("0" * 64, ("cpu",))):
        raise SystemExit(f"runs did not all finish ok: {bad}")
    return began, seconds, records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tiny-runs", type=int, default=12)
    parser.add_argument("--smoke-rounds", type=int, default=1)
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    smoke = load_preset("smoke")
    per_seed = len(smoke.expand("0" * 64, ("cpu",)))
    tiny = smoke.replace(seeds=tuple(range(max(1, args.tiny_runs // per_seed))), max_steps=5, eval_every_steps=5)
    n_tiny = len(tiny.expand("0" * 64, ("cpu",)))

    with local_head(num_cpus=cpus) as address:
        startup, gaps, tails, ratios = [], [], [], []
        for _ in range(args.rounds):
            _, local_s, _ = sweep(tiny, LocalExecutor())
            began, ray_s, records = sweep(tiny, RayExecutor(address, cpus_per_run=cpus, task=stamped_task))
            spans = sorted((r.metrics["task_started"], r.metrics["task_ended"]) for r in records)
            startup.append(spans[0][0] - began)
            gaps += [nxt[0] - prev[1] for prev, nxt in zip(spans, spans[1:])]
            tails.append(began + ray_s - spans[-1][1])
            ratios.append(ray_s / local_s)
            print(f"  {n_tiny} tiny runs: local {local_s:.2f} s, Ray {ray_s:.2f} s (start-up {startup[-1]:.2f} s)")
        print(f"Ray, {n_tiny} tiny runs one at a time ({cpus} threads), medians over {args.rounds} rounds:")
        print(f"  start-up of a sweep (to the first task's start): {statistics.median(startup):.2f} s")
        print(
            f"  gap between tasks: {statistics.median(gaps) * 1000:.1f} ms "
            f"(max {max(gaps) * 1000:.1f} ms over {len(gaps)})"
        )
        print(f"  tail (last task's end to the sweep's return): {statistics.median(tails) * 1000:.0f} ms")
        print(f"  wall time, Ray / local: {statistics.median(ratios):.2f}")

        walls: dict[str, list[float]] = {}
        for _ in range(args.smoke_rounds):
            for name, executor in [
                ("local", LocalExecutor()),
                ("Ray, 1 CPU per run", RayExecutor(address, cpus_per_run=1)),
                (f"Ray, {cpus} CPUs per run", RayExecutor(address, cpus_per_run=cpus)),
            ]:
                walls.setdefault(name, []).append(sweep(smoke, executor)[1])
                print(f"  smoke, {name}: {walls[name][-1]:.1f} s")
    for name, values in walls.items():
        print(f"smoke preset ({per_seed} runs), {name}: median {statistics.median(values):.1f} s")

    # In a process of its own each time: a process that started a local cluster cannot then use
    # another cluster (Ray switches the process to the new cluster's token authentication).
    starts = [
        float(
            subprocess.run(
                [sys.executable, "-c", START_LOCAL], capture_output=True, text=True, check=True
            ).stdout.split()[-1]
        )
        for _ in range(args.rounds)
    ]
    print(
        f"local Ray cluster start + stop: median {statistics.median(starts):.2f} s "
        f"({', '.join(f'{s:.2f}' for s in starts)})"
    )


if __name__ == "__main__":
    main()
