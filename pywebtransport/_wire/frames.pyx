# cython: language_level=3, boundscheck=False, wraparound=False
"""HTTP/3 frames (RFC 9114 §7) and stream preambles (RFC 9114 §6.2, WebTransport draft §4).

Compiled twin of ``_frames_py.py``: same names, results and exceptions; ``frames.pyi`` is
the contract. Every index below is checked against the buffer length by hand (hence the
directives above): varints through ``read_varint``, payload slices against ``end - pos``.
"""

from cpython.buffer cimport PyBuffer_Release
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport uint8_t, uint64_t
from libc.string cimport memcpy

from pywebtransport._wire._args cimport as_size, get_bytes
from pywebtransport._wire._varint cimport as_varint, read_varint, write_varint

from pywebtransport import constants as c
from pywebtransport.exceptions import FrameError, SettingsError

__all__ = [
    "KNOWN_FRAME_TYPES",
    "FrameParser",
    "decode_settings",
    "encode_bidi_stream_header",
    "encode_frame",
    "encode_frame_header",
    "encode_settings",
    "encode_uni_stream_header",
    "read_bidi_stream_header",
    "read_uni_stream_header",
]

#: Frame types the parser reports; every other type is skipped unseen (RFC 9114 §7.2, §9).
KNOWN_FRAME_TYPES = frozenset(
    {
        c.FRAME_DATA,
        c.FRAME_HEADERS,
        c.FRAME_CANCEL_PUSH,
        c.FRAME_SETTINGS,
        c.FRAME_PUSH_PROMISE,
        c.FRAME_GOAWAY,
        c.FRAME_MAX_PUSH_ID,
    }
    | c.H3_HTTP2_ONLY_FRAMES
)

cdef object _VARINT_MAX = c.VARINT_MAX
cdef object _DEFAULT_MAX_FRAME_SIZE = c.DEFAULT_MAX_FRAME_SIZE
cdef object _H3_FRAME_ERROR = c.H3_FRAME_ERROR
cdef object _H3_EXCESSIVE_LOAD = c.H3_EXCESSIVE_LOAD

cdef enum:
    # Bit t set for each known type t other than DATA: 0x01-0x09 and 0x0d (RFC 9114 §7.2).
    _BUFFERED_TYPE_BITS = 0x23FE
    # CANCEL_PUSH (0x03), GOAWAY (0x07), MAX_PUSH_ID (0x0d): one varint each (RFC 9114 §7.2).
    _VARINT_TYPE_BITS = 0x2088
    _VARINT_MAX_LEN = 8
    # A frame header is two varints of at most 8 bytes each.
    _MAX_HEADER = 16
    _STREAM_TYPE_WEBTRANSPORT = 0x54
    _BIDI_SIGNAL = 0x41  # WebTransport bidirectional stream signal (draft §4.2)

cdef enum _State:
    _HEADER
    _DATA
    _BUFFERING
    _SKIPPING
    _FAILED

# Sanity-check that the bitmask matches the published set.
assert KNOWN_FRAME_TYPES - {0} == {t for t in range(14) if (_BUFFERED_TYPE_BITS >> t) & 1}


cdef inline bint _is_buffered_type(uint64_t frame_type) noexcept nogil:
    return frame_type <= 13 and (_BUFFERED_TYPE_BITS >> frame_type) & 1


cdef inline bint _is_reserved_setting(uint64_t key) noexcept nogil:
    # HTTP/2 setting identifiers with no HTTP/3 meaning (RFC 9114 §7.2.4.1, §11.2.2).
    return key <= 5 and key != 1


cdef inline bytes _piece(object source, const uint8_t* buf, Py_ssize_t pos, Py_ssize_t size,
                         Py_ssize_t end):
    """``buf[pos:pos+size]`` as bytes, reusing ``source`` when it is that exact bytes object."""
    if pos == 0 and size == end and type(source) is bytes:
        return <bytes>source
    return PyBytes_FromStringAndSize(<const char*>buf + pos, size)


def encode_frame_header(frame_type, length):
    """Just type varint + length varint: lets DATA be sent without copying the payload."""
    cdef uint8_t out[_MAX_HEADER]
    cdef Py_ssize_t n = write_varint(out, as_varint(frame_type, "frame_type"))
    n += write_varint(out + n, as_varint(length, "length"))
    return PyBytes_FromStringAndSize(<const char*>out, n)


def encode_frame(frame_type, payload):
    """type varint + length varint + payload."""
    cdef Py_buffer view
    cdef uint8_t header[_MAX_HEADER]
    cdef Py_ssize_t n
    cdef bytes result
    cdef char* dest
    cdef uint64_t kind = as_varint(frame_type, "frame_type")
    get_bytes(payload, &view, "payload")
    try:
        n = write_varint(header, kind)
        n += write_varint(header + n, <uint64_t>view.len)
        result = PyBytes_FromStringAndSize(NULL, n + view.len)
        dest = PyBytes_AS_STRING(result)
        memcpy(dest, header, n)
        memcpy(dest + n, view.buf, view.len)
        return result
    finally:
        PyBuffer_Release(&view)


def encode_settings(settings):
    """The SETTINGS frame payload (id varint, value varint)* in insertion order."""
    cdef uint8_t* out = <uint8_t*>PyMem_Malloc(len(settings) * _MAX_HEADER + 1)
    cdef Py_ssize_t n = 0
    if out == NULL:
        raise MemoryError()
    try:
        for key, value in settings.items():
            n += write_varint(out + n, as_varint(key, "setting identifier"))
            n += write_varint(out + n, as_varint(value, "setting value"))
        return PyBytes_FromStringAndSize(<const char*>out, n)
    finally:
        PyMem_Free(out)


def decode_settings(payload):
    """Parse a SETTINGS payload (RFC 9114 §7.2.4).

    SettingsError (H3_SETTINGS_ERROR) for a duplicate identifier or a reserved HTTP/2 one
    (§7.2.4.1); FrameError (H3_FRAME_ERROR) when the payload is truncated mid-varint.
    """
    cdef Py_buffer view
    cdef const uint8_t* buf
    cdef Py_ssize_t pos = 0, end
    cdef uint64_t key, value
    cdef dict settings = {}
    get_bytes(payload, &view, "payload")
    try:
        buf = <const uint8_t*>view.buf
        end = view.len
        while pos < end:
            pos = read_varint(buf, end, pos, &key)
            if pos >= 0:
                pos = read_varint(buf, end, pos, &value)
            if pos < 0:
                raise FrameError("SETTINGS payload ends inside a varint", error_code=_H3_FRAME_ERROR)
            if _is_reserved_setting(key):
                raise SettingsError(f"reserved HTTP/2 setting identifier {key:#x}")
            py_key = key
            if py_key in settings:
                raise SettingsError(f"duplicate setting identifier {key:#x}")
            settings[py_key] = value
        return settings
    finally:
        PyBuffer_Release(&view)


cdef class FrameParser:
    """Incremental frame parser for one stream."""

    cdef uint64_t _max_frame_size
    cdef _State _state
    cdef uint64_t _type
    cdef uint64_t _remaining      # payload bytes of the current frame not seen yet
    cdef uint8_t _head[_MAX_HEADER]  # a frame header cut by the end of a feed
    cdef Py_ssize_t _head_len
    cdef bytearray _body          # a buffered frame's payload so far
    cdef str _error
    cdef object _error_code

    def __init__(self, *, max_frame_size=_DEFAULT_MAX_FRAME_SIZE):
        # No frame can be longer than the largest varint, so this clamp changes nothing.
        self._max_frame_size = as_size(max_frame_size, "max_frame_size", _VARINT_MAX)
        self._state = _HEADER
        self._type = 0
        self._remaining = 0
        self._head_len = 0
        self._body = bytearray()
        self._error = ""
        self._error_code = _H3_EXCESSIVE_LOAD

    @property
    def buffered(self):
        """Bytes held waiting for a frame to complete (bounded by max_frame_size + 16)."""
        return self._head_len + PyByteArray_GET_SIZE(self._body)

    @property
    def in_frame(self):
        """True when the parser stopped mid-frame (for REQUEST_INCOMPLETE / FRAME_ERROR at FIN)."""
        return self._state != _HEADER or self._head_len != 0

    def feed(self, data):
        """Consume ``data``; return the ``(frame_type, payload)`` pairs completed by it."""
        cdef Py_buffer view
        if self._state == _FAILED:
            raise FrameError(f"frame parser already failed: {self._error}", error_code=self._error_code)
        get_bytes(data, &view, "data")
        try:
            return self._feed(<const uint8_t*>view.buf, view.len, data)
        finally:
            PyBuffer_Release(&view)

    cdef list _feed(self, const uint8_t* buf, Py_ssize_t end, object source):
        cdef list out = []
        cdef Py_ssize_t pos = 0, after, start, take, held
        cdef uint64_t frame_type = 0, length = 0
        cdef _State state = self._state
        cdef uint64_t remaining = self._remaining

        while pos < end:
            if state == _HEADER:
                if self._head_len:
                    # Finish a header cut by the previous feed: it needs at most 16 bytes.
                    held = self._head_len
                    take = min(_MAX_HEADER - held, end - pos)
                    memcpy(self._head + held, buf + pos, take)
                    after = read_varint(self._head, held + take, 0, &frame_type)
                    if after >= 0:
                        after = read_varint(self._head, held + take, after, &length)
                    if after < 0:
                        self._head_len = held + take
                        pos = end
                        break
                    pos += after - held
                    self._head_len = 0
                else:
                    start = pos
                    after = read_varint(buf, end, pos, &frame_type)
                    if after >= 0:
                        after = read_varint(buf, end, after, &length)
                    if after < 0:
                        # Fewer than 16 bytes are left, or the header would be complete.
                        memcpy(self._head, buf + start, end - start)
                        self._head_len = end - start
                        pos = end
                        break
                    pos = after

                if frame_type == 0:
                    if length == 0:
                        continue
                    if length <= <uint64_t>(end - pos):
                        out.append((0, _piece(source, buf, pos, <Py_ssize_t>length, end)))
                        pos += <Py_ssize_t>length
                        continue
                    if pos < end:
                        out.append((0, _piece(source, buf, pos, end - pos, end)))
                    state = _DATA
                    remaining = length - <uint64_t>(end - pos)
                    pos = end
                elif _is_buffered_type(frame_type):
                    if length > self._max_frame_size:
                        self._fail(frame_type, length)
                    if length > _VARINT_MAX_LEN and (_VARINT_TYPE_BITS >> frame_type) & 1:
                        self._fail_varint(frame_type, length)
                    if length <= <uint64_t>(end - pos):
                        out.append((frame_type, PyBytes_FromStringAndSize(<const char*>buf + pos,
                                                                          <Py_ssize_t>length)))
                        pos += <Py_ssize_t>length
                        continue
                    self._type = frame_type
                    self._append(buf + pos, end - pos)
                    state = _BUFFERING
                    remaining = length - <uint64_t>(end - pos)
                    pos = end
                elif frame_type == 0x41:
                    self._fail_signal()
                else:
                    # Unknown and reserved types are skipped (RFC 9114 §7.2.8, §9).
                    if length <= <uint64_t>(end - pos):
                        pos += <Py_ssize_t>length
                        continue
                    state = _SKIPPING
                    remaining = length - <uint64_t>(end - pos)
                    pos = end
            else:
                # Only the first iteration of a feed can land here: the frame continues.
                take = end - pos
                if remaining < <uint64_t>take:
                    take = <Py_ssize_t>remaining
                if state == _DATA:
                    out.append((0, _piece(source, buf, pos, take, end)))
                elif state == _BUFFERING:
                    self._append(buf + pos, take)
                    if <uint64_t>take == remaining:
                        out.append((self._type, PyBytes_FromStringAndSize(
                            PyByteArray_AS_STRING(self._body), PyByteArray_GET_SIZE(self._body))))
                        self._body = bytearray()
                pos += take
                remaining -= <uint64_t>take
                if remaining == 0:
                    state = _HEADER

        self._state = state
        self._remaining = remaining
        return out

    cdef int _append(self, const uint8_t* src, Py_ssize_t size) except -1:
        cdef Py_ssize_t old = PyByteArray_GET_SIZE(self._body)
        PyByteArray_Resize(self._body, old + size)
        memcpy(PyByteArray_AS_STRING(self._body) + old, src, size)
        return 0

    cdef int _fail(self, uint64_t frame_type, uint64_t length) except -1:
        return self._fail_with(f"frame {frame_type:#x} declares {length} bytes, above the limit of "
                               f"{self._max_frame_size}", _H3_EXCESSIVE_LOAD)

    cdef int _fail_varint(self, uint64_t frame_type, uint64_t length) except -1:
        # RFC 9114 §7.1: bytes after a frame's fields are H3_FRAME_ERROR; refused at the header
        # so that no peer can make us hold a payload that cannot be valid.
        return self._fail_with(f"frame {frame_type:#x} declares {length} bytes; its payload is one varint "
                               f"(at most {_VARINT_MAX_LEN})", _H3_FRAME_ERROR)

    cdef int _fail_signal(self) except -1:
        # Draft-15 §4.2: 0x41 is a stream signal, valid only as a bidi stream's first bytes.
        return self._fail_with("WEBTRANSPORT_STREAM (0x41) appears as a frame; it may only open a bidirectional "
                               "stream", _H3_FRAME_ERROR)

    cdef int _fail_with(self, str message, object code) except -1:
        """Fail for good with ``message``: every later feed raises the same FrameError."""
        self._error = message
        self._error_code = code
        self._state = _FAILED
        self._head_len = 0
        self._body = bytearray()
        raise FrameError(message, error_code=code)


def encode_uni_stream_header(stream_type, session_id=None):
    """Stream type varint, plus the session id varint for WebTransport (0x54) streams.

    ValueError when a WebTransport stream has no session id or another type has one.
    """
    cdef uint8_t out[_MAX_HEADER]
    cdef uint64_t kind = as_varint(stream_type, "stream_type")
    cdef Py_ssize_t n = write_varint(out, kind)
    if kind == _STREAM_TYPE_WEBTRANSPORT:
        if session_id is None:
            raise ValueError("a WebTransport unidirectional stream needs a session id")
        n += write_varint(out + n, as_varint(session_id, "session_id"))
    elif session_id is not None:
        raise ValueError(f"stream type {kind:#x} carries no session id")
    return PyBytes_FromStringAndSize(<const char*>out, n)


def encode_bidi_stream_header(session_id):
    """``0x41`` (encoded as two bytes 0x40 0x41) + session id varint (draft §4.2)."""
    cdef uint8_t out[_MAX_HEADER]
    cdef uint64_t value = as_varint(session_id, "session_id")
    out[0] = 0x40
    out[1] = _BIDI_SIGNAL
    return PyBytes_FromStringAndSize(<const char*>out, 2 + write_varint(out + 2, value))


def read_uni_stream_header(data):
    """Parse the start of a peer's unidirectional stream (RFC 9114 §6.2, draft §4.1).

    Returns ``(stream_type, session_id, consumed)``; ``session_id`` is -1 unless the type is
    0x54 (WebTransport). ``None`` when more bytes are needed.
    """
    cdef Py_buffer view
    cdef Py_ssize_t pos
    cdef uint64_t stream_type, session_id
    get_bytes(data, &view, "data")
    try:
        pos = read_varint(<const uint8_t*>view.buf, view.len, 0, &stream_type)
        if pos < 0:
            return None
        if stream_type != _STREAM_TYPE_WEBTRANSPORT:
            return stream_type, -1, pos
        pos = read_varint(<const uint8_t*>view.buf, view.len, pos, &session_id)
        if pos < 0:
            return None
        return stream_type, session_id, pos
    finally:
        PyBuffer_Release(&view)


def read_bidi_stream_header(data):
    """Parse the start of a peer's bidirectional stream (draft §4.2).

    Returns ``(session_id, consumed)`` when it begins with the 0x41 signal (in any varint
    encoding), ``(-1, 0)`` for an ordinary HTTP/3 request stream, ``None`` when more bytes
    are needed to tell.
    """
    cdef Py_buffer view
    cdef Py_ssize_t pos
    cdef uint64_t signal, session_id
    get_bytes(data, &view, "data")
    try:
        pos = read_varint(<const uint8_t*>view.buf, view.len, 0, &signal)
        if pos < 0:
            return None
        if signal != _BIDI_SIGNAL:
            return -1, 0
        pos = read_varint(<const uint8_t*>view.buf, view.len, pos, &session_id)
        if pos < 0:
            return None
        return session_id, pos
    finally:
        PyBuffer_Release(&view)
