"""Whether a datagram that would open a server connection carries a client Initial that
decrypts, checked before any connection state exists.

An Initial is protected with keys anyone derives from its destination connection id (RFC
9001 §5.2), so a real client's always decrypts, while junk shaped like one never does.
Building a connection to find out costs about 0.5 ms of CPU and ~90 KiB (aioquic); this
check costs one key derivation and one AEAD open. The QUIC packet protection of v1 and v2 is
the same whichever backend then runs the connection, so aioquic's primitives (a required
dependency) serve both.
"""

from __future__ import annotations

import logging

from aioquic._buffer import Buffer  # what aioquic.buffer re-exports, typed (_buffer.pyi)
from aioquic.quic.crypto import CryptoPair
from aioquic.quic.packet import pull_quic_header

__all__ = ["initial_decrypts"]

logger = logging.getLogger(__name__)

#: The length of the connection ids our endpoints issue (a short header does not carry it).
_HOST_CID_LENGTH = 8


def initial_decrypts(datagram: bytes) -> bool:
    """Whether the first packet of ``datagram``, a client's Initial, decrypts with the Initial
    keys of its destination connection id. Only a packet that is certainly not one is
    refused: when the check itself cannot run (a library that changed), it says True and the
    connection decides, as it does anyway (``has_accepted_packet``)."""
    try:
        buf = Buffer(data=datagram)
        header = pull_quic_header(buf, host_cid_length=_HOST_CID_LENGTH)
        if header.version is None:
            return False
        pair = CryptoPair()
        pair.setup_initial(cid=header.destination_cid, is_client=False, version=header.version)
        pair.decrypt_packet(datagram[:header.packet_length], buf.tell(), 0)
    except ValueError:  # CryptoError (it did not decrypt) and BufferReadError (malformed) are both
        return False
    except Exception:  # the check cannot run here: the connection will find out
        logger.debug("cannot check an Initial before building its connection", exc_info=True)
        return True
    return True
