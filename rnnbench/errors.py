"""The one exception type that reaches the user as a one-line message and exit code 2.

    >>> from rnnbench.errors import UsageError
    >>> str(UsageError("unknown cell 'lstn': choose from rnn, lstm, gru"))
    "unknown cell 'lstn': choose from rnn, lstm, gru"

Library code raises it for anything the user can fix (a bad option, a missing or corrupt file);
the CLI turns it into one line on stderr. Every other exception is a bug or a failure of one run.
"""


class UsageError(Exception):
    """Bad input that the user can fix; the message says what was wrong and what to do."""
