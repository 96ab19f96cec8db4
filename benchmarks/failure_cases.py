"""What a user with bad luck sees: each failure case run against a checkout, as a markdown table of
exit code, first line of output and seconds until the command ended.

    sudo python benchmarks/failure_cases.py [--checkout DIR] [--data-dir ../shared/datasets]

Run it against two checkouts (the code before and after a change) to compare them. It mounts two
small tmpfs folders (a full one and a read-only one), so it needs root; it unmounts them at the end.
Every sweep here is tiny (the generated corpus, a few hundred steps), so the whole takes minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TINY = [
    "--dataset",
    "synthetic",
    "--cells",
    "rnn,lstm,gru",
    "--layers",
    "1",
    "--sizes",
    "16",
    "--size-mode",
    "hidden",
    "--devices",
    "cpu",
    "--batch-size",
    "8",
    "--seq-len",
    "16",
    "--max-steps",
    "60",
    "--eval-every-steps",
    "20",
    "--no-progress",
]


def run(
    checkout: Path, args: list[str], timeout: float = 120, interrupt_after: float | None = None, env: dict | None = None
) -> tuple[int | str, str, float, str]:
    """(exit code or 'timeout', first non-empty line, seconds, whole output) of `rnnbench ARGS`;
    the seconds are until the first line of output where the command was interrupted."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1", "COLUMNS": "200", **(env or {})}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnbench", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=checkout,
        start_new_session=True,
    )
    lines: list[tuple[float, str]] = []
    reader = threading.Thread(target=lambda: lines.extend((time.perf_counter() - start, line) for line in proc.stdout))
    reader.start()
    try:
        proc.wait(timeout=interrupt_after or timeout)
    except subprocess.TimeoutExpired:
        if interrupt_after is not None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
        else:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            reader.join()
            return "timeout", f"(nothing for {timeout:.0f} s; killed)", time.perf_counter() - start, ""
    reader.join()
    seconds = time.perf_counter() - start
    out = "".join(line for _, line in lines)
    shown = [(t, line.strip()) for t, line in lines if line.strip()]
    first_s, first = shown[0] if shown else (seconds, "(no output)")
    if "Traceback" in out:
        first = "Traceback ... " + shown[-1][1]
    if interrupt_after is not None:
        first, seconds = f"{first} (first line at {first_s:.1f} s, then Ctrl-C)", seconds
    return proc.returncode, first[:170], seconds, out


def status_of(record: Path) -> str:
    return json.loads(record.read_text())["status"] if record.exists() else "not stored"


def count_trained(output: str) -> int:
    return sum(1 for line in output.splitlines() if ": test " in line and " nats" in line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--data-dir", default=os.environ.get("RNNBENCH_DATA_DIR", "../shared/datasets"))
    args = parser.parse_args()
    checkout = args.checkout.resolve()
    work = Path(tempfile.mkdtemp(prefix="rnnbench-failures-"))
    full, readonly = work / "full", work / "readonly"
    full.mkdir()
    readonly.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(full)], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(readonly)], check=True)
    rows = []

    def case(name: str, cli_args: list[str], note=None, **kw) -> None:
        code, first, seconds, out = run(checkout, cli_args, **kw)
        rows.append((name, code, first + (f" [{note(out)}]" if note else ""), seconds))
        print(f"{name}: {code}, {seconds:.1f} s, {first}", flush=True)

    try:
        case("results folder unwritable (/proc)", ["sweep", *TINY, "--results-dir", "/proc/rnnbench-forbidden"])
        case("results folder on a read-only mount", ["sweep", *TINY, "--results-dir", str(readonly / "results")])
        case(
            "disk full mid-sweep (2 MB tmpfs, checkpoints)",
            ["sweep", *TINY, "--sizes", "128", "--results-dir", str(full / "results")],
            note=lambda out: f"{count_trained(out)} run(s) stored",
        )
        shutil.rmtree(full / "results", ignore_errors=True)
        subprocess.run(["dd", "if=/dev/zero", f"of={full / 'filler'}", "bs=64k"], capture_output=True)
        case("no space at all", ["sweep", *TINY, "--results-dir", str(full / "results")])
        (full / "filler").unlink()

        failed = work / "failed-only"
        run(checkout, ["sweep", *TINY, "--cells", "rnn", "--sizes", "300000", "--results-dir", str(failed)])
        case("report of a folder with failed runs only", ["report", "--results-dir", str(failed)])
        case("report of it, read-only", ["report", "--results-dir", str(failed), "--out", str(readonly / "R.md")])
        case("merge into a read-only folder", ["results", "merge", str(failed), "--into", str(readonly / "x")])

        shared = work / "shared"
        env = {"OMP_NUM_THREADS": "1"}
        grid = [*TINY, "--layers", "1,2", "--max-steps", "200", "--results-dir", str(shared)]
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "rnnbench", "sweep", *grid],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                cwd=checkout,
                env={**os.environ, "PYTHONPATH": str(checkout), **env},
            )
            for _ in range(2)
        ]
        start = time.perf_counter()
        outs = [p.communicate()[0] for p in procs]
        rows.append(
            (
                "two sweeps at once on one folder (6 runs)",
                ",".join(str(p.returncode) for p in procs),
                f"runs trained: {count_trained(outs[0])} + {count_trained(outs[1])} = "
                f"{count_trained(outs[0]) + count_trained(outs[1])} for 6 runs",
                time.perf_counter() - start,
            )
        )

        stray = work / "stray"
        run(checkout, ["sweep", *TINY, "--cells", "lstm", "--results-dir", str(stray)])
        folder = next((stray / "checkpoints").iterdir())
        (folder / ".latest.pt.k1ll3d.tmp").write_bytes(b"x" * 6_000_000)  # what a kill mid-write leaves
        (stray / "runs" / f"{folder.name}.json").unlink()  # the run as if it never finished
        (folder / "latest.pt").write_bytes(b"not a checkpoint")
        case(
            "stray temporary + corrupt latest.pt, next start",
            ["sweep", *TINY, "--cells", "lstm", "--results-dir", str(stray)],
            note=lambda out: (
                "temporary "
                + ("left" if (folder / ".latest.pt.k1ll3d.tmp").exists() else "removed")
                + ", run "
                + status_of(stray / "runs" / f"{folder.name}.json")
            ),
        )

        fifo = work / "pipe.txt"
        os.mkfifo(fifo)
        case("a FIFO as --dataset", ["sweep", "--dataset", str(fifo), "--results-dir", str(work / "r")], timeout=15)
        case(
            "--cells lstm,,gru",
            ["sweep", *TINY, "--cells", "lstm,,gru", "--results-dir", str(work / "r2")],
            note=lambda out: f"{count_trained(out)} run(s) trained",
            timeout=60,
        )
        case(
            "--sizes 300000 on a CPU (allocation fails)",
            ["sweep", *TINY, "--cells", "rnn", "--sizes", "300000", "--results-dir", str(work / "r3")],
            note=lambda out: "stored as " + ("oom" if "oom" in out else "failed" if "failed" in out else "?"),
        )
        case(
            "1000 seeds (36,000 runs): first line",
            [
                "sweep",
                "--dataset",
                "synthetic",
                "--devices",
                "cpu",
                "--seeds",
                ",".join(map(str, range(1000))),
                "--max-steps",
                "1",
                "--results-dir",
                str(work / "r4"),
                "--no-progress",
            ],
            interrupt_after=90,
        )
        sample_from = work / "sample"
        run(checkout, ["sweep", *TINY, "--cells", "lstm", "--results-dir", str(sample_from)])
        run_id = next((sample_from / "checkpoints").iterdir()).name
        case(
            "sample --length 100000000, Ctrl-C after 5 s",
            ["sample", run_id, "--results-dir", str(sample_from), "--length", "100000000"],
            interrupt_after=5,
            note=lambda out: f"{len(out):,} characters printed before the interrupt",
        )
    finally:
        for mount in (full, readonly):
            subprocess.run(["umount", str(mount)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)

    print(f"\ncheckout: {checkout}\n")
    print("| case | exit | first line of output | seconds |\n| --- | ---: | --- | ---: |")
    for name, code, first, seconds in rows:
        print(f"| {name} | {code} | {first.replace('|', '/')} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
