"""A Ray head on this machine for the tests and benchmarks that need a cluster apart from the driver."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from rnnbench.sweep.ray_executor import _answers


@contextlib.contextmanager
def local_head(num_cpus: int, timeout_s: float = 90) -> Iterator[str]:
    """A Ray head on this machine for as long as the block runs; yields its 127.0.0.1:PORT.

    For tests and benchmarks that need a cluster apart from the driver, as a real one is. Its
    session files go to a folder of its own (short: Ray's socket paths have a length limit), so no
    record of it is left where `ray.init()` looks for a running cluster. Token authentication is
    off: whether a driver sends a token depends on ~/.ray and on the environment when ray was
    first imported, which a caller cannot pin down."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    session_dir = tempfile.mkdtemp(prefix="rnnbench-ray-", dir="/tmp")
    log_path = Path(session_dir, "ray-start.log")
    command = [
        str(Path(sys.executable).with_name("ray")),
        "start",
        "--head",
        f"--port={port}",
        "--node-ip-address=127.0.0.1",
        f"--num-cpus={num_cpus}",
        "--num-gpus=0",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--temp-dir={session_dir}",
        f"--object-store-memory={200 * 2**20}",
        "--block",
    ]
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
        # A lost node is noticed in about a second instead of Ray's 15 s (3 s x 5 missed checks):
        # the tests that kill a node wait for that.
        "RAY_health_check_period_ms": "300",
        "RAY_health_check_failure_threshold": "3",
    }
    with log_path.open("wb") as log:
        head = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + timeout_s
        while not ("Ray runtime started" in log_path.read_text() and _answers(f"127.0.0.1:{port}")):
            if head.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"no Ray head on 127.0.0.1:{port} (ray start exited with {head.poll()}):\n"
                    + log_path.read_text()[-3000:]
                )
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        head.terminate()  # --block: stopping this process stops the cluster's processes
        head.wait(timeout=60)
        shutil.rmtree(session_dir, ignore_errors=True)
