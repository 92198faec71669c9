"""Route patterns: parameters, literals, priority, malformed patterns."""

from __future__ import annotations

import pytest

from pywebtransport.server.router import RouteError, Router


async def handler(*_: object, **__: object) -> None:
    return None


def test_parameters_match_one_segment_each() -> None:
    router = Router()
    router.add("/rooms/{room}/users/{user}", handler)
    route, params = router.match("/rooms/lobby/users/ada?x=1")  # type: ignore[misc]
    assert params == {"room": "lobby", "user": "ada"} and route.params == ("room", "user")
    assert router.match("/rooms/lobby/users") is None
    assert router.match("/rooms/a/b/users/ada") is None  # a parameter never spans a '/'


def test_literals_are_literal_and_first_match_wins() -> None:
    router = Router()
    router.add("/a.b", handler)
    first = router.add("/items/new", handler)
    router.add("/items/{id}", handler)
    assert router.match("/aXb") is None
    assert router.match("/items/new")[0] is first  # type: ignore[index]
    assert router.match("/items/7")[1] == {"id": "7"}  # type: ignore[index]
    assert router.match("/") is None


@pytest.mark.parametrize("pattern", ["rooms", "/rooms/{room", "/rooms/x{room}", "/{a}/{a}", "/{1abc}"])
def test_malformed_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(RouteError):
        Router().add(pattern, handler)
