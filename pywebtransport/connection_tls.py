"""TLS and transport facts of a connection: the peer's certificate checked right after the
handshake (hash pinning on a client, ``verify_client`` on a server), the peer certificate,
the keying-material exporter, RTT and the QUIC backend.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
from typing import TYPE_CHECKING

from pywebtransport import constants as c
from pywebtransport._protocol import events as ev
from pywebtransport._protocol.quic import (
    TLS_ALERT_BAD_CERTIFICATE,
    TLS_ALERT_CERTIFICATE_REQUIRED,
    RttSample,
    close_with_tls_alert,
    verify_client_certificate,
)
from pywebtransport.config import ServerConfig
from pywebtransport.connection_core import ConnectionCore
from pywebtransport.exceptions import CertificateError, ConnectionClosedError, HandshakeError

if TYPE_CHECKING:
    from cryptography import x509

__all__ = ["ConnectionTLS"]

#: The connection's logger (docs/debugging.md names it): every part of the class logs to it.
logger = logging.getLogger("pywebtransport.connection")


class ConnectionTLS(ConnectionCore):
    """Certificate checks, the exporter and transport facts (a part of WebTransportConnection)."""

    def _check_pinned_certificate(self) -> None:
        """Client, right after the handshake: the server's certificate must be one of
        ``server_certificate_hashes`` and, as browsers require of a certificate accepted by
        its hash (WebTransport's serverCertificateHashes), valid now."""
        der = self._quic.peer_certificate_der
        if der is None:
            return
        self._peer_checked = True
        digest = hashlib.sha256(der).digest()
        assert self._pinned is not None
        if digest not in self._pinned:
            self._refuse_certificate(f"server certificate SHA-256 {digest.hex()} matches none of the configured "
                                     "server_certificate_hashes", "certificate not pinned")
            return
        leaf = self._quic.peer_certificate
        now = datetime.datetime.now(datetime.timezone.utc)
        if leaf is not None and not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
            self._refuse_certificate(
                f"server certificate SHA-256 {digest.hex()} is pinned but not valid now: valid from "
                f"{leaf.not_valid_before_utc:%Y-%m-%d %H:%M} to {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC",
                "pinned certificate not valid now")

    def _refuse_certificate(self, problem: str, reason: str) -> None:
        # INFO: the CertificateError reaches whoever connects and says it (the CLI's one line).
        logger.info("%s; closing", problem)
        self._close_error = CertificateError(problem)
        self._engine.close(c.H3_NO_ERROR, reason)
        self._loop.call_soon(self._terminated, c.H3_NO_ERROR, reason, False)

    def _check_client_certificate(self, config: ServerConfig) -> None:
        """Server, right after the handshake: verify the client's certificate as
        ``verify_client`` asks, before any of its requests is handled; on failure close the
        connection with the TLS alert as CRYPTO_ERROR (RFC 9001 §4.8), its reason phrase
        saying why (the client's HandshakeError carries it)."""
        if config.verify_client == "none":
            self._peer_checked = True
            return
        if not self._quic.handshake_complete:
            return
        self._peer_checked = True
        leaf = self._quic.peer_certificate
        if leaf is None:
            if config.verify_client != "required":
                return
            alert, problem = TLS_ALERT_CERTIFICATE_REQUIRED, "client certificate required"
        else:
            assert config.ca_certs is not None  # the configuration requires it with verify_client
            failure = verify_client_certificate(leaf, self._quic.peer_certificate_chain, config.ca_certs)
            if failure is None:
                return
            alert, problem = TLS_ALERT_BAD_CERTIFICATE, f"client certificate rejected: {failure}"
        logger.warning("connection %s from %s:%s: %s; closing", self._connection_id, self._remote_address[0],
                       self._remote_address[1], problem)
        self._close_error = CertificateError(problem)
        code = close_with_tls_alert(self._quic, alert, problem)
        self._engine.close(c.H3_NO_ERROR, problem)  # its sessions end; QUIC is closing already
        # A request that came in the same datagram as the client's Finished is never served.
        while (event := self._engine.next_event()) is not None:
            if isinstance(event, (ev.ConnectionIdIssued, ev.ConnectionIdRetired)):
                self.handle_event(event)
        self._endpoint.transmit(self)  # the CONNECTION_CLOSE, before the connection is forgotten
        self._loop.call_soon(self._terminated, code, problem, False)

    # ------------------------------------------------------------------ TLS and transport facts

    @property
    def peer_certificate(self) -> x509.Certificate | None:
        """The peer's TLS leaf certificate (a server sees the client's with mTLS; None without)."""
        return self._quic.peer_certificate

    def export_keying_material(self, label: bytes, context: bytes = b"", length: int = 32) -> bytes:
        """TLS-Exporter(label, context, length) of the connection (RFC 8446 §7.5): the same bytes
        on both ends. Sessions bind it to themselves: ``WebTransportSession.export_keying_material``."""
        if self.is_closed:
            raise ConnectionClosedError("the connection is closed", error_code=self._close_code,
                                        reason=self._close_reason)
        try:
            return self._quic.export_keying_material(bytes(label), bytes(context), length)
        except RuntimeError as exc:
            raise HandshakeError(str(exc)) from exc

    def transport_rtt(self) -> RttSample:
        """RTT, congestion window and bytes in flight from the QUIC connection's loss recovery."""
        return self._quic.rtt()

    @property
    def quic_backend(self) -> str:
        """The QUIC implementation of this connection ("aioquic", "qh3")."""
        return self._quic.backend

