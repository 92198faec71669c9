"""Stop a server on SIGTERM (service managers, containers) and SIGINT, through the loop."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

__all__ = ["STOP_SIGNALS", "on_signals"]

logger = logging.getLogger(__name__)

#: What stops a server: Ctrl-C and the polite kill that systemd, Docker and Kubernetes send.
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def on_signals(callback: Callable[[signal.Signals], None],
               signals: Iterable[signal.Signals] = STOP_SIGNALS) -> Iterator[list[signal.Signals]]:
    """Call ``callback(signum)`` in the running loop when one of ``signals`` arrives; yields
    the signals really hooked (none where the loop cannot, e.g. on Windows or off the main
    thread) and restores the default handling on exit."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for signum in signals:
        try:
            loop.add_signal_handler(signum, callback, signum)
        except (NotImplementedError, RuntimeError, ValueError):
            logger.debug("cannot handle %s in this loop; its default action stays", signum.name)
            continue
        installed.append(signum)
    try:
        yield installed
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
