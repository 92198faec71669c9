"""ClientConfig / ServerConfig validation: every rule refuses a bad value by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from pywebtransport.config import CONGESTION_CONTROL_ALGORITHMS, ClientConfig, ServerConfig
from pywebtransport.exceptions import ConfigurationError


def test_defaults_are_valid_and_safe() -> None:
    client = ClientConfig()
    assert client.verify_mode is True  # TLS verification is on unless turned off
    assert client.max_datagram_frame_size > 0  # browsers lose every datagram without it
    server = ServerConfig()
    assert (server.host, server.port) == ("127.0.0.1", 4433)
    assert {"reno", "cubic"} <= set(CONGESTION_CONTROL_ALGORITHMS)


@pytest.mark.parametrize(("field", "value"), [
    ("connect_timeout", 0), ("connect_timeout", -1), ("stream_creation_timeout", 0), ("idle_timeout", True),
    ("read_timeout", 0), ("write_timeout", -2), ("keep_alive_interval", 0),
    ("max_sessions", 0), ("stream_buffer_size", 0), ("datagram_queue_size", 0), ("datagram_queue_bytes", -1),
    ("max_frame_size", 0), ("max_header_block_size", 0), ("max_capsule_size", 0),
    ("max_incoming_streams_queue", 0), ("initial_max_data", -1), ("initial_max_streams_bidi", 2**62),
    ("max_buffered_streams", -1), ("max_datagram_frame_size", -1), ("quic_max_datagram_size", 1199),
    ("quic_max_datagram_size", 16384), ("quic_max_datagram_size", 65527),
    ("quic_max_streams_bidi", 0), ("quic_max_streams_uni", 2), ("quic_max_streams_bidi", 2**60 + 1),
    ("quic_max_streams_uni", True), ("congestion_control_algorithm", "bbr"),
    ("max_connection_send_buffer", 0), ("max_connection_send_buffer", 1.5),
])
def test_common_fields_refuse_bad_values_by_name(field: str, value: object) -> None:
    for cls in (ClientConfig, ServerConfig):
        with pytest.raises(ConfigurationError, match=rf"{cls.__name__}\.{field}") as info:
            cls(**{field: value})
        assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(("field", "value"), [
    ("server_certificate_hashes", [b"short"]), ("ca_certs", "/nonexistent/ca.pem"), ("max_retries", -1),
    ("retry_delay", -0.5), ("headers", {":path": "/x"}),
])
def test_client_fields_refuse_bad_values(field: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=f"ClientConfig.{field}"):
        ClientConfig(**{field: value})


def test_server_fields_refuse_bad_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="port"):
        ServerConfig(port=70000)
    with pytest.raises(ConfigurationError, match="together"):
        ServerConfig(certfile=str(tmp_path / "c.pem"))
    with pytest.raises(ConfigurationError, match="certfile"):
        ServerConfig(certfile=str(tmp_path / "c.pem"), keyfile=str(tmp_path / "k.pem"))
    with pytest.raises(ConfigurationError, match="max_connections"):
        ServerConfig(max_connections=0)
    with pytest.raises(ConfigurationError, match="reject_status_for_unknown_path"):
        ServerConfig(reject_status_for_unknown_path=200)


def test_replace_validates_and_to_dict_lists_every_field() -> None:
    config = ClientConfig(read_timeout=2.0)
    copy = config.replace(read_timeout=3.0)
    assert (config.read_timeout, copy.read_timeout) == (2.0, 3.0)
    with pytest.raises(ConfigurationError):
        config.replace(read_timeout=-1)
    data = ServerConfig().to_dict()
    assert data["port"] == 4433 and "stream_buffer_size" in data


def test_fields_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        ClientConfig(10.0)  # type: ignore[misc]


def test_reuse_port_must_be_a_bool() -> None:
    assert ServerConfig(reuse_port=True).reuse_port is True
    with pytest.raises(ConfigurationError, match="reuse_port"):
        ServerConfig(reuse_port=1)  # type: ignore[arg-type]


def test_buffer_bounds_have_safe_defaults_and_refuse_bad_values_by_name() -> None:
    client, server = ClientConfig(), ServerConfig()
    assert 1 << 20 <= client.max_connection_send_buffer == server.max_connection_send_buffer
    # A server's budgets cover many connections, and at least one connection's bound.
    assert server.max_server_send_buffer >= server.max_connection_send_buffer
    assert server.max_server_receive_buffer >= 1 << 20
    for field in ("max_server_send_buffer", "max_server_receive_buffer"):
        for bad in (0, -1, True, 2.0):
            with pytest.raises(ConfigurationError, match=rf"ServerConfig\.{field}"):
                ServerConfig(**{field: bad})
    assert ServerConfig(max_server_send_buffer=1 << 30).max_server_send_buffer == 1 << 30


def test_pre_session_grace_is_a_finite_number_of_seconds() -> None:
    assert ServerConfig().pre_session_grace == 3.0
    assert ServerConfig(pre_session_grace=0).pre_session_grace == 0
    for bad in (-1.0, float("inf"), True, "3"):
        with pytest.raises(ConfigurationError, match="pre_session_grace"):
            ServerConfig(pre_session_grace=bad)  # type: ignore[arg-type]


def test_connect_timeout_also_bounds_the_wait_for_settings_and_request_headers() -> None:
    from pywebtransport.connection import engine_config

    for config in (ServerConfig(connect_timeout=45.0), ClientConfig(connect_timeout=45.0)):
        engine = engine_config(config)
        assert (engine.settings_timeout, engine.request_timeout) == (45.0, 45.0)


TIMEOUTS = ("connect_timeout", "stream_creation_timeout", "close_timeout", "idle_timeout")
OPTIONAL_TIMEOUTS = ("read_timeout", "write_timeout", "keep_alive_interval", "session_idle_timeout")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("field", TIMEOUTS + OPTIONAL_TIMEOUTS)
def test_every_timeout_refuses_a_value_that_is_not_finite_by_name(field: str, value: float) -> None:
    # NaN compares false with everything, so `value <= 0` alone let it through.
    for cls in (ClientConfig, ServerConfig):
        with pytest.raises(ConfigurationError, match=rf"{cls.__name__}\.{field} .*finite.*, got -?(nan|inf)$"):
            cls(**{field: value})


@pytest.mark.parametrize("field", OPTIONAL_TIMEOUTS)
def test_an_optional_timeout_still_takes_none_and_finite_seconds(field: str) -> None:
    for cls in (ClientConfig, ServerConfig):
        assert getattr(cls(**{field: None}), field) is None
        assert getattr(cls(**{field: 0.25}), field) == 0.25


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "1", True])
def test_retry_delay_is_a_finite_number_of_seconds(value: object) -> None:
    assert ClientConfig(retry_delay=0).retry_delay == 0
    with pytest.raises(ConfigurationError, match=r"ClientConfig\.retry_delay must be a finite number >= 0"):
        ClientConfig(retry_delay=value)  # type: ignore[arg-type]


def test_replace_refuses_a_nan_timeout() -> None:
    with pytest.raises(ConfigurationError, match=r"ServerConfig\.connect_timeout"):
        ServerConfig().replace(connect_timeout=float("nan"))
