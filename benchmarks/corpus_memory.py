"""Seconds and peak memory to load a corpus and make its training tensors (vocabulary, encoded
splits), for corpora of any size:

    python benchmarks/corpus_memory.py FILE [FILE ...]

Peak memory is the process's resident high-water mark (ru_maxrss), so run one file per process
for a clean figure; the script re-runs itself per file. Make test files by repeating a corpus:
    for i in $(seq 31); do cat ../shared/datasets/warpeace.txt; done > /tmp/c100m.txt     # 101 MB
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path


def measure(path: str) -> None:
    from rnnbench.core.data import load_corpus

    start = time.perf_counter()
    corpus = load_corpus(path)
    read_s = time.perf_counter() - start
    vocab = corpus.vocab_size
    splits = corpus.splits()
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"| {Path(path).name} | {corpus.n_bytes / 1e6:,.0f} MB | {vocab} | {read_s:.1f} | {seconds:.1f} | "
        f"{peak_mb:,.0f} MB ({peak_mb * 2**20 / corpus.n_bytes:.2f} x the file) | {splits['train'].dtype} |"
    )


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1].startswith("--one="):
        measure(sys.argv[1][len("--one=") :])
    else:
        print("| file | size | vocabulary | read s | read + vocabulary + encode s | peak RSS | stored as |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
        for path in sys.argv[1:]:
            subprocess.run([sys.executable, __file__, f"--one={path}"], check=False)
