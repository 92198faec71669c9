"""How the endpoint talks to its UDP socket, chosen once per endpoint.

``PYWEBTRANSPORT_UDP_MODE`` forces a mode, so that every path runs on Linux CI too:

- ``reader``: the loop watches the non-blocking socket (``add_reader``); we ``recvfrom``.
- ``transport``: asyncio's datagram transport, the only path on the Windows proactor loop.
- ``mmsg``: like ``reader``, but batched: ``recvmmsg``/``sendmmsg`` and UDP GSO (Linux,
  compiled ``_mmsg``); the pure twin keeps the interface with one call per datagram.
- ``auto`` (default): ``mmsg`` on Linux when the compiled module loaded, else ``reader``;
  ``transport`` when the loop cannot watch sockets.
"""

from __future__ import annotations

import enum
import logging
import os
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING

from pywebtransport._wire import NO_EXTENSIONS

__all__ = ["ENV_VAR", "MMSG_IMPLEMENTATION", "UdpMode", "load_mmsg", "mmsg", "requested_mode", "resolve_mode"]

logger = logging.getLogger(__name__)

ENV_VAR = "PYWEBTRANSPORT_UDP_MODE"


class UdpMode(enum.Enum):
    """The ways an endpoint can read and write its socket."""

    AUTO = "auto"
    READER = "reader"
    TRANSPORT = "transport"
    MMSG = "mmsg"


def requested_mode(environ: Mapping[str, str] | None = None) -> UdpMode:
    """The mode asked for in ``PYWEBTRANSPORT_UDP_MODE`` (``auto`` when unset or empty)."""
    value = (os.environ if environ is None else environ).get(ENV_VAR, "").strip().lower() or "auto"
    try:
        return UdpMode(value)
    except ValueError:
        choices = ", ".join(m.value for m in UdpMode)
        raise ValueError(f"{ENV_VAR}={value!r} is not one of: {choices}") from None


def resolve_mode(requested: UdpMode, *, platform: str, batched: bool) -> UdpMode:
    """The mode to try first; ``batched`` says whether the compiled ``_mmsg`` batches here.

    Whether the loop can watch sockets is only known by trying: the endpoint falls back
    from a resolved ``reader``/``mmsg`` to ``transport`` when ``auto`` was requested.
    """
    if requested is not UdpMode.AUTO:
        return requested
    if platform.startswith("linux") and batched:
        return UdpMode.MMSG
    return UdpMode.READER


def load_mmsg(kind: str) -> ModuleType:
    """Import one variant of ``_mmsg``: ``"cython"`` (ImportError if not built) or ``"python"``."""
    if kind == "python":
        from pywebtransport._io import _mmsg_py

        return _mmsg_py
    if kind != "cython":
        raise ValueError(f"unknown _mmsg implementation {kind!r}; expected 'cython' or 'python'")
    from pywebtransport._io import _mmsg

    if (getattr(_mmsg, "__file__", None) or "").endswith(".py"):  # pragma: no cover - defensive
        raise ImportError("pywebtransport._io._mmsg is not compiled")
    return _mmsg


def _select() -> tuple[str, ModuleType]:
    if not NO_EXTENSIONS:
        try:
            compiled = load_mmsg("cython")
        except ImportError as exc:
            logger.debug("compiled _io._mmsg unavailable (%s); using the pure twin", exc)
        else:
            if compiled.BATCHED:
                return "cython", compiled
            logger.debug("compiled _io._mmsg does not batch on this platform; using the pure twin")
    return "python", load_mmsg("python")


if TYPE_CHECKING:  # both variants have the same interface; the twin is what mypy reads
    from pywebtransport._io import _mmsg_py as mmsg

    MMSG_IMPLEMENTATION: str
else:
    #: Which ``_mmsg`` variant is in use (``"cython"`` or ``"python"``) and the module itself.
    MMSG_IMPLEMENTATION, mmsg = _select()
