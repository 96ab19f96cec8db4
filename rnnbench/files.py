"""Atomic file writes: a reader, or a process killed mid-write, never sees a partial file.

>>> import tempfile, pathlib
>>> from rnnbench.files import write_atomic
>>> path = pathlib.Path(tempfile.mkdtemp()) / "a" / "b.txt"
>>> write_atomic(path, b"whole")
>>> path.read_bytes()
b'whole'
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
from pathlib import Path

from rnnbench.errors import StorageError

RESULTS_ENV = "RNNBENCH_RESULTS_DIR"


def default_results_dir() -> Path:
    """Where results go when no folder is named: $RNNBENCH_RESULTS_DIR, else the user's data folder
    (~/.local/share/rnnbench/results on Linux). Never a folder of the working directory: in a
    checkout of rnnbench, results/ holds the published rows, and a user's runs must not mix in."""
    import platformdirs

    override = os.environ.get(RESULTS_ENV)
    return Path(override) if override else platformdirs.user_data_path("rnnbench") / "results"


TMP_SUFFIX = ".tmp"
HOST = socket.gethostname().replace(".", "-")  # as a temporary's name holds it (dots separate its parts)


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write to a hidden temporary file beside `path`, fsync, then rename over `path`. A write
    that fails (disk full, read-only, no permission, I/O error) leaves no temporary file and
    raises StorageError naming `path` and the cause."""
    path = Path(path)
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The temporary's name says who writes it (pid): a later start removes it only if that
        # process is gone (remove_stray_temporaries).
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=f".{path.name}.{HOST}.{os.getpid()}.", suffix=TMP_SUFFIX, delete=False
        ) as tmp:
            tmp_name = tmp.name
            # Temporary files are private (0600); the result gets the usual mode for a new file.
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(tmp.fileno(), 0o666 & ~umask)
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException as exc:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
        if isinstance(exc, OSError):
            raise StorageError.from_os_error(path, exc) from exc
        raise


def check_writable(folder: str | Path, what: str = "folder") -> None:
    """Create `folder` if needed and write (then remove) a probe file in it: a command that will
    write there says so before any work, not after an hour of training."""
    folder = Path(folder)
    created = [p for p in [folder, *folder.parents] if not p.exists()]  # removed again: a probe leaves nothing
    probe = folder / f".rnnbench-write-probe.{os.getpid()}"
    try:
        write_atomic(probe, b"probe\n")
    except StorageError as exc:
        raise StorageError(
            f"the {what} {folder} cannot be written ({str(exc).split(': ', 1)[-1]}); nothing was done"
        ) from None
    finally:
        with contextlib.suppress(OSError):  # a read-only folder refuses even the removal of nothing
            probe.unlink(missing_ok=True)
        for path in created:  # innermost first
            with contextlib.suppress(OSError):
                path.rmdir()


def remove_stray_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporary files of interrupted writes under `folder` (a kill during a write
    leaves one): those whose writer, named in the file name, is a process of this host that is
    gone. A temporary of a live writer, or of another host sharing the folder, is left alone.
    Returns what was removed."""
    removed = []
    for path in Path(folder).rglob(f".*{TMP_SUFFIX}"):
        parts = path.name.split(".")
        # .<name>.<host>.<pid>.<random>.tmp ; a name may hold dots, so read from the end
        try:
            writer_host, pid = parts[-4], int(parts[-3])
        except (IndexError, ValueError):
            writer_host, pid = HOST, None  # written before temporaries named their writer
        if writer_host != HOST or (pid is not None and process_alive(pid)):
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    return removed


def process_alive(pid: int) -> bool:
    """Whether a process of this host with this pid runs (one of another user's counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
