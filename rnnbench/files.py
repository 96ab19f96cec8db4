"""Atomic file writes: a reader, or a process killed mid-write, never sees a partial file.

    >>> import tempfile, pathlib
    >>> from rnnbench.files import write_atomic
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a" / "b.txt"
    >>> write_atomic(path, b"whole")
    >>> path.read_bytes()
    b'whole'
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write to a hidden temporary file beside `path`, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False) as tmp:
        try:
            # Temporary files are private (0600); the result gets the usual mode for a new file.
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(tmp.fileno(), 0o666 & ~umask)
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        except BaseException:
            os.unlink(tmp.name)
            raise
    os.replace(tmp.name, path)
