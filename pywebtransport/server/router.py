"""Path routing with parameters: ``/rooms/{room}`` matches ``/rooms/lobby`` with room="lobby"."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Route", "RouteError", "Router"]

_PARAM = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")


class RouteError(ValueError):
    """A route pattern is malformed."""


@dataclass(frozen=True, slots=True)
class Route:
    pattern: str
    handler: Callable[..., Awaitable[Any]]
    regex: re.Pattern[str]
    params: tuple[str, ...]


class Router:
    """Routes in registration order; the first match wins; the query string is ignored."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    @staticmethod
    def compile(pattern: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
        """A regex for ``pattern``: ``{name}`` is one path segment, everything else literal."""
        if not pattern.startswith("/"):
            raise RouteError(f"route {pattern!r} must start with '/'")
        parts: list[str] = []
        names: list[str] = []
        for segment in pattern.split("/")[1:]:
            match = _PARAM.match(segment)
            if match:
                name = match.group(1)
                if name in names:
                    raise RouteError(f"route {pattern!r} names parameter {name!r} twice")
                names.append(name)
                parts.append(f"(?P<{name}>[^/]+)")
            elif "{" in segment or "}" in segment:
                raise RouteError(f"route {pattern!r}: {segment!r} must be a whole '{{name}}' segment or a literal")
            else:
                parts.append(re.escape(segment))
        return re.compile("^/" + "/".join(parts) + "$"), tuple(names)

    def add(self, pattern: str, handler: Callable[..., Awaitable[Any]]) -> Route:
        regex, params = self.compile(pattern)
        route = Route(pattern, handler, regex, params)
        self._routes.append(route)
        return route

    def match(self, path: str) -> tuple[Route, dict[str, str]] | None:
        bare = path.split("?", 1)[0]
        for route in self._routes:
            found = route.regex.match(bare)
            if found:
                return route, found.groupdict()
        return None

    @property
    def routes(self) -> list[Route]:
        return list(self._routes)
