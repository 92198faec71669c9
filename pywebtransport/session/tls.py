"""What a session exposes of its connection's TLS: the peer's certificate and keying
material exported for the session (draft-15 §4.8).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pywebtransport.session.core import SessionCore
from pywebtransport.types import SessionState

if TYPE_CHECKING:
    from cryptography import x509

__all__ = ["SessionTLS"]

#: The TLS exporter label of every WebTransport session export (draft-15 §4.8).
_WT_EXPORTER_LABEL = b"EXPORTER-WebTransport"


class SessionTLS(SessionCore):
    """The peer certificate and the keying-material exporter (a part of WebTransportSession)."""

    @property
    def peer_certificate(self) -> x509.Certificate | None:
        """The peer's TLS leaf certificate: the server's on a client; on a server the client's
        (mTLS, verified against ``ServerConfig.ca_certs``), None when the client sent none."""
        connection = self._connection_ref()
        return connection.peer_certificate if connection is not None else None

    def export_keying_material(self, label: bytes | str, context: bytes = b"", length: int = 32) -> bytes:
        """Keying material bound to this session (draft-15 §4.8): the connection's TLS exporter
        (RFC 8446 §7.5) with the label "EXPORTER-WebTransport" and a context made of the
        session ID, ``label`` (1-255 bytes; str is UTF-8) and ``context`` (0-255 bytes). Both
        ends of the session get the same ``length`` bytes; other sessions, labels or contexts
        get unrelated ones. ValueError for bad sizes, SessionClosedError once closed."""
        app_label = label.encode("utf-8") if isinstance(label, str) else bytes(label)
        app_context = bytes(context)
        if not 1 <= len(app_label) <= 255:
            raise ValueError(f"the exporter label must be 1-255 bytes, got {len(app_label)}")
        if len(app_context) > 255:
            raise ValueError(f"the exporter context must be at most 255 bytes, got {len(app_context)}")
        if not isinstance(length, int) or isinstance(length, bool) or not 0 <= length <= 255 * 32:
            raise ValueError(f"length must be an int in [0, 8160], got {length!r}")
        if self.state is SessionState.CLOSED:
            raise self._closed_error_or_generic(f"session {self._session_id} is closed")
        connection = self._require_connection()
        # WebTransport Exporter Context: Session ID (64), label length (8), label,
        # context length (8), context.
        exporter_context = (self._session_id.to_bytes(8, "big") + bytes([len(app_label)]) + app_label
                            + bytes([len(app_context)]) + app_context)
        return connection.export_keying_material(_WT_EXPORTER_LABEL, exporter_context, length)
