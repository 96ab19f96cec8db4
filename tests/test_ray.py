"""`sweep --executor ray` on a real Ray cluster that these tests start on 127.0.0.1 with 2 CPUs.

Marked `ray`: `pytest -m ray` runs only these, `pytest -m "not ray"` leaves them out. The cluster
is started once for the module (ray_head.local_head, beside the tests) and stopped with it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
from conftest import tiny_args, tiny_grid
from ray_head import local_head
from test_cli import invoke, stored

from rnnbench import results
from rnnbench.config import Hardware
from rnnbench.sweep import run_sweep

# On one worker of `pytest -n N --dist loadgroup`, one after another: two local Ray clusters at once
# contend for the ports Ray takes at fixed defaults (its dashboard agent's 52365) and for the cores.
pytestmark = [pytest.mark.ray, pytest.mark.xdist_group("ray")]
ray = pytest.importorskip("ray", reason="the ray tests need pip install 'rnnbench[ray]' (in the test extra)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_address():
    """HOST:PORT of a Ray head started for these tests, limited to the 2 local CPUs and no GPU."""
    with local_head(num_cpus=2) as address:
        yield address


def ray_args(address: str, **extra) -> list[str]:
    args = ["--executor", "ray", "--ray-address", address]
    for key, value in extra.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args


def test_ray_sweep_gives_the_runs_of_a_local_sweep(tiny_text, tmp_path, ray_address):
    local, distributed = tmp_path / "local", tmp_path / "ray"
    assert invoke(tiny_args(tiny_text, local)).exit_code == 0
    result = invoke(tiny_args(tiny_text, distributed) + ray_args(ray_address))
    assert result.exit_code == 0, result.output
    assert "2 CPUs and 0 GPUs" in result.output and "3 to run" in result.output
    # One torch thread per task against two locally: other hardware, so other run ids; the same runs.
    theirs = {
        results.identity("sweep", r.config, Hardware(**r.config["hardware"] | {"threads": 1})): r
        for r in stored(local).values()
    }
    ours = stored(distributed)
    assert {r.identity for r in ours.values()} == set(theirs)
    for run_id, record in ours.items():
        local_record = theirs[record.identity]
        assert record.status == local_record.status == "ok"
        # Reductions on one thread and on two may round differently.
        assert record.metrics["test_loss_nats"] == pytest.approx(local_record.metrics["test_loss_nats"], abs=1e-3)
        assert record.env["executor"] == "ray" and record.env["torch_num_threads"] == 1
        assert (
            record.config["hardware"]["threads"] == 1
            and local_record.config["hardware"]["threads"] == torch.get_num_threads()
        )
        assert (distributed / "checkpoints" / run_id / "best.pt").is_file()  # written by the driver
        assert not (distributed / "checkpoints" / run_id / "latest.pt").exists()

    again = invoke(tiny_args(tiny_text, distributed) + ray_args(ray_address))
    assert again.exit_code == 0 and "3 already finished, 0 to run" in again.output


def test_a_task_that_raises_or_dies_is_recorded_and_the_sweep_goes_on(tiny_text, tmp_path, ray_address):
    from rnnbench.sweep.ray_executor import RayExecutor

    def flaky_task(cfg, corpus, board, threads, keep_checkpoint, cuda_graphs=True):
        # Defined here, so Ray ships it by value; the real task body is imported on the worker.
        import os

        from rnnbench.sweep.ray_executor import run_task

        if cfg.cell == "lstm":
            raise RuntimeError("task blew up outside training")
        if cfg.cell == "gru":
            os._exit(3)  # the worker process dies, as on a lost node
        return run_task(cfg, corpus, board, threads, keep_checkpoint, cuda_graphs)

    grid = tiny_grid(tiny_text)
    out = tmp_path / "results"
    records = run_sweep(grid, str(out), executor=RayExecutor(ray_address, max_retries=0, task=flaky_task))
    by_cell = {r.config["cell"]: r for r in records}
    assert by_cell["rnn"].status == "ok"
    assert by_cell["lstm"].status == "failed" and "RuntimeError: task blew up outside training" in by_cell["lstm"].error
    assert by_cell["gru"].status == "failed" and "WorkerCrashedError" in by_cell["gru"].error
    assert "(Ray task, 1 attempt(s))" in by_cell["gru"].error
    assert by_cell["gru"].env["executor"] == "ray"
    # Failed runs are tried again by the next sweep, whichever executor runs it.
    again = invoke(tiny_args(tiny_text, out) + ray_args(ray_address))
    assert again.exit_code == 0 and "1 already finished, 2 to run" in again.output
    assert {r.status for r in stored(out).values()} == {"ok"}


def test_runs_go_on_when_the_progress_actor_is_lost(tiny_text, tmp_path, ray_address):
    from rnnbench.sweep.ray_executor import RayExecutor

    def board_killing_task(cfg, corpus, board, threads, keep_checkpoint, cuda_graphs=True):
        import ray

        from rnnbench.sweep.ray_executor import run_task

        ray.kill(board)
        return run_task(cfg, corpus, board, threads, keep_checkpoint, cuda_graphs)

    grid = tiny_grid(tiny_text, cells=("rnn", "gru"))
    records = run_sweep(grid, str(tmp_path / "results"), executor=RayExecutor(ray_address, task=board_killing_task))
    assert [r.status for r in records] == ["ok", "ok"]


@pytest.fixture
def two_node_cluster():
    """A head and a second node, one CPU each: two runs of one CPU start at once, one on each."""
    with local_head(num_cpus=1) as address, tempfile.TemporaryDirectory() as folder:
        log = Path(folder, "node.log").open("wb")
        node = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("ray")),
                "start",
                f"--address={address}",
                "--num-cpus=1",
                "--disable-usage-stats",
                "--block",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RAY_AUTH_MODE": "disabled"},
        )
        try:
            ray.init(address=address, logging_level="WARNING")
            deadline = time.monotonic() + 60
            while sum(n["Alive"] for n in ray.nodes()) < 2:
                assert time.monotonic() < deadline and node.poll() is None, Path(folder, "node.log").read_text()
                time.sleep(0.5)
            ray.shutdown()
            yield address
        finally:
            node.terminate()
            node.wait(timeout=60)


# Retried once, the run of the lost node trains on the node left. (Without retries it is recorded
# failed, as a task whose worker dies is: test_a_task_that_raises_or_dies_is_recorded_and_the_sweep_goes_on.)
@pytest.mark.parametrize("retries, statuses", [(1, ["ok", "ok"])])
def test_a_run_whose_node_dies_is_retried_then_recorded(tiny_text, tmp_path, two_node_cluster, retries, statuses):
    from rnnbench.sweep.ray_executor import RayExecutor

    def node_killing_task(cfg, corpus, board, threads, keep_checkpoint, cuda_graphs=True):
        import os
        import signal

        import psutil
        import ray

        from rnnbench.sweep.ray_executor import run_task

        node_id = ray.get_runtime_context().get_node_id()
        head = next(n["NodeID"] for n in ray.nodes() if "node:__internal_head__" in n["Resources"])
        if node_id != head:  # kill this node's raylet: the node is lost with the run on it
            for process in psutil.process_iter(["cmdline"]):
                if any("raylet" in part for part in process.info["cmdline"] or []) and node_id in " ".join(
                    process.info["cmdline"]
                ):
                    os.kill(process.pid, signal.SIGKILL)
            time.sleep(120)
        return run_task(cfg, corpus, board, threads, keep_checkpoint, cuda_graphs)

    grid = tiny_grid(tiny_text, cells=("rnn", "gru"), max_steps=200, eval_every_steps=100)
    records = run_sweep(
        grid,
        str(tmp_path / "results"),
        executor=RayExecutor(two_node_cluster, max_retries=retries, task=node_killing_task),
    )
    assert sorted(r.status for r in records) == statuses
    for r in records:
        # Ray names the loss by what it noticed first: the node, or the worker on it.
        assert r.status == "ok" or r.error.startswith(("NodeDiedError", "WorkerCrashedError"))


@pytest.mark.parametrize(
    "devices, extra, message",
    [
        ("cuda", {}, "the Ray cluster has no GPUs"),
        ("cuda:1", {}, "cannot be scheduled by Ray"),
        ("cpu", {"ray_cpus_per_run": 3}, "no node of the cluster has more than 2 CPUs"),
    ],
)
def test_devices_and_resources_are_checked_against_the_cluster(
    tiny_text, tmp_path, ray_address, devices, extra, message
):
    result = invoke(tiny_args(tiny_text, tmp_path / "r", devices=devices) + ray_args(ray_address, **extra))
    assert result.exit_code == 2 and message in result.output and not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "address, message",
    [
        (None, "no Ray cluster answers at"),  # a free port: nothing listens there
        ("ray://127.0.0.1:10001", "--ray-address takes auto, local or HOST:PORT"),
        ("127.0.0.1", "--ray-address takes auto, local or HOST:PORT"),
    ],
)
def test_a_bad_address_or_one_where_no_cluster_answers_is_exit_2(tiny_text, tmp_path, address, message):
    started = time.monotonic()
    result = invoke(tiny_args(tiny_text, tmp_path / "r") + ray_args(address or f"127.0.0.1:{free_port()}"))
    assert result.exit_code == 2 and message in result.output and not (tmp_path / "r").exists()
    assert time.monotonic() - started < 10


def test_a_record_of_a_stopped_cluster_starts_a_local_one_only_when_no_address_was_given(tmp_path, monkeypatch):
    """`ray start` leaves the address of the cluster it started in RAY_TMPDIR/ray/ray_current_cluster,
    and nothing removes it when that cluster dies; ray.init would try to reach it for minutes."""
    from rnnbench.errors import UsageError
    from rnnbench.sweep.ray_executor import _cluster_address

    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    stale = f"127.0.0.1:{free_port()}"
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text(stale)
    address, where = _cluster_address(None)
    assert address == "local" and "is gone" in where
    # (With "auto", Ray prefers any cluster running on this machine to the record, so it is not checked here.)
    monkeypatch.setenv("RAY_ADDRESS", stale)  # asked for by the user's environment: an error, not a new cluster
    with pytest.raises(UsageError, match="no Ray cluster answers at"):
        _cluster_address(None)
