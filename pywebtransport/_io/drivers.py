"""What the UDP endpoint needs from the connections it drives, and the callables a server
gives it (making a connection for a new Initial, refusing one it declines).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from pywebtransport.types import Address

__all__ = ["ClientDriver", "ConnectionDriver", "InitialCheck", "NewConnectionFactory", "RefusalBuilder"]


class ConnectionDriver(Protocol):
    """What the endpoint needs from a connection."""

    def datagram_received(self, data: bytes, addr: Address, now: float) -> None: ...
    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]: ...
    def get_timer(self) -> float | None: ...
    def handle_timer(self, now: float) -> None: ...


class ClientDriver(ConnectionDriver, Protocol):
    """A client connection: it alone uses its endpoint, so socket errors concern it."""

    def error_received(self, exc: OSError) -> None: ...


NewConnectionFactory = Callable[[bytes, Address], "ConnectionDriver | None"]
#: Builds the reply to an Initial the server declines: (version, client DCID, client SCID) ->
#: a datagram carrying CONNECTION_CLOSE(CONNECTION_REFUSED), or None to drop it silently.
RefusalBuilder = Callable[[int, bytes, bytes], "bytes | None"]
#: Whether a datagram that would open a connection carries an Initial that decrypts: one that
#: does not gets no connection (see ``_protocol.quic_initial``).
InitialCheck = Callable[[bytes], bool]
