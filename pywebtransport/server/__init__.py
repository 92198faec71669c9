"""Server side: WebTransportServer, and ServerApp with routing and middleware on top."""

from __future__ import annotations

from pywebtransport.server.app import ServerApp
from pywebtransport.server.middleware import (
    HeaderAuth,
    Middleware,
    OriginAllowList,
    RateLimit,
    Reject,
    SessionRequest,
)
from pywebtransport.server.router import Route, RouteError, Router
from pywebtransport.server.server import RequestDecider, SessionHandler, WebTransportServer
from pywebtransport.server.workers import WorkerInfo, current_worker

__all__ = [
    "HeaderAuth",
    "Middleware",
    "OriginAllowList",
    "RateLimit",
    "Reject",
    "RequestDecider",
    "Route",
    "RouteError",
    "Router",
    "ServerApp",
    "SessionHandler",
    "SessionRequest",
    "WebTransportServer",
    "WorkerInfo",
    "current_worker",
]
