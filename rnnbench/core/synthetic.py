"""A generated corpus whose next character can often be predicted only by remembering.

    >>> from rnnbench.core.synthetic import generate
    >>> text = generate(n_bytes=2_000, seed=0)
    >>> len(text), text == generate(n_bytes=2_000, seed=0)
    (2000, True)

The text is a toy program of fixed-width lines (every line is LINE_WIDTH characters before its
newline, so the newline is predictable only by counting), blocks that open with `begin NAME`,
name NAME again on every line and close with `end NAME`, bracket groups nested up to five deep
that must close in reverse order, and quoted strings whose closing quote must be remembered. A vanilla RNN forgets
most of that within a few dozen steps; gated cells keep it, so the corpus separates the cells in
seconds of CPU training, which is what the `smoke` preset needs.
"""

import random

LINE_WIDTH = 48
_OPEN_TO_CLOSE = {"(": ")", "[": "]", "{": "}", "<": ">"}
_WORDS = ["add", "mul", "load", "store", "jump", "call", "swap", "push", "pop", "test"]


def _identifier(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 7)))


def _nested(rng: random.Random, depth: int) -> str:
    """A bracket expression; the closers depend on every opener still pending."""
    if depth == 0 or rng.random() < 0.3:
        return rng.choice(_WORDS) if rng.random() < 0.7 else f'"{_identifier(rng)}"'
    opener = rng.choice(list(_OPEN_TO_CLOSE))
    parts = [_nested(rng, depth - 1) for _ in range(rng.randint(1, 2))]
    return opener + " ".join(parts) + _OPEN_TO_CLOSE[opener]


def _line(content: str) -> str:
    """Pad to exactly LINE_WIDTH characters, then a newline."""
    return content.ljust(LINE_WIDTH, ".") + "\n"


def _block(rng: random.Random) -> list[str]:
    name = _identifier(rng)  # at most 7 letters: `begin NAME` always fits a line
    lines = [_line(f"begin {name}")]
    for _ in range(rng.randint(2, 8)):
        # Every statement names its block, one line (LINE_WIDTH + 1 characters) after the last
        # mention: only a model that remembers that far can predict the letters.
        statement = f"  {name} = {_nested(rng, depth=5)}"
        while len(statement) > LINE_WIDTH:  # never cut a bracket group: draw again
            statement = f"  {name} = {_nested(rng, depth=5)}"
        lines.append(_line(statement))
    lines.append(_line(f"end {name}"))
    return lines


def generate(n_bytes: int, seed: int = 0) -> bytes:
    """Exactly `n_bytes` of ASCII text, the same for the same seed on every machine."""
    rng = random.Random(seed)
    chunks: list[str] = []
    size = 0
    while size < n_bytes:
        for line in _block(rng):
            chunks.append(line)
            size += len(line)
    return "".join(chunks).encode("ascii")[:n_bytes]
