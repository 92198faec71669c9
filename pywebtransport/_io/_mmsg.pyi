"""Type stub of the compiled ``_mmsg`` (the pure twin ``_mmsg_py`` has the same names)."""

import socket

__all__ = ["BATCHED", "BatchSocket"]

BATCHED: bool

class BatchSocket:
    truncated: int
    def __init__(self, sock: socket.socket, *, batch: int = 64, gso: bool = True) -> None: ...
    @property
    def batch(self) -> int: ...
    @property
    def gso(self) -> bool: ...
    def recv(self) -> list[tuple[bytes, tuple[str, int]]]: ...
    def send(self, datagrams: list[tuple[bytes, tuple[str, int]]]) -> int: ...
