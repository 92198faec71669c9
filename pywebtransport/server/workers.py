"""Serve from N worker processes that share one UDP port (``ServerApp.run(workers=N)``).

A supervisor process forks N workers before any event loop runs (so route handlers and
hooks, closures included, need no pickling). Each worker runs its own server on the same
host and port with ``SO_REUSEPORT``; the kernel (Linux) hashes every datagram's 4-tuple
(client address and port, server address and port) to one socket of the group, so a
client's connection lives in one worker for as long as its address stays the same.

Why the supervisor does not restart a worker that died: the kernel spreads datagrams by
the number and order of the sockets in the group. When a socket leaves or joins, addresses
are spread anew, and on Linux a restarted worker takes over the share of a worker that is
still alive (with two workers: all of it). The live worker's clients would then reach a
process that has no state for them and be dropped without a word until their idle timeout.
So a worker that exits unexpectedly stops the whole server instead: the other workers close
their sessions gracefully (clients see a clean close and can reconnect at once), and the
supervisor ends with a failure that a service manager (systemd ``Restart=on-failure``,
a container restart policy) answers by starting the server again.

Start-up is a barrier: each worker binds, reports to the supervisor over a pipe, and runs
its ``on_ready`` hooks only once every worker is bound, so nothing is announced while the
group is still growing. A worker notices that its supervisor is gone (its pipe reads end of
file) and closes itself as on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pywebtransport._addresses import format_address
from pywebtransport.exceptions import ServerError

__all__ = [
    "STOP_GRACE",
    "PortReservation",
    "Supervisor",
    "SupervisorResult",
    "WorkerContext",
    "WorkerInfo",
    "current_worker",
    "describe_exit",
    "multiprocess_unavailable",
    "reserve_port",
    "resolve_port",
]

logger = logging.getLogger(__name__)

#: Seconds a worker gets beyond its drain and close timeouts to end after SIGTERM before
#: the supervisor kills it (shutdown hooks run in that time).
STOP_GRACE = 5.0
#: The signals that stop the supervisor (and that it forwards as SIGTERM).
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: Exit statuses of a worker that count as a clean end once the supervisor asked it to stop:
#: 0, or killed by the stop signal itself before its event loop could handle it (start-up).
_CLEAN_WHILE_STOPPING = frozenset({0, 130, -signal.SIGINT, -signal.SIGTERM})
#: What the supervisor sends a worker waiting at the start-up barrier: every worker is
#: bound (serve), or the server is stopping before they all were.
_GO = b"g"
_STOPPING = b"s"


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """Which worker this process is: ``index`` counts from 1 to ``count``."""

    index: int
    count: int
    pid: int

    def __str__(self) -> str:
        return f"worker {self.index}/{self.count} (pid {self.pid})"


_current: WorkerInfo | None = None


def current_worker() -> WorkerInfo | None:
    """The worker this process is, or None outside a multi-process server (also with one worker)."""
    return _current


def multiprocess_unavailable(*, platform: str = sys.platform) -> str | None:
    """Why several processes cannot share a UDP port here, or None when they can.

    Only Linux spreads the datagrams of one UDP port over the sockets of a ``SO_REUSEPORT``
    group by address; elsewhere the option exists (macOS, BSD) but one socket gets all
    unicast datagrams, or it does not exist (Windows). The workers are forked, too.
    """
    if not platform.startswith("linux"):
        return f"SO_REUSEPORT spreads a UDP port over processes only on Linux (this is {platform})"
    if not hasattr(os, "fork"):
        return "this Python cannot fork"
    if getattr(socket, "SO_REUSEPORT", None) is None:
        return "this system has no SO_REUSEPORT"
    return None


def resolve_port(host: str, port: int) -> int:
    """The port every worker binds: ``port``, or a free one for 0.

    The check binds a plain socket (without ``SO_REUSEPORT``) and closes it at once. A port
    already in use, also by another ``SO_REUSEPORT`` group, fails here with ServerError
    instead of being shared; but the port is free again until the workers bind it, so
    another process can take it meanwhile. ``reserve_port`` holds it instead (what
    ``ServerApp.run(workers=N)`` and ``serve --workers N`` use).
    """
    reservation = reserve_port(host, port)
    reservation.release()
    return reservation.port


class PortReservation:
    """A UDP port held for the workers from before they are forked until they all listen.

    The socket was bound without ``SO_REUSEPORT`` (so the port was free: not another
    process's, nor another ``SO_REUSEPORT`` group's), then given ``SO_REUSEPORT`` so the
    workers' sockets join it. While held, no other process can take the port; the supervisor
    releases it once every worker is bound and before anything is announced. Each worker
    closes its copy after the fork. With port 0 no client knows the port before then; on a
    fixed port, datagrams of clients that arrive during start-up may land on it and are lost
    (QUIC resends them), just as flows are spread anew while the group is still growing.
    """

    def __init__(self, port: int, sock: socket.socket | None = None) -> None:
        self.port = port
        self._sock = sock

    @property
    def held(self) -> bool:
        return self._sock is not None

    def release(self) -> None:
        """Close the holding socket (idempotent); the workers' sockets keep the port."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


def reserve_port(host: str, port: int) -> PortReservation:
    """Hold ``port`` (a free one for 0) for the workers: ServerError when it is in use.

    Unlike ``resolve_port``, nothing can take the port between this check and the workers'
    binds: the reservation holds it until the supervisor releases it (``PortReservation``).
    Where ``SO_REUSEPORT`` does not exist, the port is checked and not held.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))  # no SO_REUSEPORT yet: a port in use, by anyone, fails here
        chosen = int(sock.getsockname()[1])
        reuse_port = getattr(socket, "SO_REUSEPORT", None)
        if reuse_port is None:
            sock.close()
            return PortReservation(chosen)
        sock.setsockopt(socket.SOL_SOCKET, reuse_port, 1)  # now the workers' sockets may join it
    except OSError as exc:
        sock.close()
        raise ServerError(f"cannot listen on {format_address(host, port)}: {exc}") from exc
    return PortReservation(chosen, sock)


def describe_exit(code: int) -> str:
    """A worker's exit code (``os.waitstatus_to_exitcode``) in words."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


class WorkerContext:
    """What a worker's main function gets: who it is, the port, and the start-up barrier."""

    def __init__(self, info: WorkerInfo, *, port: int, status_fd: int, go_fd: int) -> None:
        self.info = info
        self.port = port
        self._status_fd = status_fd
        self._go_fd = go_fd

    async def listening(self) -> bool:
        """Tell the supervisor that this worker's socket is bound; wait until every worker's is.

        True: all are listening, announce it (``on_ready``). False: the server is stopping
        before they all were (a SIGTERM is on its way). From then on the worker watches its
        supervisor: if it goes away, the worker sends itself SIGTERM and so closes as it
        would when stopped. ServerError if the supervisor is gone already.
        """
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bytes] = loop.create_future()
        fd = self._go_fd
        os.set_blocking(fd, False)

        def readable() -> None:
            try:
                data = os.read(fd, 64)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not answer.done():
                answer.set_result(data)
            if not data:  # end of file: the supervisor exited
                loop.remove_reader(fd)
                if answer.result():  # already serving: close as on SIGTERM
                    logger.warning("the supervisor is gone; closing")
                    os.kill(os.getpid(), signal.SIGTERM)

        loop.add_reader(fd, readable)
        os.write(self._status_fd, f"listening {self.info.index} {self.info.pid}\n".encode())
        said = await answer
        if not said:
            raise ServerError("the supervisor process is gone")
        return said.startswith(_GO)


@dataclass(slots=True)
class SupervisorResult:
    """How a supervisor ended: the stop signal it got (if any) and what went wrong (if anything)."""

    signal: signal.Signals | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.failures


@dataclass(slots=True)
class _Slot:
    index: int
    pid: int | None = None
    go_fd: int | None = None  # the supervisor's end of the worker's start-up pipe
    listening: bool = False
    answered: bool = False  # the worker got _GO or _STOPPING
    killed: bool = False


WorkerMain = Callable[[WorkerContext], int]


class Supervisor:
    """Fork ``workers`` processes running ``target(context)`` and watch them (Linux).

    ``target`` runs in each worker and returns its exit status; it must call
    ``await context.listening()`` once its socket is bound. A ``reservation``
    (``reserve_port``) holds the port until then. ``on_serving(pids)`` runs in the
    supervisor once every worker is listening, ``on_stop(signal)`` when a stop signal
    arrives. SIGINT or SIGTERM to the supervisor sends SIGTERM to every worker and waits
    ``stop_timeout`` seconds for them to end, then kills the rest; a second signal kills them
    at once. A worker that ends without being asked stops the others the same way, and is
    reported as a failure.
    """

    def __init__(self, target: WorkerMain, *, workers: int, port: int, stop_timeout: float,
                 on_serving: Callable[[list[int]], None] | None = None,
                 on_stop: Callable[[signal.Signals], None] | None = None,
                 reservation: PortReservation | None = None) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers!r}")
        if reservation is not None and reservation.port != port:
            raise ValueError(f"the reservation holds port {reservation.port}, not {port}")
        self._target = target
        self._port = port
        #: Released once every worker listens (or when the supervisor ends); workers close their copy.
        self._reservation = reservation
        self._stop_timeout = stop_timeout
        self._on_serving = on_serving
        self._on_stop = on_stop
        self._slots = [_Slot(index) for index in range(1, workers + 1)]
        self._private_fds: list[int] = []  # fds a worker closes after the fork
        self._previous_handlers: dict[signal.Signals, Any] = {}
        self._status_fd = -1
        self._serving = False
        self._stopping = False
        self._deadline: float | None = None  # when the workers asked to stop get killed
        self._buffer = b""
        self._result = SupervisorResult()

    @property
    def pids(self) -> list[int]:
        return [slot.pid for slot in self._slots if slot.pid is not None]

    def run(self) -> SupervisorResult:
        """Start the workers and supervise them until they have all ended."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError("workers are forked before any event loop runs; call run() outside one")
        wake_r, wake_w = os.pipe()
        status_r, status_w = os.pipe()
        self._private_fds += [wake_r, wake_w, status_r]
        self._status_fd = status_w
        for fd in (wake_r, wake_w, status_r):
            os.set_blocking(fd, False)
        selector = selectors.DefaultSelector()
        previous_wakeup: int | None = None
        try:
            try:
                for signum in (*_STOP_SIGNALS, signal.SIGCHLD):
                    self._previous_handlers[signum] = signal.signal(signum, _note_signal)
                previous_wakeup = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
            except ValueError as exc:  # not the main thread
                raise RuntimeError(f"a multi-process server must be run from the main thread: {exc}") from None
            selector.register(wake_r, selectors.EVENT_READ, "signals")
            selector.register(status_r, selectors.EVENT_READ, "status")
            for slot in self._slots:
                self._spawn(slot)
            while any(slot.pid is not None for slot in self._slots):
                for key, _ in selector.select(self._timeout()):
                    if key.data == "signals":
                        for number in _drain(wake_r):
                            self._on_signal(number)
                    else:
                        self._on_status(_drain(status_r))
                self._reap()
                if self._deadline is not None and time.monotonic() >= self._deadline:
                    self._kill_all(f"did not stop within {self._stop_timeout:g} s")
        finally:
            selector.close()
            if self._reservation is not None:
                self._reservation.release()
            self._kill_all("the supervisor failed", record=False)
            for slot in self._slots:
                self._reap_slot(slot, block=True)
            if previous_wakeup is not None:
                signal.set_wakeup_fd(previous_wakeup)
            for signum, handler in self._previous_handlers.items():
                signal.signal(signum, handler)
            for fd in (*self._private_fds, status_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._private_fds.clear()
        return self._result

    # -- workers
    def _spawn(self, slot: _Slot) -> None:
        go_r, go_w = os.pipe()
        for stream in (sys.stdout, sys.stderr):  # or both processes would write what is buffered
            with contextlib.suppress(Exception):
                stream.flush()
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {*_STOP_SIGNALS, signal.SIGCHLD})
        try:
            pid = os.fork()
            if pid == 0:  # the worker: never returns
                self._become_worker(slot, go_r, go_w, blocked)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        os.close(go_r)
        slot.pid, slot.go_fd = pid, go_w
        self._private_fds.append(go_w)
        logger.info("started worker %d/%d (pid %d) on port %d", slot.index, len(self._slots), pid, self._port)

    def _become_worker(self, slot: _Slot, go_r: int, go_w: int, blocked: set[int | signal.Signals]) -> None:
        global _current
        code = 1
        try:
            # Signals were blocked over the fork, so none can reach the supervisor's wake-up
            # pipe from here: detach from it and restore the process's own handlers first.
            signal.set_wakeup_fd(-1)
            for signum, handler in self._previous_handlers.items():
                signal.signal(signum, handler)
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            for fd in (*self._private_fds, go_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            if self._reservation is not None:  # this process's copy: the supervisor's goes at the barrier
                self._reservation.release()
            info = WorkerInfo(slot.index, len(self._slots), os.getpid())
            _current = info
            _name_worker_in_logs(info)
            code = self._target(WorkerContext(info, port=self._port, status_fd=self._status_fd, go_fd=go_r))
        except KeyboardInterrupt:
            code = 130
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            logger.exception("worker %d failed", slot.index)
            code = 1
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            with contextlib.suppress(Exception):
                logging.shutdown()
            os._exit(code)

    def _reap(self) -> None:
        for slot in self._slots:
            self._reap_slot(slot, block=False)

    def _reap_slot(self, slot: _Slot, *, block: bool) -> None:
        if slot.pid is None:
            return
        try:
            pid, status = os.waitpid(slot.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere (a SIGCHLD handler of the application)
            pid, status = slot.pid, 0
        if pid == 0:
            return
        code = os.waitstatus_to_exitcode(status)
        worker = f"worker {slot.index} (pid {slot.pid})"
        slot.pid = None
        if slot.go_fd is not None:
            self._private_fds.remove(slot.go_fd)
            os.close(slot.go_fd)
            slot.go_fd = None
        if not self._stopping:
            when = "after it was listening" if slot.listening else "before it was listening"
            failure = f"{worker} exited unexpectedly ({describe_exit(code)}) {when}"
            logger.error("%s; stopping the other workers", failure)
            self._result.failures.append(failure)
            self._stop()
        elif slot.killed:
            pass  # reported when it was killed
        elif code not in _CLEAN_WHILE_STOPPING:
            failure = f"{worker} ended with {describe_exit(code)} while stopping"
            logger.error("%s", failure)
            self._result.failures.append(failure)
        else:
            logger.info("%s stopped", worker)

    def _kill_all(self, why: str, *, record: bool = True) -> None:
        """SIGKILL every live worker; their ends arrive as SIGCHLD, so no deadline is left."""
        self._stopping, self._deadline = True, None
        for slot in self._slots:
            if slot.pid is None or slot.killed:
                continue
            slot.killed = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(slot.pid, signal.SIGKILL)
            if record:
                failure = f"worker {slot.index} (pid {slot.pid}) {why}; killed"
                logger.error("%s", failure)
                self._result.failures.append(failure)

    # -- events
    def _on_signal(self, signum: int) -> None:
        if signum not in _STOP_SIGNALS:
            return  # SIGCHLD: the reaping after every wake-up sees who ended
        stop = signal.Signals(signum)
        if self._result.signal is not None:
            self._kill_all(f"was still running at a second {stop.name}")
            return
        self._result.signal = stop
        logger.info("received %s; stopping %d workers", stop.name, len(self.pids))
        if self._on_stop is not None:
            self._on_stop(stop)
        self._stop()

    def _stop(self) -> None:
        """SIGTERM to every worker (each closes gracefully), killed at the deadline."""
        if self._stopping:
            return
        self._stopping = True
        self._deadline = time.monotonic() + self._stop_timeout
        for slot in self._slots:
            if slot.pid is None:
                continue
            self._answer(slot, _STOPPING)  # one waiting at the barrier goes on, to close
            with contextlib.suppress(ProcessLookupError):
                os.kill(slot.pid, signal.SIGTERM)

    def _answer(self, slot: _Slot, what: bytes) -> None:
        if slot.answered or not slot.listening or slot.go_fd is None:
            return
        slot.answered = True
        with contextlib.suppress(OSError):  # it may have ended meanwhile
            os.write(slot.go_fd, what)

    def _on_status(self, data: bytes) -> None:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            words = line.decode(errors="replace").split()
            if len(words) != 3 or words[0] != "listening" or not (words[1] + words[2]).isdigit() \
                    or not 1 <= int(words[1]) <= len(self._slots):
                logger.warning("unexpected message from a worker: %r", line)
                continue
            index, pid = int(words[1]), int(words[2])
            slot = self._slots[index - 1]
            if slot.pid != pid:
                continue  # from a worker that has ended since
            slot.listening = True
            logger.info("worker %d (pid %d) is listening", index, pid)
            if self._stopping:
                self._answer(slot, _STOPPING)
        if not self._serving and not self._stopping and all(s.listening for s in self._slots):
            self._serving = True
            if self._reservation is not None:  # every worker's socket holds the port now
                self._reservation.release()
            for slot in self._slots:
                self._answer(slot, _GO)
            logger.info("serving on port %d with %d workers (pids %s)", self._port, len(self._slots),
                        ", ".join(str(pid) for pid in self.pids))
            if self._on_serving is not None:
                self._on_serving(self.pids)

    def _timeout(self) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - time.monotonic())


def _note_signal(signum: int, frame: object) -> None:
    """The supervisor's handler: the signal number reaches the wake-up pipe; nothing else to do."""


def _drain(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _name_worker_in_logs(info: WorkerInfo) -> None:
    """Prefix every log message of this process with the worker it is, and set ``processName``."""
    previous = logging.getLogRecordFactory()
    prefix = f"[worker {info.index}/{info.count} pid {info.pid}] "
    name = f"worker-{info.index}"

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.msg = prefix + str(record.msg)
        record.processName = name
        return record

    logging.setLogRecordFactory(factory)
