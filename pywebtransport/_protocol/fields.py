"""HTTP/3 field sections: size limits, validation and linear-time decoding (RFC 9114 §4.2, §4.3, §10.3).

Every check runs on the raw header list that pylsqpack hands back, in passes that are each
linear in the number of fields; the size limit runs first and stops at the first field over
it, so a hostile block of tens of thousands of tiny fields costs no more than the limit allows.
Also here: the RFC 8941 structured-field subset that WebTransport subprotocol negotiation
needs (draft-ietf-webtrans-http3-15 §3.3).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Literal

from pywebtransport import constants as c
from pywebtransport.exceptions import WebTransportError

__all__ = [
    "DEFAULT_MAX_FIELD_SECTION_SIZE",
    "FIELD_LINE_OVERHEAD",
    "FieldSectionTooLargeError",
    "HeaderList",
    "HeaderValidationError",
    "Role",
    "StructuredFieldError",
    "check_field",
    "check_field_section_size",
    "decode_header_list",
    "encode_available_protocols",
    "encode_protocol",
    "field_section_size",
    "join_field_values",
    "parse_available_protocols",
    "parse_protocol",
    "validate_header_list",
]

HeaderList = list[tuple[bytes, bytes]]
Role = Literal["request", "response"]

#: Our SETTINGS_MAX_FIELD_SECTION_SIZE (0x06): 64 KiB of decoded field section, at most
#: 2048 field lines; a WebTransport CONNECT needs a few hundred bytes.
DEFAULT_MAX_FIELD_SECTION_SIZE = c.DEFAULT_MAX_FIELD_SECTION_SIZE
#: RFC 9114 §4.2.2: each field line counts its name and value length plus 32 bytes.
FIELD_LINE_OVERHEAD = 32

REQUEST_PSEUDO_HEADERS = frozenset({b":method", b":scheme", b":authority", b":path", b":protocol"})
RESPONSE_PSEUDO_HEADERS = frozenset({b":status"})
# RFC 9114 §4.2: HTTP/3 carries no connection-specific fields; TE is allowed only as "trailers".
CONNECTION_SPECIFIC_FIELDS = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding",
                                        b"upgrade"})

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")  # RFC 9110 §5.6.2 tchar, lower-case only
_PSEUDO_VALUE = re.compile(rb"[\x21-\x7e]+")  # method, scheme, authority, path, protocol, status
_FORBIDDEN_IN_VALUE = re.compile(rb"[\x00\r\n]")
_BYTE_NAMES = {0x00: "NUL", 0x09: "HTAB", 0x0A: "LF", 0x0D: "CR", 0x20: "SP", 0x7F: "DEL"}


class HeaderValidationError(WebTransportError, ValueError):
    """A field section is malformed or refused; the message names the field and the rule broken.

    ``status`` is the HTTP status a server answers a refused request with; ``error_code`` is
    the HTTP/3 code to reset the stream with (H3_MESSAGE_ERROR: RFC 9114 §4.1.2 makes every
    malformed message a stream error of that type); ``stream_error`` is always True: the
    failure belongs to one request stream (one session), never to the whole connection.
    ``field`` is the offending field name when there is one.
    """

    default_code = c.H3_MESSAGE_ERROR
    _http3_code = True

    def __init__(self, message: str, *, status: int = 400, error_code: int | None = None,
                 field: str | None = None) -> None:
        super().__init__(message, error_code=error_code)
        self.status = status
        self.field = field
        self.stream_error = True


class FieldSectionTooLargeError(HeaderValidationError):
    """The decoded field section exceeds our SETTINGS_MAX_FIELD_SECTION_SIZE (RFC 9114 §4.2.2).

    A server may answer 431 (``status``); a client discards the response. Exceeding an
    advertised limit makes the message malformed (§10.5.1), so the stream error is H3_MESSAGE_ERROR.
    """

    def __init__(self, size: int, limit: int, *, fields_counted: int) -> None:
        super().__init__(f"field section exceeds the {limit}-byte limit (RFC 9114 §4.2.2, name + value + 32 "
                         f"per field): {size} bytes after {fields_counted} field lines", status=431)
        self.size = size
        self.limit = limit


class StructuredFieldError(HeaderValidationError):
    """A structured-field value (RFC 8941) cannot be parsed or serialized as the subset used here."""


def _show(raw: bytes) -> str:
    """A field name for messages and logs: escaped, and cut at 64 bytes."""
    text = raw[:64].decode("latin-1")
    return repr(text) + ("..." if len(raw) > 64 else "")


def _describe_byte(byte: int) -> str:
    name = _BYTE_NAMES.get(byte)
    return f"{byte:#04x} ({name})" if name else f"{byte:#04x}"


def field_section_size(headers: Iterable[tuple[bytes, bytes]]) -> int:
    """Size of a field section as RFC 9114 §4.2.2 counts it: name + value + 32 bytes per field line."""
    return sum(len(name) + len(value) + FIELD_LINE_OVERHEAD for name, value in headers)


def check_field_section_size(headers: Iterable[tuple[bytes, bytes]], max_size: int) -> int:
    """The section's size; raises FieldSectionTooLargeError at the first field line that crosses ``max_size``.

    It stops there, so a block of 65,000 tiny fields costs at most ``max_size / 32`` steps.
    """
    total = 0
    for count, (name, value) in enumerate(headers, 1):
        total += len(name) + len(value) + FIELD_LINE_OVERHEAD
        if total > max_size:
            raise FieldSectionTooLargeError(total, max_size, fields_counted=count)
    return total


def _check_name(name: bytes) -> None:
    if _TOKEN.fullmatch(name):
        return
    shown = _show(name)
    if not name:
        raise HeaderValidationError("empty field name (RFC 9114 §10.3: field names are tokens)", field="")
    if name.lower() != name and _TOKEN.fullmatch(name.lower()):
        raise HeaderValidationError(f"field name {shown} is not lower-case (RFC 9114 §4.2)",
                                    field=name.decode("latin-1"))
    bad = next(b for b in name if not _TOKEN.fullmatch(bytes((b,)).lower()))
    raise HeaderValidationError(f"field name {shown} contains {_describe_byte(bad)}, not allowed in a field name "
                                "(RFC 9114 §10.3, RFC 9110 §5.1)", field=name.decode("latin-1"))


def _check_value(name: bytes, value: bytes) -> None:
    # RFC 9114 §10.3 / RFC 9110 §5.5: CR, LF and NUL never; no leading or trailing whitespace.
    bad = _FORBIDDEN_IN_VALUE.search(value)
    if bad is not None:
        raise HeaderValidationError(f"value of {_show(name)} contains {_describe_byte(value[bad.start()])} at "
                                    f"offset {bad.start()} (RFC 9114 §10.3)", field=name.decode("latin-1"))
    if value and (value[0] in (0x20, 0x09) or value[-1] in (0x20, 0x09)):
        raise HeaderValidationError(f"value of {_show(name)} has leading or trailing whitespace "
                                    "(RFC 9114 §10.3, RFC 9110 §5.5)", field=name.decode("latin-1"))


def check_field(name: bytes, value: bytes) -> None:
    """Validate one regular (non-pseudo) field line against RFC 9114 §4.2 and §10.3.

    The name must be a lower-case token and not connection-specific (``te`` only as
    ``trailers``); the value must hold no CR, LF or NUL and no leading or trailing whitespace.
    """
    _check_name(name)
    if name in CONNECTION_SPECIFIC_FIELDS:
        raise HeaderValidationError(f"connection-specific field {_show(name)} is not allowed in HTTP/3 "
                                    "(RFC 9114 §4.2)", field=name.decode("latin-1"))
    if name == b"te" and value != b"trailers":
        raise HeaderValidationError("field 'te' may only be 'trailers' in HTTP/3 (RFC 9114 §4.2)", field="te")
    _check_value(name, value)


def _check_pseudo(name: bytes, value: bytes, role: Role, seen: set[bytes]) -> None:
    allowed = REQUEST_PSEUDO_HEADERS if role == "request" else RESPONSE_PSEUDO_HEADERS
    if name in allowed and name not in seen and _PSEUDO_VALUE.fullmatch(value):
        seen.add(name)
        return
    shown, field = _show(name), name.decode("latin-1")  # only a bad line is named
    if name not in allowed:
        if name in (RESPONSE_PSEUDO_HEADERS if role == "request" else REQUEST_PSEUDO_HEADERS):
            raise HeaderValidationError(f"pseudo-header {shown} is not allowed in a {role} (RFC 9114 §4.3)",
                                        field=field)
        raise HeaderValidationError(f"undefined pseudo-header {shown} (RFC 9114 §4.3)", field=field)
    if name in seen:
        raise HeaderValidationError(f"pseudo-header {shown} repeated (RFC 9114 §4.3)", field=field)
    rule = "is empty" if not value else "holds whitespace, control or non-ASCII bytes"
    raise HeaderValidationError(f"pseudo-header {shown} {rule} (RFC 9114 §4.3, §10.3)", field=field)


def validate_header_list(header_list: Sequence[tuple[bytes, bytes]], *, role: Role | None = None) -> None:
    """Check every field line against RFC 9114 §4.2, §4.3 and §10.3; HeaderValidationError names the first bad one.

    ``role`` picks the allowed pseudo-headers; None infers it from the first pseudo-header.
    Which pseudo-headers a message must carry is checked by the request/response parsers.
    """
    seen: set[bytes] = set()
    regular_seen = False
    for name, value in header_list:
        if name[:1] == b":":
            if regular_seen:
                raise HeaderValidationError(f"pseudo-header {_show(name)} after a regular field (RFC 9114 §4.3)",
                                            field=name.decode("latin-1"))
            if role is None:
                # Role inferred from the first pseudo-header: a section mixing request and
                # response pseudo-headers fails under either reading.
                role = "response" if name == b":status" else "request"
            _check_pseudo(name, value, role, seen)
        else:
            regular_seen = True
            check_field(name, value)


#: Field names and values that recur in every WebTransport request and response: the
#: pseudo-headers, the WebTransport and common request fields (names as the QPACK static
#: table spells them, RFC 9204 Appendix A) and the usual values of the pseudo-headers.
_KNOWN_STRINGS: dict[bytes, str] = {text.encode("latin-1"): text for text in (
    ":authority", ":path", ":method", ":scheme", ":protocol", ":status", "origin", "user-agent",
    "sec-webtransport-http3-draft02", "sec-webtransport-http3-draft", "wt-available-protocols", "wt-protocol",
    "accept", "accept-encoding", "accept-language", "authorization", "cache-control", "content-length",
    "content-type", "cookie", "date", "host", "referer", "server", "set-cookie",
    "CONNECT", "GET", "https", "http", "webtransport", "webtransport-h3", "draft02", "1",
    "200", "400", "403", "404", "429", "500", "503",
)}


def decode_header_list(header_list: Sequence[tuple[bytes, bytes]], *, role: Role | None = None,
                       max_field_section_size: int | None = DEFAULT_MAX_FIELD_SECTION_SIZE) -> dict[str, str]:
    """Validate a decoded header list and return it as a dict of str, in time linear in its length.

    The size limit (None: none) is checked first; then RFC 9114 §4.2/§4.3/§10.3 (``role``
    None infers it from the first pseudo-header). Repeated names are joined once at the end
    with ", " (``cookie`` with "; ", §4.2.1). Values are latin-1, so any byte round-trips.
    Raises HeaderValidationError (FieldSectionTooLargeError for the size).
    """
    if max_field_section_size is not None:
        check_field_section_size(header_list, max_field_section_size)
    validate_header_list(header_list, role=role)
    out: dict[str, str] = {}
    repeated: dict[str, list[str]] = {}
    known = _KNOWN_STRINGS
    for raw_name, raw_value in header_list:
        # Well-known names and values are shared strings: a session keeps its headers, and
        # most of them are the same in every session (``known`` only holds bytes keys).
        name = (known.get(raw_name) if type(raw_name) is bytes else None) or raw_name.decode("latin-1")
        value = (known.get(raw_value) if type(raw_value) is bytes else None) or raw_value.decode("latin-1")
        if name in out:
            values = repeated.get(name)
            if values is None:
                repeated[name] = [out[name], value]
            else:
                values.append(value)
        else:
            out[name] = value
    for name, values in repeated.items():
        out[name] = join_field_values(name, values)
    return out


def join_field_values(name: str, values: list[str]) -> str:
    """All values of one repeated field in a single join (RFC 9110 §5.3; cookie: RFC 9114 §4.2.1)."""
    return ("; " if name == "cookie" else ", ").join(values)


# ---------------------------------------------------------------------------------------------
# RFC 8941 structured fields: the subset draft-ietf-webtrans-http3-15 §3.3 uses. The client
# offers WT-Available-Protocols (a List of Strings), the server answers WT-Protocol (a String).

_SF_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_SF_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")
_SF_NUMBER = re.compile(r"-?(?:[0-9]{1,12}\.[0-9]{1,3}|[0-9]{1,15})")
_SF_BYTES = re.compile(r":[A-Za-z0-9+/=]*:")


def _sf_string(text: str, what: str) -> str:
    if any(not 0x20 <= ord(ch) <= 0x7E for ch in text):
        raise StructuredFieldError(f"{what} {text!r} has characters outside printable ASCII, which a "
                                   "structured-field string cannot carry (RFC 8941 §3.3.3)")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode_available_protocols(protocols: Sequence[str]) -> str:
    """WT-Available-Protocols value: the offered subprotocols as an RFC 8941 List of Strings, in order."""
    if isinstance(protocols, str):
        raise StructuredFieldError("WT-Available-Protocols takes a sequence of protocol names, not one str")
    return ", ".join(_sf_string(p, "protocol") for p in protocols)


def encode_protocol(protocol: str) -> str:
    """WT-Protocol value: the chosen subprotocol as an RFC 8941 String."""
    return _sf_string(protocol, "protocol")


class _SFParser:
    """Cursor over one structured-field value (RFC 8941 §4.2); every failure names its offset."""

    def __init__(self, text: str, field: str) -> None:
        self.text = text
        self.pos = 0
        self.field = field

    def fail(self, what: str) -> StructuredFieldError:
        return StructuredFieldError(f"{self.field}: {what} at offset {self.pos} (RFC 8941)", field=self.field)

    def skip(self, chars: str) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def string(self) -> str:
        if self.peek() != '"':
            raise self.fail(f"expected a string, found {self.found()}")
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            self.pos += 1
            if ch == "\\":
                nxt = self.peek()
                if nxt not in ('"', "\\"):
                    raise self.fail("invalid escape in string")
                out.append(nxt)
                self.pos += 1
            elif ch == '"':
                return "".join(out)
            elif not 0x20 <= ord(ch) <= 0x7E:
                self.pos -= 1
                raise self.fail(f"character {ord(ch):#04x} not allowed in a string")
            else:
                out.append(ch)
        raise self.fail("unterminated string")

    def found(self) -> str:
        ch = self.peek()
        if not ch:
            return "the end of the value"
        kinds = {"(": "an inner list", "?": "a boolean", ":": "a byte sequence", "@": "a date", "%": "a display string"}
        if ch in kinds:
            return kinds[ch]
        if ch == "-" or ch.isdigit():
            return "a number"
        if ch.isalpha() or ch == "*":
            return "a token"
        return repr(ch)

    def _bare_item(self) -> None:
        """Skip one parameter value of any RFC 8941 bare-item type, checking its syntax."""
        ch = self.peek()
        if ch == '"':
            self.string()
            return
        if ch == "?":
            if self.text[self.pos + 1:self.pos + 2] not in ("0", "1"):
                raise self.fail("invalid boolean")
            self.pos += 2
            return
        for pattern in (_SF_NUMBER, _SF_TOKEN, _SF_BYTES):
            match = pattern.match(self.text, self.pos)
            if match:
                self.pos = match.end()
                return
        raise self.fail(f"invalid parameter value: {self.found()}")

    def parameters(self) -> None:
        """Parse and drop parameters: RFC 8941 §3.1.2 lets any item carry them; none is defined here."""
        while self.peek() == ";":
            self.pos += 1
            self.skip(" ")
            key = _SF_KEY.match(self.text, self.pos)
            if key is None:
                raise self.fail("invalid parameter key")
            self.pos = key.end()
            if self.peek() == "=":
                self.pos += 1
                self._bare_item()


def _strip_sp(text: str) -> str:
    # RFC 8941 §4.2: leading and trailing SP are discarded before and after parsing.
    return text.strip(" ")


def parse_available_protocols(value: str) -> list[str]:
    """The protocols of a WT-Available-Protocols value, in order; StructuredFieldError if it is not a List of Strings.

    An empty value is an empty list. Member parameters are parsed and ignored (RFC 8941 §3.1.2);
    tokens, numbers, inner lists and other item types are rejected.
    """
    p = _SFParser(_strip_sp(value), "wt-available-protocols")
    out: list[str] = []
    while not p.at_end():
        out.append(p.string())
        p.parameters()
        p.skip(" \t")
        if p.at_end():
            break
        if p.peek() != ",":
            raise p.fail(f"expected ',' between list members, found {p.found()}")
        p.pos += 1
        p.skip(" \t")
        if p.at_end():
            raise p.fail("trailing ',' after the last list member")
    return out


def parse_protocol(value: str) -> str:
    """The protocol of a WT-Protocol value; StructuredFieldError unless it is one String (parameters ignored)."""
    p = _SFParser(_strip_sp(value), "wt-protocol")
    protocol = p.string()
    p.parameters()
    if not p.at_end():
        raise p.fail(f"unexpected {p.found()} after the string")
    return protocol
