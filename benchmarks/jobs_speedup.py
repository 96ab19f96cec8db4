"""What `--jobs 2` gives on this machine: the wall time of a sweep with one job against two.

    python benchmarks/jobs_speedup.py [--rounds 2] [--preset smoke] [--sizes 64,128] [--data-dir DIR]

Runs `rnnbench sweep` as a fresh process into a fresh results folder, alternating --jobs 1 (one run
at a time with torch's default threads) and --jobs N (each run with threads / N), --rounds times,
and prints the wall times, their medians and the ratio of the medians. Run it on a quiet machine:
any other process skews both.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def sweep_wall_s(args: list[str]) -> float:
    with tempfile.TemporaryDirectory(prefix="rnnbench-jobs-") as out:
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "rnnbench",
                "sweep",
                *args,
                "--results-dir",
                out,
                "--no-progress",
                "--no-save-checkpoints",
            ],
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="smoke")
    parser.add_argument("--sizes", help="narrow the preset's sizes, e.g. 64,128")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--data-dir", default=os.environ.get("RNNBENCH_DATA_DIR"))
    args = parser.parse_args()

    common = ["--preset", args.preset] + (["--sizes", args.sizes] if args.sizes else [])
    common += ["--data-dir", args.data_dir] if args.data_dir else []
    times: dict[int, list[float]] = {1: [], args.jobs: []}
    for round_ in range(args.rounds):
        for jobs in (1, args.jobs):
            times[jobs].append(sweep_wall_s(common + ["--jobs", str(jobs)]))
            print(f"round {round_ + 1}: --jobs {jobs}: {times[jobs][-1]:.1f} s", flush=True)
    one, many = statistics.median(times[1]), statistics.median(times[args.jobs])
    what = f"preset {args.preset}" + (f", sizes {args.sizes}" if args.sizes else "")
    print(
        f"{what}: --jobs 1 median {one:.1f} s, --jobs {args.jobs} median {many:.1f} s over {args.rounds} rounds: "
        f"wall time ratio {many / one:.2f} (x{one / many:.2f} faster)"
    )


if __name__ == "__main__":
    main()
