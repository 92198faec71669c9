"""Extended CONNECT request and response headers (RFC 9220, WebTransport draft-15 §3.2-§3.3).

Received header lists go through :func:`decode_request` or :func:`decode_response`, which
enforce the field-section size limit and RFC 9114's message rules before anything is read;
outgoing ones are built here and pass the same checks, so a caller's header with CR/LF or a
connection-specific name is refused before it reaches the wire.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pywebtransport import constants as c
from pywebtransport._protocol.fields import (
    DEFAULT_MAX_FIELD_SECTION_SIZE,
    FieldSectionTooLargeError,
    HeaderList,
    HeaderValidationError,
    StructuredFieldError,
    decode_header_list,
    encode_available_protocols,
    encode_protocol,
    field_section_size,
    parse_available_protocols,
    parse_protocol,
    validate_header_list,
)

__all__ = [
    "DEFAULT_MAX_FIELD_SECTION_SIZE",
    "WT_AVAILABLE_PROTOCOLS",
    "WT_PROTOCOL",
    "ConnectRequest",
    "FieldSectionTooLargeError",
    "HeaderList",
    "HeaderValidationError",
    "StructuredFieldError",
    "build_connect_request",
    "build_response",
    "decode_header_list",
    "decode_request",
    "decode_response",
    "encode_available_protocols",
    "encode_protocol",
    "field_section_size",
    "parse_available_protocols",
    "parse_connect_request",
    "parse_protocol",
    "parse_status",
]

logger = logging.getLogger(__name__)

WEBTRANSPORT_PROTOCOLS = frozenset({"webtransport", "webtransport-h3"})
DRAFT02_REQUEST_HEADER = "sec-webtransport-http3-draft02"
DRAFT02_RESPONSE_HEADER = "sec-webtransport-http3-draft"
WT_AVAILABLE_PROTOCOLS = "wt-available-protocols"
WT_PROTOCOL = "wt-protocol"


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    """A validated extended CONNECT request; ``available_protocols`` is the client's subprotocol offer."""

    protocol: str
    scheme: str
    authority: str
    path: str
    origin: str | None
    headers: dict[str, str]
    draft02: bool
    available_protocols: tuple[str, ...] = ()


def decode_request(header_list: HeaderList, *,
                   max_field_section_size: int | None = DEFAULT_MAX_FIELD_SECTION_SIZE) -> dict[str, str]:
    """A received request's fields as a dict, after the size limit and RFC 9114 §4.2/§4.3/§10.3 checks.

    Raises FieldSectionTooLargeError (answer 431) or HeaderValidationError (answer ``status``,
    400 for a malformed request); both are stream errors of type ``error_code`` (H3_MESSAGE_ERROR).
    """
    fields = decode_header_list(header_list, role="request", max_field_section_size=max_field_section_size)
    _check_request_pseudo_headers(fields)
    return fields


def decode_response(header_list: HeaderList, *,
                    max_field_section_size: int | None = DEFAULT_MAX_FIELD_SECTION_SIZE) -> dict[str, str]:
    """A received response's fields as a dict, after the size limit and RFC 9114 §4.2/§4.3/§10.3 checks.

    A HeaderValidationError here fails that one request stream (reset it with ``error_code``,
    H3_MESSAGE_ERROR, RFC 9114 §4.1.2), never the connection.
    """
    fields = decode_header_list(header_list, role="response", max_field_section_size=max_field_section_size)
    parse_status(fields)
    return fields


def _check_request_pseudo_headers(fields: dict[str, str]) -> None:
    """Which pseudo-headers a request must carry: RFC 9114 §4.3.1, §4.4 and RFC 9220 §3."""
    method = fields.get(":method")
    if method is None:
        raise HeaderValidationError("request has no :method (RFC 9114 §4.3.1)", field=":method")
    if ":protocol" not in fields and method == "CONNECT":
        if ":scheme" in fields or ":path" in fields:
            raise HeaderValidationError("CONNECT without :protocol carries :scheme or :path (RFC 9114 §4.4)",
                                        field=":scheme" if ":scheme" in fields else ":path")
        if ":authority" not in fields:
            raise HeaderValidationError("CONNECT request has no :authority (RFC 9114 §4.4)", field=":authority")
        return
    if ":protocol" in fields and method != "CONNECT":
        raise HeaderValidationError(f":protocol on a {method} request; only CONNECT may carry it (RFC 9220 §3)",
                                    field=":protocol")
    for name in (":scheme", ":path"):
        if name not in fields:
            raise HeaderValidationError(f"request has no {name} (RFC 9114 §4.3.1, RFC 9220 §3)", field=name)
    if fields[":scheme"] in ("http", "https"):
        authority, host = fields.get(":authority"), fields.get("host")
        if authority is None and host is None:
            raise HeaderValidationError("request has neither :authority nor host (RFC 9114 §4.3.1)",
                                        field=":authority")
        if host is not None and (not host or (authority is not None and host != authority)):
            raise HeaderValidationError("host is empty or differs from :authority (RFC 9114 §4.3.1)", field="host")


def _encode_pair(name: str, value: str) -> tuple[bytes, bytes]:
    """Latin-1 bytes of a field line we send; field values are octets, and latin-1 round-trips them."""
    try:
        return name.encode("ascii"), value.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise HeaderValidationError(f"field {name!r} has characters that are not latin-1 (percent-encode "
                                    "paths, IDNA-encode host names)", field=name) from exc


def build_connect_request(*, authority: str, path: str, origin: str | None, protocol: str = "webtransport",
                          extra: dict[str, str] | None = None,
                          available_protocols: Sequence[str] | None = None) -> HeaderList:
    """Header list for a client's CONNECT, with the draft-02 header browsers send.

    ``available_protocols`` becomes WT-Available-Protocols (draft-15 §3.3). Raises
    HeaderValidationError when a name or value could not be sent (CR/LF, connection-specific...).
    """
    pairs = [(":method", "CONNECT"), (":protocol", protocol), (":scheme", "https"), (":authority", authority),
             (":path", path), (DRAFT02_REQUEST_HEADER, "1")]
    if origin is not None:
        pairs.append(("origin", origin))
    if available_protocols is not None:
        pairs.append((WT_AVAILABLE_PROTOCOLS, encode_available_protocols(available_protocols)))
    skip = {"origin", DRAFT02_REQUEST_HEADER} | ({WT_AVAILABLE_PROTOCOLS} if available_protocols is not None else set())
    for name, value in (extra or {}).items():
        lname = name.lower()
        if not lname.startswith(":") and lname not in skip:
            pairs.append((lname, value))
    headers = [_encode_pair(name, value) for name, value in pairs]
    validate_header_list(headers, role="request")
    return headers


#: The code a well-formed request we decline (405, 501) is stopped with, once answered: RFC
#: 9114 §4.1 says H3_NO_ERROR SHOULD be used to ask the client to stop sending a request
#: whose rest is not needed. A malformed one is H3_MESSAGE_ERROR (§4.1.2).
_DECLINED = c.H3_NO_ERROR


def parse_connect_request(headers: dict[str, str]) -> ConnectRequest:
    """Validate a CONNECT request for WebTransport (RFC 9220 §3, draft-15 §3.2).

    Raises HeaderValidationError with status 400 for malformed requests, 405 for another
    method, 501 for another ``:protocol`` (those two with the code H3_NO_ERROR: the request
    was well formed). An unparsable WT-Available-Protocols is ignored, as RFC 8941 §4.2
    prescribes for any structured field that fails to parse.
    """
    method = headers.get(":method")
    if method is None:
        raise HeaderValidationError("request has no :method", field=":method")
    if method != "CONNECT":
        raise HeaderValidationError(f"method {method} is not supported here", status=405, field=":method",
                                    error_code=_DECLINED)
    protocol = headers.get(":protocol")
    if protocol is None:
        raise HeaderValidationError("CONNECT without :protocol (plain CONNECT is not supported)", status=501,
                                    field=":protocol", error_code=_DECLINED)
    for name in (":scheme", ":authority", ":path"):
        if not headers.get(name):
            raise HeaderValidationError(f"extended CONNECT without {name} (RFC 9220 §3)", field=name)
    if protocol not in WEBTRANSPORT_PROTOCOLS:
        raise HeaderValidationError(f"unsupported :protocol {protocol!r}", status=501, field=":protocol",
                                    error_code=_DECLINED)
    if headers[":scheme"] != "https":
        raise HeaderValidationError(f"unsupported :scheme {headers[':scheme']!r}", field=":scheme")
    path = headers[":path"]
    if not path.startswith("/"):
        raise HeaderValidationError(f":path {path!r} does not start with '/'", field=":path")
    offered: tuple[str, ...] = ()
    if WT_AVAILABLE_PROTOCOLS in headers:
        try:
            offered = tuple(parse_available_protocols(headers[WT_AVAILABLE_PROTOCOLS]))
        except StructuredFieldError as exc:
            logger.debug("ignoring an unparsable %s: %s", WT_AVAILABLE_PROTOCOLS, exc)
    return ConnectRequest(
        protocol=protocol,
        scheme=headers[":scheme"],
        authority=headers[":authority"],
        path=path,
        origin=headers.get("origin"),
        headers=dict(headers),
        draft02=DRAFT02_REQUEST_HEADER in headers,
        available_protocols=offered,
    )


def build_response(status: int, *, draft02: bool, extra: dict[str, str] | None = None,
                   protocol: str | None = None) -> HeaderList:
    """Response header list; a draft-02 client gets the draft header back.

    ``protocol`` becomes WT-Protocol (draft-15 §3.3). Raises HeaderValidationError when a
    name or value could not be sent.
    """
    if not 100 <= status <= 599:
        raise HeaderValidationError(f"status {status} is outside 100-599 (RFC 9110 §15)", field=":status")
    pairs = [(":status", str(status))]
    if draft02 and 200 <= status < 300:
        pairs.append((DRAFT02_RESPONSE_HEADER, "draft02"))
    if protocol is not None:
        pairs.append((WT_PROTOCOL, encode_protocol(protocol)))
    for name, value in (extra or {}).items():
        lname = name.lower()
        if not lname.startswith(":") and not (protocol is not None and lname == WT_PROTOCOL):
            pairs.append((lname, value))
    headers = [_encode_pair(name, value) for name, value in pairs]
    validate_header_list(headers, role="response")
    return headers


def parse_status(headers: dict[str, str]) -> int:
    """The :status of a response; HeaderValidationError when absent or not a 3-digit code in 100-599."""
    status = headers.get(":status")
    if status is None:
        raise HeaderValidationError("response has no :status (RFC 9114 §4.3.2)", field=":status")
    if len(status) != 3 or not (status.isascii() and status.isdigit()) or not 100 <= int(status) <= 599:
        raise HeaderValidationError(f"response has an invalid :status {status!r} (RFC 9110 §15)", field=":status")
    return int(status)
