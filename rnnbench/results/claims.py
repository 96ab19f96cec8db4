"""Claims on runs, so that several sweeps on one results folder (two shells, a Slurm array, hosts
sharing a filesystem) split the grid instead of each training all of it.

    >>> import tempfile
    >>> from rnnbench.results.claims import Claims
    >>> with Claims(tempfile.mkdtemp()) as claims:
    ...     claims.take("0a1b2c3d4e5f"), claims.take("0a1b2c3d4e5f")   # a claim is taken once
    ...     claims.release("0a1b2c3d4e5f")                             # (trained and stored meanwhile)
    (True, False)

A claim is the file `<results-dir>/claims/<run_id>.claim`, created exclusively (O_CREAT | O_EXCL,
atomic on local filesystems and on NFS v3 and later), holding the host, pid and start time of the
sweep that holds it. While the sweep lives, a heartbeat thread touches its claims every
HEARTBEAT_S seconds. A claim is stale, and taken over, when its process is gone (same host), or
when it has not been touched for STALE_S seconds (any host: a killed machine). Taking over renames
the stale file away first, which only one taker can do.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from pathlib import Path

from rnnbench.errors import StorageError
from rnnbench.files import HOST, process_alive

HEARTBEAT_S = 30.0
STALE_S = 180.0  # six missed heartbeats


class Claims:
    """The claims this process holds in one results folder, kept fresh while it runs."""

    def __init__(self, results_dir: str | Path, heartbeat_s: float = HEARTBEAT_S, stale_s: float = STALE_S):
        self.folder = Path(results_dir) / "claims"
        self.heartbeat_s, self.stale_s = heartbeat_s, stale_s
        self.held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Claims:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError.from_os_error(self.folder, exc) from exc
        self._thread = threading.Thread(target=self._beat, name="rnnbench-claims", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for run_id in list(self.held):  # interrupted or done: what is not finished is free again
            self.release(run_id)

    def path(self, run_id: str) -> Path:
        return self.folder / f"{run_id}.claim"

    def take(self, run_id: str) -> bool:
        """Claim the run; False if a live sweep holds it."""
        path = self.path(run_id)
        for _ in range(2):  # a stale claim is moved away once, then claimed afresh
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self._take_over(path):
                    return False
                continue
            except OSError as exc:
                raise StorageError.from_os_error(path, exc) from exc
            with os.fdopen(fd, "w") as f:
                json.dump({"host": HOST, "pid": os.getpid(), "claimed_at": time.time()}, f)
            with self._lock:
                self.held.add(run_id)
            return True
        return False

    def holder(self, run_id: str) -> str:
        """Who holds the run's claim, in words."""
        info = self._read(self.path(run_id))
        return f"host {info.get('host', '?')}, pid {info.get('pid', '?')}" if info else "another sweep"

    def release(self, run_id: str) -> None:
        with self._lock:
            self.held.discard(run_id)
        with contextlib.suppress(OSError):
            self.path(run_id).unlink()

    def _read(self, path: Path) -> dict:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return {}

    def _stale(self, path: Path) -> bool:
        info = self._read(path)
        if info.get("host") == HOST and isinstance(info.get("pid"), int) and info["pid"] != os.getpid():
            return not process_alive(info["pid"])
        try:
            return time.time() - path.stat().st_mtime > self.stale_s
        except FileNotFoundError:
            return True  # released meanwhile

    def _take_over(self, path: Path) -> bool:
        """Move a stale claim away (only one taker's rename succeeds); True if the way is clear."""
        if not self._stale(path):
            return False
        try:
            os.rename(path, path.with_name(f"{path.name}.stale.{uuid.uuid4().hex[:8]}"))
        except FileNotFoundError:
            return True  # released, or another taker moved it: try to create it
        except OSError as exc:
            raise StorageError.from_os_error(path, exc) from exc
        for old in path.parent.glob(f"{path.name}.stale.*"):
            with contextlib.suppress(OSError):
                old.unlink()
        return True

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            with self._lock:
                held = list(self.held)
            for run_id in held:
                with contextlib.suppress(OSError):
                    os.utime(self.path(run_id))
