"""The one exception type that reaches the user as a one-line message and exit code 2, and how
other exceptions are told in one line.

    >>> from rnnbench.errors import UsageError
    >>> str(UsageError("unknown cell 'lstn': choose from rnn, lstm, gru"))
    "unknown cell 'lstn': choose from rnn, lstm, gru"

Library code raises it for anything the user can fix (a bad option, a missing or corrupt file);
the CLI turns it into one line on stderr. Every other exception is a bug or a failure of one run,
which that run's record describes with describe_error (one_line for running out of memory); a
StorageError (a write that failed) is a UsageError that ends the whole command.
"""

from __future__ import annotations


class UsageError(Exception):
    """Bad input that the user can fix; the message says what was wrong and what to do."""


class StorageError(UsageError):
    """A file could not be written (disk full, read-only, no permission, an I/O error): the message
    names the file and the cause. It is never one run's failure: a sweep stops on it at once,
    keeping every run already stored, since every later write would fail too."""

    @classmethod
    def from_os_error(cls, path, exc: OSError) -> StorageError:
        import errno

        code = f" ({errno.errorcode[exc.errno]})" if exc.errno in errno.errorcode else ""
        return cls(f"cannot write {path}: {exc.strerror or exc}{code}")


def describe_error(exc: BaseException) -> str:
    """'Type: message (at file:line)', the innermost frame being where it was raised: what a run's
    record says of the exception that ended it."""
    import traceback

    where = traceback.extract_tb(exc.__traceback__)
    at = f" (at {where[-1].filename.rsplit('/', 1)[-1]}:{where[-1].lineno})" if where else ""
    return f"{exc.__class__.__name__}: {exc}{at}"


def one_line(exc: BaseException) -> str:
    """'Type: the first line of its message': torch's messages run on (an out-of-memory error with
    allocator advice, an unsupported dtype with a list of kernels)."""
    lines = str(exc).splitlines()
    return f"{exc.__class__.__name__}: {lines[0] if lines else ''}"


class StopRequested(BaseException):
    """The sweep was asked to stop (its --stop-after time is up, or SIGTERM): the run in progress
    saved its whole state and stopped, and continues from there when the sweep is run again.
    A BaseException, as KeyboardInterrupt is, so that no `except Exception` records it as a failure."""
