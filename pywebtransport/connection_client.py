"""The client side of a connection: the handshake, waiting for HTTP/3, how far a connect got
(``ConnectStage``), and a refusal reported by the peer's host (ICMP port unreachable).
"""

from __future__ import annotations

import builtins
import enum
import time

from pywebtransport import constants as c
from pywebtransport._addresses import format_address
from pywebtransport._waiters import wait_for_any
from pywebtransport.connection_core import ConnectionCore
from pywebtransport.exceptions import ConnectionClosedError, ConnectionRefusedError, HandshakeError, TimeoutError
from pywebtransport.types import ConnectionState

__all__ = ["ConnectStage", "ConnectionClient"]


class ConnectStage(enum.Enum):
    """How far a client connection got on its way to HTTP/3: named when a connect times out."""

    NO_REPLY = "no reply at all from the peer (nothing listening, or the packets are dropped)"
    HANDSHAKE = "the peer answered but the QUIC/TLS handshake did not complete"
    SETTINGS = "QUIC is up but the peer sent no HTTP/3 SETTINGS"
    HTTP3 = "HTTP/3 is up (the peer's SETTINGS arrived)"


class ConnectionClient(ConnectionCore):
    """Connecting as a client (a part of WebTransportConnection)."""

    def connect(self) -> None:
        """Client: start the handshake."""
        self._state = ConnectionState.CONNECTING
        self._engine.connect(self._remote_address, time.monotonic())
        self._process_events()
        self._endpoint.transmit(self)  # the first Initial goes now, not after a loop pass

    async def wait_connected(self, *, timeout: float | None = None) -> None:
        """Wait for the handshake and the peer's SETTINGS (HandshakeError on failure,
        ConnectionRefusedError when the peer's host reports nothing listening, TimeoutError
        naming the stage reached)."""
        peer = format_address(*self._remote_address)
        if not await wait_for_any((self._h3_ready, self._closed), timeout):  # HTTP/3 up, or the end
            stage = self._describe_stage()
            await self._abandon(f"connecting to {peer} timed out")
            raise TimeoutError(f"no HTTP/3 connection to {peer} within {timeout:.1f}s: {stage}")
        if not self._h3_ready.is_set():
            error = self._close_error
            if isinstance(error, ConnectionClosedError) and error.error_code == c.H3_MISSING_SETTINGS:
                # The engine's own SETTINGS deadline (connect_timeout from the handshake's end)
                # passed: on a stalled loop in the same pass as this wait's timer. Either way the
                # connect timed out waiting for SETTINGS, and says so.
                raise TimeoutError(f"no HTTP/3 connection to {peer}: {ConnectStage.SETTINGS.value} "
                                   f"({error.reason})") from error
            if error is not None:
                raise error
            raise HandshakeError(f"the connection closed during the handshake: {self._close_reason or 'no reason'}",
                                 error_code=self._close_code)

    @property
    def connect_stage(self) -> ConnectStage:
        """How far this connection got towards HTTP/3 (what a connect timeout reports)."""
        if self._h3_ready.is_set():
            return ConnectStage.HTTP3
        if self._quic.handshake_complete:
            return ConnectStage.SETTINGS
        if self._datagrams_from_peer:
            return ConnectStage.HANDSHAKE
        return ConnectStage.NO_REPLY

    def _describe_stage(self) -> str:
        stage = self.connect_stage
        if stage is ConnectStage.HANDSHAKE:
            return f"{stage.value} ({self._datagrams_from_peer} datagrams received from it)"
        return str(stage.value)

    def error_received(self, exc: OSError) -> None:
        """Endpoint: the connected socket reported ``exc``. An ICMP port unreachable
        (ECONNREFUSED; WSAECONNRESET on Windows) before HTTP/3 is up ends the connect at once:
        nothing listens there."""
        refused = isinstance(exc, (builtins.ConnectionRefusedError, builtins.ConnectionResetError))
        if not refused or self._h3_ready.is_set() or self.is_closed:
            return
        port = self._remote_address[1]
        self._close_error = ConnectionRefusedError(
            f"{format_address(*self._remote_address)} refused the connection: its host reports UDP port {port} "
            "unreachable (nothing listens there)")
        self._engine.close(c.H3_NO_ERROR, "connection refused")
        self._loop.call_soon(self._terminated, c.H3_NO_ERROR, "connection refused", False)

