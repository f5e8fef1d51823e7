"""Log lines of the run, shown live to whoever watches it.

`print()` works too: standard output becomes `info` lines, standard error `warn` lines (one per
line written). Lines beyond the action's `logBytes` limit are dropped, and the log says how many
bytes were.
"""

from __future__ import annotations


def emit(level: str, message: str) -> None:
    """Appends one line at `level`: "trace", "debug", "info", "warn" or "error"."""
    from wit_world.imports import log as wit

    wit.emit(wit.Level[level.upper()], str(message))


def trace(message: str) -> None:
    """Very detailed tracing."""
    emit("trace", message)


def debug(message: str) -> None:
    """Diagnostics for the plugin author."""
    emit("debug", message)


def info(message: str) -> None:
    """Normal progress messages."""
    emit("info", message)


def warn(message: str) -> None:
    """Something unexpected that did not stop the run."""
    emit("warn", message)


def error(message: str) -> None:
    """Something failed."""
    emit("error", message)
