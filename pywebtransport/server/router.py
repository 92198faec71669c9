"""Path routing with parameters: ``/rooms/{room}`` matches ``/rooms/lobby`` with room="lobby"."""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Route", "RouteError", "Router", "check_handler"]

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
        """Register ``handler`` for ``pattern``; TypeError if it cannot be called as
        ``handler(session, **params)`` with exactly the pattern's parameters."""
        regex, params = self.compile(pattern)
        check_handler(pattern, handler, params)
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


def _describe(handler: Callable[..., Any]) -> str:
    name = getattr(handler, "__qualname__", None) or getattr(handler, "__name__", None) or repr(handler)
    module = getattr(handler, "__module__", None)
    return f"{module}.{name}" if module and module != "builtins" else str(name)


def check_handler(pattern: str, handler: Callable[..., Any], params: Sequence[str] = ()) -> None:
    """Raise TypeError, naming the route, the handler and the parameter, unless ``handler`` can
    be called as ``handler(session, **params)``: a wrong signature fails when the route is
    declared instead of as an internal error on the first request."""
    if not callable(handler):
        raise TypeError(f"route {pattern!r}: the handler must be callable, got {handler!r}")
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):  # some builtins and C callables: nothing to inspect
        return
    try:
        signature.bind(None, **dict.fromkeys(params, ""))
    except TypeError as exc:
        accepted = signature.parameters
        takes_any_keyword = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
        keyword_kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        missing = [name for name in params
                   if not takes_any_keyword and (name not in accepted or accepted[name].kind not in keyword_kinds)]
        positional = [p for p in accepted.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in params]
        extra = [p.name for p in positional[1:] if p.default is p.empty]
        extra += [p.name for p in accepted.values()
                  if p.kind is p.KEYWORD_ONLY and p.default is p.empty and p.name not in params]
        where = f"route {pattern!r}: handler {_describe(handler)}{signature}"
        if missing:
            names = ", ".join(repr(name) for name in missing)
            raise TypeError(f"{where} does not take the path parameter(s) {names}; "
                            f"add them as keyword parameters (or **params)") from None
        if extra:
            names = ", ".join(repr(name) for name in extra)
            raise TypeError(f"{where} requires parameter(s) {names} that the route does not provide") from None
        call = ", ".join(["session", *(f"{name}=..." for name in params)])
        raise TypeError(f"{where} cannot be called as handler({call}): {exc}") from None
