# cython: language_level=3
"""Argument checks shared by every compiled ``_wire`` module; twin of ``_args_py.py``.

Same exception types and messages as the twin, each naming the argument. Being ``cdef
inline`` in a .pxd, they are compiled into each module that cimports them.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyObject_GetBuffer
from cpython.number cimport PyNumber_Index


cdef inline object as_index(object value, str name):
    """``value`` as an exact int (``__index__``, bools included); TypeError naming ``name``
    otherwise, so that a float is never truncated by a C conversion."""
    if type(value) is int:
        return value
    try:
        return PyNumber_Index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, not {type(value).__name__}") from None


cdef inline object as_size(object value, str name, object maximum):
    """A bound of at least 1 (ValueError naming ``name`` below that), clamped to ``maximum``."""
    value = as_index(value, name)
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return maximum if value > maximum else value


cdef inline int get_bytes(object data, Py_buffer* view, str name) except -1:
    """Borrow the bytes of any bytes-like ``data`` into ``view`` (release it after).

    A non-contiguous view is read through a contiguous copy (the copy lives as long as
    ``view``), giving the bytes the twin reads. TypeError naming ``name`` for a non-buffer.
    """
    try:
        PyObject_GetBuffer(data, view, PyBUF_SIMPLE)
    except BufferError:
        PyObject_GetBuffer(memoryview(data).tobytes(), view, PyBUF_SIMPLE)
    except TypeError:
        raise TypeError(f"{name} must be a bytes-like object, not {type(data).__name__}") from None
    return 0
