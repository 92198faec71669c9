"""The serializers every messaging test runs on: JSON always, MessagePack when msgpack is
installed (it is an optional extra; without it that parameter says why it is skipped)."""

from __future__ import annotations

from typing import Any

import pytest

from pywebtransport.messaging import JSONSerializer, MsgPackSerializer

__all__ = ["serializer_params"]


def serializer_params() -> list[Any]:
    """``pytest.param``s of the serializer classes, with ids ``json`` and ``msgpack``."""
    params: list[Any] = [pytest.param(JSONSerializer, id="json")]
    try:
        import msgpack  # noqa: F401
    except ImportError:
        params.append(pytest.param(None, id="msgpack", marks=pytest.mark.skip(reason="msgpack not installed")))
    else:
        params.append(pytest.param(MsgPackSerializer, id="msgpack"))
    return params
