"""Subprotocol negotiation (draft-15 §3.3): WT-Available-Protocols offered by the client,
WT-Protocol chosen by the server, and an answer outside the offer refused by the client."""

from __future__ import annotations

import pytest

from pywebtransport._protocol import events as ev
from pywebtransport.exceptions import LocalProtocolError

from .harness import Pair


def request(pair: Pair, protocols: tuple[str, ...]) -> tuple[int, ev.SessionRequested]:
    sid = pair.client.open_session(authority="localhost", path="/chat", protocols=protocols)
    pair.run()
    return sid, pair.one("server", ev.SessionRequested)


def test_the_server_sees_the_offer_and_its_choice_reaches_both_sides() -> None:
    pair = Pair()
    sid, requested = request(pair, ("chat.v2", "chat.v1"))
    assert requested.available_protocols == ("chat.v2", "chat.v1")
    assert requested.headers["wt-available-protocols"] == '"chat.v2", "chat.v1"'
    pair.server.accept_session(sid, protocol="chat.v1")
    pair.run()
    assert pair.one("client", ev.SessionEstablished).protocol == "chat.v1"
    assert pair.one("server", ev.SessionEstablished).protocol == "chat.v1"
    assert pair.client.session_snapshot(sid).protocol == pair.server.session_snapshot(sid).protocol == "chat.v1"


def test_no_offer_and_no_choice_means_no_protocol() -> None:
    pair = Pair()
    sid, requested = request(pair, ())
    assert requested.available_protocols == () and "wt-available-protocols" not in requested.headers
    pair.server.accept_session(sid)
    pair.run()
    assert pair.one("client", ev.SessionEstablished).protocol is None


def test_the_server_cannot_choose_what_was_not_offered() -> None:
    pair = Pair()
    sid, _ = request(pair, ("a",))
    with pytest.raises(LocalProtocolError, match="not offered"):
        pair.server.accept_session(sid, protocol="b")


def test_a_server_answer_outside_the_offer_fails_the_session_on_the_client() -> None:
    pair = Pair()
    sid, _ = request(pair, ("a",))
    pair.server.accept_session(sid, headers={"wt-protocol": '"evil"'})  # a server ignoring the rule
    pair.run()
    rejected = pair.one("client", ev.SessionRejected)
    assert "did not offer" in rejected.reason and "'evil'" in rejected.reason
    assert not pair.take("client", ev.SessionEstablished)
