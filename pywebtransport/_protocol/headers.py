"""Extended CONNECT request and response headers (RFC 9220, WebTransport draft §3)."""

from __future__ import annotations

from dataclasses import dataclass

from pywebtransport import constants as c

__all__ = ["ConnectRequest", "HeaderValidationError", "build_connect_request", "build_response",
           "decode_header_list", "parse_connect_request", "parse_status"]

WEBTRANSPORT_PROTOCOLS = frozenset({"webtransport", "webtransport-h3"})
DRAFT02_REQUEST_HEADER = "sec-webtransport-http3-draft02"
DRAFT02_RESPONSE_HEADER = "sec-webtransport-http3-draft"

HeaderList = list[tuple[bytes, bytes]]


class HeaderValidationError(ValueError):
    """A request or response header block is malformed; ``status`` is what to answer."""

    def __init__(self, message: str, *, status: int = 400, error_code: int = c.H3_MESSAGE_ERROR) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    """A validated extended CONNECT request."""

    protocol: str
    scheme: str
    authority: str
    path: str
    origin: str | None
    headers: dict[str, str]
    draft02: bool


def decode_header_list(header_list: HeaderList) -> dict[str, str]:
    """Header pairs as a dict of str (latin-1 safe); a repeated name keeps its values joined."""
    out: dict[str, str] = {}
    for raw_name, raw_value in header_list:
        name = raw_name.decode("latin-1")
        value = raw_value.decode("latin-1")
        if name != name.lower():
            raise HeaderValidationError(f"header name {name!r} is not lower-case")
        if name in out:
            if name.startswith(":"):
                raise HeaderValidationError(f"pseudo-header {name} repeated")
            out[name] = f"{out[name]}, {value}"
        else:
            out[name] = value
    return out


def build_connect_request(*, authority: str, path: str, origin: str | None, protocol: str = "webtransport",
                          extra: dict[str, str] | None = None) -> HeaderList:
    """Header list for a client's CONNECT, with the draft-02 header browsers send."""
    headers: HeaderList = [
        (b":method", b"CONNECT"),
        (b":protocol", protocol.encode()),
        (b":scheme", b"https"),
        (b":authority", authority.encode()),
        (b":path", path.encode()),
        (DRAFT02_REQUEST_HEADER.encode(), b"1"),
    ]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    for name, value in (extra or {}).items():
        lname = name.lower()
        if lname.startswith(":") or lname in ("origin", DRAFT02_REQUEST_HEADER):
            continue
        headers.append((lname.encode(), value.encode()))
    return headers


def parse_connect_request(headers: dict[str, str]) -> ConnectRequest:
    """Validate a CONNECT request for WebTransport.

    Raises HeaderValidationError with status 400 for malformed requests, 405 for another
    method, 501 for another ``:protocol``.
    """
    method = headers.get(":method")
    if method is None:
        raise HeaderValidationError("request has no :method")
    if method != "CONNECT":
        raise HeaderValidationError(f"method {method} is not supported here", status=405)
    protocol = headers.get(":protocol")
    if protocol is None:
        raise HeaderValidationError("CONNECT without :protocol (plain CONNECT is not supported)", status=501)
    for name in (":scheme", ":authority", ":path"):
        if not headers.get(name):
            raise HeaderValidationError(f"extended CONNECT without {name}")
    if protocol not in WEBTRANSPORT_PROTOCOLS:
        raise HeaderValidationError(f"unsupported :protocol {protocol!r}", status=501)
    if headers[":scheme"] != "https":
        raise HeaderValidationError(f"unsupported :scheme {headers[':scheme']!r}")
    path = headers[":path"]
    if not path.startswith("/"):
        raise HeaderValidationError(f":path {path!r} does not start with '/'")
    return ConnectRequest(
        protocol=protocol,
        scheme=headers[":scheme"],
        authority=headers[":authority"],
        path=path,
        origin=headers.get("origin"),
        headers=dict(headers),
        draft02=DRAFT02_REQUEST_HEADER in headers,
    )


def build_response(status: int, *, draft02: bool, extra: dict[str, str] | None = None) -> HeaderList:
    """Response header list; a draft-02 client gets the draft header back."""
    headers: HeaderList = [(b":status", str(status).encode())]
    if draft02 and 200 <= status < 300:
        headers.append((DRAFT02_RESPONSE_HEADER.encode(), b"draft02"))
    for name, value in (extra or {}).items():
        lname = name.lower()
        if not lname.startswith(":"):
            headers.append((lname.encode(), value.encode()))
    return headers


def parse_status(headers: dict[str, str]) -> int:
    """The :status of a response; HeaderValidationError when absent or not 3 digits."""
    status = headers.get(":status", "")
    if len(status) != 3 or not status.isdigit():
        raise HeaderValidationError(f"response has an invalid :status {status!r}")
    return int(status)
