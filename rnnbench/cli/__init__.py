"""The interface: the `rnnbench` command line (commands) and everything drawn on a terminal
(terminal). The only part of the package that knows Typer and rich."""

from rnnbench.cli.commands import app, main

__all__ = ["app", "main"]
