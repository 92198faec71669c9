"""The only I/O: UDP sockets and timers driving sans-I/O engines."""

from __future__ import annotations

from pywebtransport._io.endpoint import ClientDriver, ConnectionDriver, UdpEndpoint
from pywebtransport._io.modes import UdpMode

__all__ = ["ClientDriver", "ConnectionDriver", "UdpEndpoint", "UdpMode"]
