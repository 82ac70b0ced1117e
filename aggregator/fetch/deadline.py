"""What keeps a hostile server from holding a fetch: a whole-exchange deadline and bounded reads.

A watchdog thread shuts the socket of a fetch past its deadline, so a server trickling a byte a
second, in the headers or in the body, is cut off on time. The urllib3 connection and pool
subclasses report each connection to the deadline of the fetch using it (a thread-local), check
the connected peer's address on redirect hops (no private addresses unless allowed), and bound
header lines and chunk-size lines at 64 KiB.
"""

from __future__ import annotations

import contextlib
import heapq
import http.client
import itertools
import os
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, ClassVar

import requests
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.exceptions

from aggregator.urls import is_private_address

MAX_LINE = 65536  # longest header / chunk-size line read (http.client's own header limit)


class Watchdog:
    """One daemon thread that runs each alarm at its time, unless it was cancelled first.

    It replaces a ``threading.Timer`` (a new thread) per fetch. Alarms run on the watchdog's
    thread while it holds its lock, so once ``cancel`` returns the alarm has either been
    prevented or has finished: never half-run. An alarm must be quick and must not call back
    into the watchdog.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int]] = []  # (when, key); cancelled keys left to expire
        self._alarms: dict[int, Callable[[], None]] = {}  # key -> action, pending alarms only
        self._keys = itertools.count()
        self._thread: threading.Thread | None = None

    def call_at(self, when: float, action: Callable[[], None]) -> int:
        """Run ``action`` at ``when`` (time.monotonic()); returns a key for ``cancel``."""
        with self._condition:
            key = next(self._keys)
            self._alarms[key] = action
            heapq.heappush(self._heap, (when, key))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="aggregator-fetch-watchdog", daemon=True
                )
                self._thread.start()
            elif self._heap[0][1] == key:  # the new earliest alarm: wake up sooner
                self._condition.notify()
        return key

    def cancel(self, key: int) -> None:
        with self._condition:
            self._alarms.pop(key, None)
            # Most alarms are cancelled long before their time: drop them now and then.
            if len(self._heap) > 64 and len(self._heap) > 2 * len(self._alarms):
                self._heap = [entry for entry in self._heap if entry[1] in self._alarms]
                heapq.heapify(self._heap)

    def _run(self) -> None:
        with self._condition:
            while True:
                while self._heap and self._heap[0][1] not in self._alarms:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._condition.wait()
                    continue
                when, key = self._heap[0]
                delay = when - time.monotonic()
                if delay > 0:
                    self._condition.wait(delay)
                    continue
                heapq.heappop(self._heap)
                action = self._alarms.pop(key)
                with contextlib.suppress(Exception):  # one failing alarm must not stop the rest
                    action()


WATCHDOG = Watchdog()
# A forked child has no watchdog thread, and may have inherited its lock held.
os.register_at_fork(after_in_child=WATCHDOG._reset)


class Deadline:
    """The whole exchange's time limit, whatever phase it is in when it passes.

    A read timeout bounds one silence, not the exchange: a server sending a byte every second
    never trips it. When the deadline passes, the socket of the connection in use is shut
    down, so a blocked read returns at once (headers, a redirect hop or the body). The
    connections of ``make_session`` report themselves here through a thread-local, since
    requests hands out no socket before the headers have been read, and leave it when they go
    back to the pool (so a late deadline never shuts a connection another fetch is using).
    """

    def __init__(self, seconds: float) -> None:
        self.expired = threading.Event()
        self._lock = threading.Lock()
        self._connection: object | None = None
        self._seconds = max(seconds, 0.01)
        self._alarm: int | None = None

    def __enter__(self) -> Deadline:
        current.deadline = self
        self._alarm = WATCHDOG.call_at(time.monotonic() + self._seconds, self._expire)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._alarm is not None:
            WATCHDOG.cancel(self._alarm)
        current.deadline = None
        with self._lock:
            self._connection = None

    def watch(self, connection: object) -> None:
        """The connection now carrying this exchange (shut at once if already too late)."""
        with self._lock:
            self._connection = connection
            if self.expired.is_set():
                _shut(connection)

    def unwatch(self, connection: object) -> None:
        """``connection`` goes back to the pool: no longer this exchange's to shut."""
        with self._lock:
            if self._connection is connection:
                self._connection = None
                if self.expired.is_set():  # its socket may be shut: never hand it out again
                    close = getattr(connection, "close", None)
                    if close is not None:
                        close()

    def holds(self, connection: object) -> bool:
        with self._lock:
            return self._connection is connection

    def cut(self, connection: object) -> None:
        """Shut ``connection`` if this exchange still holds it (a drain that took too long)."""
        with self._lock:
            if self._connection is connection:
                _shut(connection)

    def _expire(self) -> None:
        with self._lock:
            self.expired.set()
            if self._connection is not None:
                _shut(self._connection)


current = threading.local()  # .deadline: the Deadline of the fetch running on this thread


def _watch(connection: object) -> None:
    deadline = getattr(current, "deadline", None)
    if deadline is not None:
        deadline.watch(connection)


def _unwatch(connection: object) -> None:
    deadline = getattr(current, "deadline", None)
    if deadline is not None and connection is not None:
        deadline.unwatch(connection)


class PrivateAddressRefused(OSError):
    """A redirect led to an internal address, and `allow_private_addresses` is off."""


def _check_peer(connection: object) -> None:
    """Refuse, before a request is sent, a connection to an internal address on a hop that
    may not reach one (the socket's peer: what DNS answered, whatever the name)."""
    if getattr(current, "private_ok", True):
        return
    sock = getattr(connection, "sock", None)
    if not isinstance(sock, socket.socket):
        return
    try:
        peer = sock.getpeername()[0]
    except OSError:
        return
    if is_private_address(str(peer)):
        host = getattr(connection, "host", "") or peer
        raise PrivateAddressRefused(
            f"refused: a redirect led to {host}, an internal address ({peer}); set "
            "defaults.allow_private_addresses to allow it"
        )


def _shut(connection: object) -> None:
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            # socket.socket's shutdown even for an SSLSocket: ssl's own would drop its state
            # under the reading thread's feet.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _BoundedLines:
    """A socket file whose readline never returns more than MAX_LINE bytes.

    urllib3 reads chunk-size and trailer lines with an unbounded ``readline()``: a server
    sending an endless "ffff..." line would otherwise grow one bytes object until the
    deadline. Everything else is the wrapped file's own.
    """

    def __init__(self, fp: Any) -> None:
        self._fp = fp

    def readline(self, size: int | None = -1) -> bytes:
        if size is not None and size >= 0:  # http.client's header reads: it checks the size
            line: bytes = self._fp.readline(size)
            return line
        line = self._fp.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise http.client.LineTooLong("a chunk-size or trailer line")
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fp, name)


class _BoundedResponse(http.client.HTTPResponse):
    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self.fp = _BoundedLines(self.fp)  # type: ignore[assignment]


class _Watched:
    """Mixed into urllib3's connections: bounded response lines, and the fetch's deadline."""

    response_class: ClassVar[type[http.client.HTTPResponse]] = _BoundedResponse

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        _watch(self)
        _check_peer(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self)  # a pooled connection is reused without connect()
        _check_peer(self)
        super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, urllib3.connection.HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, urllib3.connection.HTTPSConnection):
    pass


class _WatchedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection

    def _put_conn(self, conn: Any) -> None:
        _unwatch(conn)  # every way back into the pool passes here, even urllib3's own
        super()._put_conn(conn)


class _WatchedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection

    def _put_conn(self, conn: Any) -> None:
        _unwatch(conn)
        super()._put_conn(conn)


class WatchedAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter, with connections that answer to the fetch's deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPPool,
            "https": _WatchedHTTPSPool,
        }
