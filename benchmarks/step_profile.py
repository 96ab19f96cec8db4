"""Why a step takes what it takes: the paper models' training step with TF32 allowed and not, and
the kernels that dominate it (torch.profiler), one row per model and precision.

    python benchmarks/step_profile.py --device cuda                 # the 36 paper models, TF32 on and off
    python benchmarks/step_profile.py --sizes 64 --layers 1 --steps 5  # on a CPU: operators, no TF32

For each model of the `paper` preset (params mode on War and Peace's 87-byte vocabulary, batch
100 x 100, the training step a sweep runs: `Trainer.step`, CUDA graphs as --cuda-graphs says),
and for each precision setting (on CUDA: TF32 allowed for cuBLAS and cuDNN, then not; a CPU has no
TF32): the median step time of --steps steps after warm-up, then --profile-steps more steps under
torch.profiler, whose kernels (CUDA) or operators (CPU) are ranked by their own device time; the
top --top with their share of the profiled time. Rows (kind "step_profile") go to --results-dir, for
`rnnbench results` and the report's readers; the README says what they showed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import torch
from torch.profiler import ProfilerActivity, profile

from rnnbench import results
from rnnbench.config import content_id, load_preset
from rnnbench.core.data import load_corpus
from rnnbench.core.devices import environment, hardware
from rnnbench.core.timing import synchronize
from rnnbench.core.train import Trainer


def precision_settings(device: str) -> list[bool | None]:
    """TF32 allowed and not on CUDA; None (no such setting) elsewhere."""
    return [True, False] if device.startswith("cuda") else [None]


def set_tf32(allowed: bool | None) -> None:
    if allowed is not None:
        torch.backends.cuda.matmul.allow_tf32 = allowed
        torch.backends.cudnn.allow_tf32 = allowed


def top_kernels(prof, device: str, top: int) -> list[dict]:
    """The kernels (or CPU operators) with the most own device time, and each one's share."""
    on_cuda = device.startswith("cuda")
    events = [e for e in prof.key_averages() if (e.self_device_time_total if on_cuda else e.self_cpu_time_total) > 0]
    own = [(e.key, e.self_device_time_total if on_cuda else e.self_cpu_time_total, e.count) for e in events]
    total = sum(t for _, t, _ in own) or 1.0
    own.sort(key=lambda x: -x[1])
    return [{"name": name[:120], "share": t / total, "us_total": t, "calls": n} for name, t, n in own[:top]]


def init_profiler_for_graphs(device: str) -> None:
    """A profiler session before any CUDA graph is captured: one that first starts after a capture
    can hang or miss the replayed kernels (torch issues 75504 and 100441; torch's own workaround)."""
    if device.startswith("cuda"):
        from torch.profiler._utils import _init_for_cuda_graphs

        _init_for_cuda_graphs()


def measure(cfg, corpus, graphs: bool, steps: int, profile_steps: int, top: int) -> dict:
    trainer = Trainer(cfg, corpus, cuda_graphs=graphs)
    n = trainer.steps_per_epoch
    for i in range(trainer.t.warmup_steps + steps):
        trainer.step(i % n)
    step_ms = statistics.median(s * 1e3 for s in trainer.timer.samples_s())
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cfg.device.startswith("cuda") else [])
    synchronize(cfg.device)
    with profile(activities=activities) as prof:
        for i in range(profile_steps):
            trainer.step(i % n)
        synchronize(cfg.device)
    kernels = top_kernels(prof, cfg.device, top)
    return {
        "step_ms_median": step_ms,
        "hidden_size": trainer.hidden,
        "cuda_graphs": bool(getattr(trainer.step_fn, "replaying", False)),
        "top_kernels": kernels,
        # An empty profile says so in the row: replays the profiler did not see are not a finding.
        "profiled_events": len(prof.key_averages()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("RNNBENCH_DATA_DIR"))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--cells", default="lstm,rnn,gru")
    parser.add_argument("--layers", default="1,2,3")
    parser.add_argument("--sizes", default="64,128,256,512")
    parser.add_argument("--steps", type=int, default=50, help="timed steps per model and precision")
    parser.add_argument("--profile-steps", type=int, default=10)
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--no-cuda-graphs", dest="graphs", action="store_false")
    parser.add_argument("--results-dir", default="results-step-profile")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("step_profile: no CUDA device here (torch.cuda.is_available() is False)", file=sys.stderr)
        sys.exit(2)
    init_profiler_for_graphs(args.device)
    corpus = load_corpus("warpeace", args.data_dir)
    paper = load_preset("paper")
    print(f"torch {torch.__version__} on {hardware(args.device).label}; median of {args.steps} steps, then")
    print(f"{args.profile_steps} profiled; the top {args.top} by own device time, with their share\n")
    for size in map(int, args.sizes.split(",")):
        for layers in map(int, args.layers.split(",")):
            for cell in args.cells.split(","):
                cfg = paper.replace(
                    cells=(cell,), layers=(layers,), sizes=(size,), devices=(args.device,), dropout=(0.0,)
                ).expand(corpus.sha256, dataset_name=corpus.name)[0]
                for tf32 in precision_settings(args.device):
                    set_tf32(tf32)
                    m = measure(cfg, corpus, args.graphs, args.steps, args.profile_steps, args.top)
                    identity = {
                        "check": "step_profile",
                        "cell": cell,
                        "num_layers": layers,
                        "size": size,
                        "tf32": tf32,
                        "cuda_graphs_requested": args.graphs,
                        "device": args.device,
                        "hardware": hardware(args.device).as_dict(),
                    }
                    record = results.make_record(
                        "step_profile", content_id(identity), "ok", identity, environment(args.device), m
                    )
                    results.write_run(args.results_dir, record)
                    label = {True: "TF32", False: "fp32", None: ""}[tf32]
                    kernels = "; ".join(f"{k['share']:.0%} {k['name'][:40]}" for k in m["top_kernels"][:3])
                    kernels = kernels or "THE PROFILE IS EMPTY: the profiler saw no kernel"
                    print(
                        f"{cell.upper():4} {layers}x{size:<4} hidden {m['hidden_size']:>5} {label:>4} "
                        f"{m['step_ms_median']:8.3f} ms  {kernels}"
                    )
    print(f"\nrows in {args.results_dir}/runs")


if __name__ == "__main__":
    main()
