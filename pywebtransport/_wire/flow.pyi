"""Flow-control accounting (WebTransport draft §5.4, modelled on RFC 9000 §4).

The same two classes count bytes (WT_MAX_DATA) and streams (WT_MAX_STREAMS): every
quantity is cumulative and every limit only grows.
"""

from pywebtransport.exceptions import FlowControlError as FlowControlError

class SendCredit:
    """What we may send: the peer's limit, and how much of it we used."""

    def __init__(self, limit: int) -> None:
        """ValueError if limit < 0."""
    @property
    def limit(self) -> int: ...
    @property
    def used(self) -> int: ...
    @property
    def available(self) -> int:
        """limit - used (never negative)."""
    def consume(self, amount: int) -> None:
        """Use ``amount``. ValueError if amount < 0 or exceeds ``available`` (a local bug)."""
    def try_consume(self, amount: int) -> int:
        """Use up to ``amount``; returns how much was granted (0 when blocked)."""
    def update_limit(self, limit: int) -> bool:
        """Apply a new limit from the peer; returns True if it grew. Smaller values are
        ignored (limits only grow). ValueError if limit < 0."""
    def blocked_at(self) -> int | None:
        """When everything is used and this limit was not reported yet, return the limit
        to put in a *_BLOCKED capsule (once per limit); otherwise None."""

class ReceiveWindow:
    """What the peer may send us: the limit we advertised, what arrived, what was consumed."""

    def __init__(self, initial: int, *, auto_extend: bool = True) -> None:
        """``initial`` is both the first advertised limit and the window size used to
        extend it. ValueError if initial < 0."""
    @property
    def limit(self) -> int:
        """The highest limit advertised to the peer."""
    @property
    def received(self) -> int: ...
    @property
    def consumed(self) -> int: ...
    @property
    def window(self) -> int: ...
    @property
    def auto_extend(self) -> bool: ...
    def on_receive(self, amount: int) -> None:
        """The peer sent ``amount`` more. FlowControlError (WT_FLOW_CONTROL_ERROR) if
        received would exceed limit; the counters are unchanged then."""
    def on_consume(self, amount: int) -> int | None:
        """The application consumed ``amount``. With auto_extend, when less than half a
        window of credit remains (limit - consumed < window / 2) return the new limit
        consumed + window to advertise (and adopt it); otherwise None. ValueError if more
        is consumed than received."""
    def grant(self, limit: int) -> int | None:
        """Raise the advertised limit by hand; returns it if it grew, None otherwise."""
