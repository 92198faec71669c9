"""Pure-Python twin of ``_mmsg``: the same batch interface over ``recvfrom``/``sendto`` loops.

It makes one system call per datagram, so it only saves the endpoint from caring which
build is installed; the compiled module is what batches (recvmmsg, sendmmsg, UDP GSO).
"""

from __future__ import annotations

import socket

__all__ = ["BATCHED", "BatchSocket"]

#: False here: this twin makes one system call per datagram.
BATCHED = False

_MAX_DATAGRAM = 65535


class BatchSocket:
    """Receive and send lists of datagrams on a non-blocking UDP socket (``gso`` is ignored)."""

    def __init__(self, sock: socket.socket, *, batch: int = 64, gso: bool = True) -> None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, not {batch}")
        self._sock = sock
        self._batch = batch
        self.truncated = 0

    @property
    def batch(self) -> int:
        """How many datagrams one ``recv`` reads at most."""
        return self._batch

    @property
    def gso(self) -> bool:
        """Whether sends are segmented by the kernel (UDP GSO): never in this twin."""
        return False

    def recv(self) -> list[tuple[bytes, tuple[str, int]]]:
        """Read up to ``batch`` waiting datagrams; an empty list when none is waiting.

        An error other than "would block" is raised as OSError when nothing was read yet.
        """
        received: list[tuple[bytes, tuple[str, int]]] = []
        for _ in range(self._batch):
            try:
                data, addr = self._sock.recvfrom(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                if received:
                    break
                raise
            received.append((data, (addr[0], addr[1])))
        return received

    def send(self, datagrams: list[tuple[bytes, tuple[str, int]]]) -> int:
        """Send datagrams in order; return how many the kernel took.

        A full send buffer stops the batch (the rest are dropped, as a router would); a
        datagram the kernel refuses for another reason is skipped.
        """
        sent = 0
        for data, addr in datagrams:
            try:
                self._sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue
            sent += 1
        return sent
