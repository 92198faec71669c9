"""HTTP/3 field sections: size limit, RFC 9114 message rules, linear decoding, subprotocol fields."""

from __future__ import annotations

from collections.abc import Iterator

import pylsqpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pywebtransport import constants as c
from pywebtransport._protocol import fields
from pywebtransport._protocol.headers import (
    DEFAULT_MAX_FIELD_SECTION_SIZE,
    FieldSectionTooLargeError,
    HeaderValidationError,
    StructuredFieldError,
    build_connect_request,
    build_response,
    decode_header_list,
    decode_request,
    decode_response,
    encode_available_protocols,
    encode_protocol,
    field_section_size,
    parse_available_protocols,
    parse_connect_request,
    parse_protocol,
    parse_status,
)

CONNECT = [(b":method", b"CONNECT"), (b":protocol", b"webtransport"), (b":scheme", b"https"),
           (b":authority", b"localhost:4433"), (b":path", b"/wt")]
OK_RESPONSE = [(b":status", b"200")]


class CountingList(list[tuple[bytes, bytes]]):
    """A header list that counts how many field lines the code under test iterates over."""

    steps = 0

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        for item in super().__iter__():
            self.steps += 1
            yield item


from .harness import qpack_block  # noqa: E402 - after the module's own helpers' imports


def qpack_roundtrip(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Encode with pylsqpack's encoder and decode with its decoder, as the engine does."""
    _, block = pylsqpack.Encoder().encode(0, headers)
    _, decoded = pylsqpack.Decoder(0, 0).feed_header(0, block)
    return list(decoded)


def rejected(headers: list[tuple[bytes, bytes]], *, response: bool = False) -> HeaderValidationError:
    decode = decode_response if response else decode_request
    with pytest.raises(HeaderValidationError) as info:
        decode(headers)
    exc = info.value
    assert exc.error_code == c.H3_MESSAGE_ERROR and exc.stream_error
    return exc


# ----------------------------------------------------------------------------- size limit


def test_field_section_size_is_name_plus_value_plus_32_per_line() -> None:
    assert field_section_size([]) == 0
    assert field_section_size([(b":status", b"200")]) == 7 + 3 + 32
    assert field_section_size(CONNECT) == sum(len(n) + len(v) + 32 for n, v in CONNECT)


def test_section_exactly_at_the_limit_passes_and_one_byte_more_fails() -> None:
    size = field_section_size(CONNECT)
    assert decode_request(CONNECT, max_field_section_size=size)[":path"] == "/wt"
    with pytest.raises(FieldSectionTooLargeError) as info:
        decode_request(CONNECT, max_field_section_size=size - 1)
    exc = info.value
    assert (exc.status, exc.error_code, exc.stream_error) == (431, c.H3_MESSAGE_ERROR, True)
    assert (exc.size, exc.limit) == (size, size - 1)
    assert "RFC 9114 §4.2.2" in str(exc)


def test_default_limit_is_the_advertised_64_kib() -> None:
    assert DEFAULT_MAX_FIELD_SECTION_SIZE == 65536
    big = [*CONNECT, (b"x-big", b"a" * 65536)]
    with pytest.raises(FieldSectionTooLargeError):
        decode_request(big)
    assert decode_request(big, max_field_section_size=None)["x-big"] == "a" * 65536


def test_65000_static_references_in_one_headers_block_are_refused_before_any_join() -> None:
    # The attack of issue #10: a 64 KiB block of one-byte static references (0xC2 is static
    # entry 2, "age: 0") decodes into 65,000 field lines.
    block = b"\x00\x00" + b"\xc2" * 65000
    _, decoded = pylsqpack.Decoder(0, 0).feed_header(0, block)
    assert len(decoded) == 65000 and decoded[0] == (b"age", b"0")
    headers = CountingList(decoded)
    with pytest.raises(FieldSectionTooLargeError) as info:
        decode_request(headers)
    # The size check stops at the first line over 64 KiB: 1821 lines of 36 bytes, not 65,000.
    limit_lines = DEFAULT_MAX_FIELD_SECTION_SIZE // 36 + 1
    assert headers.steps == limit_lines
    assert info.value.status == 431


def test_each_decoding_pass_is_linear_in_the_number_of_field_lines() -> None:
    def steps(n: int) -> int:
        headers = CountingList([*CONNECT, *[(b"x-rep", b"v")] * n])
        decode_request(headers, max_field_section_size=10**9)
        return headers.steps

    base = steps(0)
    assert steps(10_000) - base == 3 * 10_000  # size, validation and decoding pass: one step per line each
    assert steps(20_000) - base == 3 * 20_000


def test_a_repeated_name_is_joined_once_not_once_per_line(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, int]] = []
    join = fields.join_field_values

    def counting_join(name: str, values: list[str]) -> str:
        calls.append((name, len(values)))
        return join(name, values)

    monkeypatch.setattr(fields, "join_field_values", counting_join)
    # Built by hand: pylsqpack 0.3 (the newest on Python 3.10) cannot encode this many lines.
    block = qpack_block([*CONNECT, *[(b"x-rep", b"v")] * 20_000, (b"x-one", b"1")])
    _, headers = pylsqpack.Decoder(0, 0).feed_header(0, block)
    decoded = decode_request(list(headers), max_field_section_size=None)
    assert calls == [("x-rep", 20_000)]
    assert decoded["x-rep"] == ", ".join(["v"] * 20_000)
    assert decoded["x-one"] == "1"


def test_repeated_cookie_lines_are_joined_with_semicolons() -> None:
    decoded = decode_request([*CONNECT, (b"cookie", b"a=1"), (b"x-l", b"p"), (b"cookie", b"b=2"), (b"x-l", b"q")])
    assert decoded["cookie"] == "a=1; b=2"  # RFC 9114 §4.2.1
    assert decoded["x-l"] == "p, q"


# ----------------------------------------------------------------------------- RFC 9114 §4.2 / §10.3


def test_a_real_qpack_encoded_connect_request_decodes_and_parses() -> None:
    headers = qpack_roundtrip([*CONNECT, (b"origin", b"https://app.test"), (b"user-agent", b"ua/1 (x)")])
    request = parse_connect_request(decode_request(headers))
    assert (request.path, request.authority, request.origin) == ("/wt", "localhost:4433", "https://app.test")
    assert request.headers["user-agent"] == "ua/1 (x)"


@pytest.mark.parametrize("name", [b"X-Token", b"Origin", b"CONTENT-TYPE"])
def test_upper_case_field_name_is_malformed(name: bytes) -> None:
    exc = rejected([*CONNECT, (name, b"1")])
    assert "not lower-case" in str(exc) and "§4.2" in str(exc) and exc.field == name.decode()
    assert decode_request([*CONNECT, (name.lower(), b"1")])[name.lower().decode()] == "1"


@pytest.mark.parametrize("name", [b"x foo", b"x\rfoo", b"x\nfoo", b"x\x00", b"x:y", b'x"y', b"\xe9t\xe9", b""])
def test_field_name_that_is_not_a_token_is_malformed(name: bytes) -> None:
    exc = rejected([*CONNECT, (name, b"1")])
    assert "§10.3" in str(exc)


@pytest.mark.parametrize("name", [b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding",
                                  b"upgrade"])
def test_connection_specific_field_is_malformed(name: bytes) -> None:
    exc = rejected([*CONNECT, (name, b"close")])
    assert "connection-specific" in str(exc) and exc.field == name.decode()


def test_te_is_allowed_only_as_trailers() -> None:
    assert decode_request([*CONNECT, (b"te", b"trailers")])["te"] == "trailers"
    exc = rejected([*CONNECT, (b"te", b"gzip")])
    assert exc.field == "te" and "trailers" in str(exc)


@pytest.mark.parametrize(("value", "char"), [(b"https://a.test\r\nx-injected: 1", "CR"), (b"a\nb", "LF"),
                                             (b"a\x00b", "NUL")])
def test_cr_lf_nul_in_a_value_is_malformed_and_named(value: bytes, char: str) -> None:
    exc = rejected([*CONNECT, (b"origin", value)])
    assert exc.field == "origin" and char in str(exc) and "§10.3" in str(exc)
    assert "x-injected" not in str(exc)  # the message never echoes the value


@pytest.mark.parametrize("value", [b" a", b"a ", b"\ta", b"a\t", b" "])
def test_leading_or_trailing_whitespace_in_a_value_is_malformed(value: bytes) -> None:
    exc = rejected([*CONNECT, (b"x-v", value)])
    assert "whitespace" in str(exc) and exc.field == "x-v"


@pytest.mark.parametrize("value", [b"a b", b"a\tb", b"", b"\xe9t\xe9", b"\x01"])
def test_inner_whitespace_empty_and_obs_text_values_pass(value: bytes) -> None:
    assert decode_request([*CONNECT, (b"x-v", value)])["x-v"] == value.decode("latin-1")


# ----------------------------------------------------------------------------- RFC 9114 §4.3 pseudo-headers


def test_undefined_pseudo_header_is_malformed() -> None:
    exc = rejected([*CONNECT, (b":foo", b"1")])
    assert "undefined pseudo-header ':foo'" in str(exc)


def test_status_in_a_request_is_malformed() -> None:
    exc = rejected([*CONNECT, (b":status", b"200")])
    assert "':status' is not allowed in a request" in str(exc)


def test_request_pseudo_header_in_a_response_is_malformed() -> None:
    exc = rejected([*OK_RESPONSE, (b":path", b"/")], response=True)
    assert "':path' is not allowed in a response" in str(exc)


def test_pseudo_header_after_a_regular_field_is_malformed() -> None:
    exc = rejected([*CONNECT[:4], (b"origin", b"https://a.test"), CONNECT[4]])
    assert "after a regular field" in str(exc) and exc.field == ":path"
    assert decode_request([*CONNECT, (b"origin", b"https://a.test")])


def test_repeated_pseudo_header_is_malformed() -> None:
    exc = rejected([*CONNECT, (b":path", b"/other")])
    assert "repeated" in str(exc) and exc.field == ":path"


@pytest.mark.parametrize("value", [b"", b"/a b", b"/a\tb", b"/\xe9"])
def test_pseudo_header_value_must_be_visible_ascii(value: bytes) -> None:
    exc = rejected([*CONNECT[:4], (b":path", value)])
    assert exc.field == ":path"


def test_role_is_inferred_so_mixing_request_and_response_pseudo_headers_fails_either_way() -> None:
    for headers in ([(b":status", b"200"), (b":method", b"GET")], [(b":method", b"GET"), (b":status", b"200")]):
        with pytest.raises(HeaderValidationError, match="not allowed in a"):
            decode_header_list(headers)


def test_request_without_method_is_malformed() -> None:
    exc = rejected(CONNECT[1:])
    assert exc.field == ":method" and exc.status == 400


def test_protocol_on_a_non_connect_request_is_malformed() -> None:
    exc = rejected([(b":method", b"GET"), *CONNECT[1:]])
    assert exc.field == ":protocol" and "RFC 9220" in str(exc)


@pytest.mark.parametrize("missing", [b":scheme", b":path"])
def test_extended_connect_without_scheme_or_path_is_malformed(missing: bytes) -> None:
    exc = rejected([h for h in CONNECT if h[0] != missing])
    assert exc.field == missing.decode()


def test_plain_connect_must_not_carry_scheme_or_path_and_needs_authority() -> None:
    plain = [(b":method", b"CONNECT"), (b":authority", b"a.test:443")]
    assert decode_request(plain)[":authority"] == "a.test:443"
    assert rejected([*plain, (b":path", b"/")]).field == ":path"
    assert rejected(plain[:1]).field == ":authority"
    with pytest.raises(HeaderValidationError) as info:
        parse_connect_request(decode_request(plain))
    assert info.value.status == 501


def test_host_must_match_authority() -> None:
    assert decode_request([*CONNECT, (b"host", b"localhost:4433")])["host"] == "localhost:4433"
    assert rejected([*CONNECT, (b"host", b"evil.test")]).field == "host"
    without_authority = [h for h in CONNECT if h[0] != b":authority"]
    assert decode_request([*without_authority, (b"host", b"h.test")])["host"] == "h.test"
    assert rejected(without_authority).field == ":authority"


@pytest.mark.parametrize("status", [b"20", b"2000", b"abc", b"099", b"600", b"+20"])
def test_response_with_invalid_status_is_malformed(status: bytes) -> None:
    exc = rejected([(b":status", status)], response=True)
    assert exc.field == ":status"


def test_response_without_status_is_malformed() -> None:
    assert rejected([(b"server", b"x")], response=True).field == ":status"
    assert rejected([], response=True).field == ":status"


def test_valid_response_decodes() -> None:
    headers = qpack_roundtrip([(b":status", b"200"), (b"sec-webtransport-http3-draft", b"draft02")])
    decoded = decode_response(headers)
    assert parse_status(decoded) == 200 and decoded["sec-webtransport-http3-draft"] == "draft02"


# ----------------------------------------------------------------------------- building


def test_built_request_passes_our_own_validation_and_round_trips() -> None:
    built = build_connect_request(authority="[::1]:4433", path="/p?q=1", origin="https://o.test",
                                  extra={"X-Token": "abc", "Origin": "ignored", ":path": "/ignored"},
                                  available_protocols=["moqt-16", "v1"])
    request = parse_connect_request(decode_request(qpack_roundtrip(built)))
    assert (request.path, request.authority, request.origin) == ("/p?q=1", "[::1]:4433", "https://o.test")
    assert request.headers["x-token"] == "abc"
    assert request.available_protocols == ("moqt-16", "v1")


@pytest.mark.parametrize(("extra", "field"), [({"X-Bad": "a\r\nx-evil: 1"}, "x-bad"), ({"Connection": "close"},
                                              "connection"), ({"x bad": "1"}, "x bad"), ({"x-v": " padded"}, "x-v")])
def test_building_a_request_with_an_unsendable_header_raises(extra: dict[str, str], field: str) -> None:
    with pytest.raises(HeaderValidationError) as info:
        build_connect_request(authority="a.test", path="/", origin=None, extra=extra)
    assert info.value.field == field


def test_building_with_non_latin1_or_spaced_path_raises() -> None:
    with pytest.raises(HeaderValidationError, match="latin-1"):
        build_connect_request(authority="a.test", path="/\u20ac", origin=None)
    with pytest.raises(HeaderValidationError):
        build_connect_request(authority="a.test", path="/a b", origin=None)


def test_latin1_header_value_round_trips_byte_for_byte() -> None:
    built = build_connect_request(authority="a.test", path="/", origin=None, extra={"x-name": "Jos\xe9"})
    assert (b"x-name", b"Jos\xe9") in built
    rebuilt = build_connect_request(authority="a.test", path="/", origin=None,
                                    extra={k: v for k, v in decode_request(built).items() if not k.startswith(":")})
    assert (b"x-name", b"Jos\xe9") in rebuilt


def test_build_response_carries_protocol_and_validates() -> None:
    built = build_response(200, draft02=True, protocol="moqt-16", extra={"X-Srv": "1", "wt-protocol": '"other"'})
    decoded = decode_response(built)
    assert parse_protocol(decoded["wt-protocol"]) == "moqt-16"
    assert decoded["x-srv"] == "1" and decoded["sec-webtransport-http3-draft"] == "draft02"
    with pytest.raises(HeaderValidationError):
        build_response(200, draft02=False, extra={"x": "a\nb"})
    with pytest.raises(HeaderValidationError):
        build_response(600, draft02=False)


def test_unparsable_available_protocols_is_ignored_not_fatal() -> None:
    request = parse_connect_request(decode_request([*CONNECT, (b"wt-available-protocols", b"moqt-16, 1")]))
    assert request.available_protocols == ()


# ----------------------------------------------------------------------------- structured fields


def test_available_protocols_encode_as_a_list_of_strings() -> None:
    assert encode_available_protocols(["a", 'q"x', "b\\c"]) == '"a", "q\\"x", "b\\\\c"'
    assert encode_available_protocols([]) == ""
    assert encode_protocol("moqt-16") == '"moqt-16"'


@pytest.mark.parametrize("bad", ["caf\xe9", "a\nb", "\x7f"])
def test_encoding_a_non_printable_ascii_protocol_raises(bad: str) -> None:
    with pytest.raises(StructuredFieldError, match="printable ASCII"):
        encode_available_protocols(["ok", bad])
    with pytest.raises(StructuredFieldError):
        encode_protocol(bad)


def test_encoding_a_bare_str_as_the_list_raises() -> None:
    with pytest.raises(StructuredFieldError, match="sequence"):
        encode_available_protocols("moqt-16")


@pytest.mark.parametrize(("value", "expected"), [
    ('"a"', ["a"]),
    ('"a","b"', ["a", "b"]),
    ('  "a" ,\t"b"  ', ["a", "b"]),
    ('"a";q=1;v="x";t=tok;b=?1;d=1.5;n=-3;y=:AQ==:, "b";flag', ["a", "b"]),
    ('"q\\"x", "b\\\\c"', ['q"x', "b\\c"]),
    ('""', [""]),
    ("", []),
])
def test_available_protocols_parse(value: str, expected: list[str]) -> None:
    assert parse_available_protocols(value) == expected


@pytest.mark.parametrize(("value", "why"), [
    ("moqt-16", "token"),
    ('"a", 1', "number"),
    ('("a" "b")', "inner list"),
    ('"a", ?1', "boolean"),
    ('"a",', "trailing"),
    ('"a" "b"', "expected ','"),
    ('"a",,"b"', "expected a string"),
    (',"a"', "expected a string"),
    ('"a', "unterminated"),
    ('"a\\x"', "escape"),
    ('"caf\xe9"', "not allowed"),
    ('"a";Q=1', "parameter key"),
    ('"a";q=', "parameter value"),
])
def test_available_protocols_that_are_not_a_list_of_strings_are_rejected(value: str, why: str) -> None:
    with pytest.raises(StructuredFieldError, match=why) as info:
        parse_available_protocols(value)
    assert info.value.field == "wt-available-protocols" and "RFC 8941" in str(info.value)


@pytest.mark.parametrize("value", ['"a", "b"', "a", "", '"a" x', "1"])
def test_protocol_that_is_not_one_string_is_rejected(value: str) -> None:
    with pytest.raises(StructuredFieldError):
        parse_protocol(value)


def test_protocol_parses_with_parameters_ignored() -> None:
    assert parse_protocol('"moqt-16"') == "moqt-16"
    assert parse_protocol(' "v2";x=1 ') == "v2"


printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)


@settings(max_examples=200, deadline=None)
@given(st.lists(printable, max_size=8))
def test_available_protocols_round_trip(protocols: list[str]) -> None:
    assert parse_available_protocols(encode_available_protocols(protocols)) == protocols


@settings(max_examples=200, deadline=None)
@given(printable)
def test_protocol_round_trips(protocol: str) -> None:
    assert parse_protocol(encode_protocol(protocol)) == protocol


# ----------------------------------------------------------------------------- properties of decoding

names = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=6).map(str.encode)
values = st.binary(max_size=10).filter(lambda v: not set(v) & {0, 10, 13} and v[:1] not in (b" ", b"\t")
                                       and v[-1:] not in (b" ", b"\t"))
# ``host`` is left out: it must equal :authority (RFC 9114 §4.3.1), which its own test covers.
field_lines = st.lists(st.tuples(names, values), max_size=30).filter(
    lambda fl: all(n not in fields.CONNECTION_SPECIFIC_FIELDS and n not in (b"te", b"host") for n, _ in fl))


@settings(max_examples=200, deadline=None)
@given(field_lines)
def test_valid_sections_decode_to_their_values_joined_in_order(lines: list[tuple[bytes, bytes]]) -> None:
    headers = [*CONNECT, *lines]
    decoded = decode_request(qpack_roundtrip(headers), max_field_section_size=None)
    expected: dict[str, list[str]] = {}
    for name, value in headers:
        expected.setdefault(name.decode(), []).append(value.decode("latin-1"))
    assert decoded == {n: ("; " if n == "cookie" else ", ").join(v) for n, v in expected.items()}
    assert field_section_size(headers) == sum(len(n) + len(v) + 32 for n, v in headers)


@settings(max_examples=200, deadline=None)
@given(field_lines.filter(bool), st.data())
def test_any_cr_lf_nul_injected_into_any_value_is_rejected_naming_that_field(
        lines: list[tuple[bytes, bytes]], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(lines) - 1))
    bad = data.draw(st.sampled_from([b"\r", b"\n", b"\x00"]))
    name, value = lines[index]
    at = data.draw(st.integers(0, len(value)))
    lines = [*lines[:index], (name, value[:at] + bad + value[at:]), *lines[index + 1:]]
    with pytest.raises(HeaderValidationError) as info:
        decode_request([*CONNECT, *lines], max_field_section_size=None)
    # the first bad line is the one we poisoned (all others are valid)
    assert info.value.field == name.decode()
