"""qlog for both backends: one file per connection in a directory, ended early on a close.

Each backend has its own ``QuicFileLogger``; ``qlog_directory_logger`` subclasses it so that a
connection closed locally can end its trace itself (``end_qlog_trace``), before QUIC's
closing period would. The directory loggers are made once per directory and backend. The
base logger's list of live traces (``QuicFileLogger._traces``) is read here, listed in both
backends' ``REQUIRED_ATTRIBUTES``.
"""

from __future__ import annotations

import functools
from typing import Any

from pywebtransport._protocol.quic import qlog_trace_and_logger

__all__ = ["end_qlog_trace", "qlog_directory_logger"]


def qlog_directory_logger(base: type[Any]) -> type[Any]:
    """A subclass of a backend's ``QuicFileLogger`` (one qlog file per connection in a
    directory) whose ``end_trace`` may be called twice: a connection closed locally ends its
    trace itself, before QUIC's closing period would."""

    def end_trace(self: Any, trace: Any) -> None:
        if trace in self._traces:  # the base logger's own list of live traces
            base.end_trace(self, trace)

    return type("QlogDirectoryLogger", (base,), {"end_trace": end_trace})


@functools.lru_cache(maxsize=8)
def _aioquic_qlog(directory: str) -> Any:
    from aioquic.quic.logger import QuicFileLogger

    return qlog_directory_logger(QuicFileLogger)(directory)


@functools.lru_cache(maxsize=8)
def _qh3_qlog(directory: str) -> Any:
    from qh3.quic.logger import QuicFileLogger

    return qlog_directory_logger(QuicFileLogger)(directory)


def end_qlog_trace(connection: Any) -> None:
    """End ``connection``'s qlog trace now (its file is written) if a directory logger has it."""
    trace, logger = qlog_trace_and_logger(connection)
    if trace is not None and logger is not None and type(logger).__name__ == "QlogDirectoryLogger":
        logger.end_trace(trace)
