"""Deadlines on every statement: a node that stops answering fails the statement, in bounded time.

A server that is frozen (SIGSTOP, a hung disk, a partition) keeps its TCP
connections open, and on one host the kernel even acknowledges what is sent to
it, so neither the server's own ``statement_timeout`` nor TCP keepalives end a
statement waiting on it. Each driver gets a client-side deadline instead:

* **PyMySQL** has one: ``read_timeout`` and ``write_timeout`` bound every
  socket read and write; past them PyMySQL drops the connection (error 2013).
* **psycopg 3** waits for every protocol exchange (execute, fetch, COMMIT,
  ROLLBACK) in ``Connection.wait``. A subclass arms a shared :class:`Watchdog`
  around that wait; if the server has not answered by the deadline, the
  watchdog shuts the connection's socket down, the wait fails at once, and the
  connection is broken (SQLAlchemy then invalidates it).

The asyncio drivers of :class:`~commercekit.repository.AsyncDatabase` get the
same deadlines, on the event loop instead of a thread:

* **asyncmy** has ``read_timeout``: every socket read runs under
  ``asyncio.wait_for``, and past it asyncmy closes the connection (error 2013),
  as PyMySQL does.
* **psycopg 3 (async)** waits in ``AsyncConnection.wait``. A subclass arms a
  ``loop.call_later`` timer around that await which shuts the socket down,
  the same action as the sync watchdog. An ``asyncio.timeout`` cancelling the
  await would not do: psycopg answers a cancellation by sending the server a
  cancel request and waiting for it to end the query, which a frozen server
  never does (psycopg gives that 5 s, then 5 s more). That cancel is right for
  a caller's own timeout on a live server, and still happens there.

Either way the statement fails with a lost connection, which the repository
reports as :class:`~commercekit.errors.DatabaseUnavailableError` (a replica is
ejected and the read moves on; a write fails typed), or as
:class:`~commercekit.errors.CommitOutcomeUnknownError` during COMMIT.

Beside those, the servers get the same limit on their side (PostgreSQL
``statement_timeout``, MariaDB ``max_statement_time``, so they stop work the
client has given up on), and PostgreSQL connections get TCP keepalives and
``tcp_user_timeout`` (a dead peer across a network is noticed on idle pooled
connections too).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event

from commercekit.typing import MonotonicClock

__all__ = [
    "Watchdog",
    "connect_args_for",
    "install_deadlines",
    "statement_timeout_of",
    "watchdog",
]

_ATTRIBUTE = "_commercekit_statement_timeout_s"

_IDLE_S = 2.0
"""How long the watchdog's thread lingers with nothing armed before it ends."""


class _Alarm:
    __slots__ = ("fire",)

    def __init__(self, fire: Callable[[], None]) -> None:
        self.fire: Callable[[], None] | None = fire


class Watchdog:
    """Calls a function when its deadline passes, unless disarmed first (one thread for all).

    The thread starts with the first alarm and ends after ``idle_s`` with none
    armed (a disarmed alarm is dropped when it would have been due, so at most
    the longest deadline plus ``idle_s`` after the last statement): nothing
    runs until a deadline is needed, and nothing is left behind. Arming and
    disarming take a lock and a heap push: microseconds.
    """

    def __init__(self, *, idle_s: float = _IDLE_S, clock: MonotonicClock = time.monotonic):
        self._idle_s = idle_s
        self._clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._heap: list[tuple[float, int, _Alarm]] = []
        self._seq = itertools.count()
        self._armed = 0
        self._thread: threading.Thread | None = None
        self._wake_at = float("inf")

    def arm(self, timeout_s: float, fire: Callable[[], None]) -> _Alarm:
        """Call *fire* (on the watchdog's thread) in *timeout_s*, unless disarmed first."""
        alarm = _Alarm(fire)
        due = self._clock() + timeout_s
        with self._lock:
            heap = self._heap
            if len(heap) > 1024 and len(heap) > 4 * self._armed:
                # Disarmed alarms are dropped lazily; compact when they dominate.
                self._heap = heap = [item for item in heap if item[2].fire is not None]
                heapq.heapify(heap)
            heapq.heappush(heap, (due, next(self._seq), alarm))
            self._armed += 1
            if self._thread is None:
                self._wake_at = due
                self._thread = threading.Thread(
                    target=self._run, name="commercekit-deadlines", daemon=True
                )
                self._thread.start()
            elif due < self._wake_at:  # only an alarm due before the next wake-up wakes it
                self._wake_at = due
                self._wake.notify()
        return alarm

    def disarm(self, alarm: _Alarm) -> bool:
        """Cancel *alarm*; return False if it had fired already."""
        with self._lock:
            if alarm.fire is None:
                return False
            alarm.fire = None
            self._armed -= 1
            return True

    @property
    def running(self) -> bool:
        """Whether the watchdog's thread is alive now."""
        with self._lock:
            return self._thread is not None

    def _run(self) -> None:
        with self._lock:
            while True:
                now = self._clock()
                heap = self._heap
                while heap and (heap[0][2].fire is None or heap[0][0] <= now):
                    _, _, alarm = heapq.heappop(heap)
                    fire, alarm.fire = alarm.fire, None
                    if fire is not None:
                        self._armed -= 1
                        with contextlib.suppress(Exception):  # a socket already gone
                            fire()
                if heap:
                    self._wake_at = heap[0][0]
                    self._wake.wait(heap[0][0] - now)
                    continue
                self._wake_at = now + self._idle_s
                if not self._wake.wait(self._idle_s) and not self._heap:
                    self._thread = None
                    self._wake_at = float("inf")
                    return


_WATCHDOG: Watchdog | None = None
_WATCHDOG_LOCK = threading.Lock()


def watchdog() -> Watchdog:
    """The process's statement watchdog (created on first use, never at import)."""
    global _WATCHDOG
    if _WATCHDOG is None:
        with _WATCHDOG_LOCK:
            if _WATCHDOG is None:
                _WATCHDOG = Watchdog()
    return _WATCHDOG


def _drop_socket(fd: int) -> None:
    """Shut down the socket behind *fd* (a duplicate is closed; the original fails at once)."""
    sock = socket.socket(fileno=os.dup(fd))
    try:
        sock.shutdown(socket.SHUT_RDWR)
    finally:
        sock.close()


_PSYCOPG_CLASS: type[Any] | None = None


def _psycopg_connection_class() -> type[Any]:
    """A ``psycopg.Connection`` whose every wait on the server has a deadline."""
    global _PSYCOPG_CLASS
    if _PSYCOPG_CLASS is not None:
        return _PSYCOPG_CLASS
    import psycopg

    class DeadlineConnection(psycopg.Connection[Any]):
        commercekit_deadline_s: float | None = None

        def wait(self, gen: Any, *args: Any, **kwargs: Any) -> Any:
            limit = self.commercekit_deadline_s
            if limit is None:
                return super().wait(gen, *args, **kwargs)
            fd = self.pgconn.socket
            alarm = watchdog().arm(limit, lambda: _drop_socket(fd))
            try:
                return super().wait(gen, *args, **kwargs)
            except psycopg.OperationalError as exc:
                if alarm.fire is None:  # the watchdog dropped the connection
                    raise psycopg.OperationalError(
                        f"the server did not answer within {limit:g} s: the connection was "
                        "dropped (statement_timeout_s)"
                    ) from exc
                raise
            finally:
                watchdog().disarm(alarm)

    _PSYCOPG_CLASS = DeadlineConnection
    return DeadlineConnection


_PSYCOPG_ASYNC_CLASS: type[Any] | None = None


def _psycopg_async_connection_class() -> type[Any]:
    """A ``psycopg.AsyncConnection`` whose every wait on the server has a deadline."""
    global _PSYCOPG_ASYNC_CLASS
    if _PSYCOPG_ASYNC_CLASS is not None:
        return _PSYCOPG_ASYNC_CLASS
    import asyncio

    import psycopg

    class AsyncDeadlineConnection(psycopg.AsyncConnection[Any]):
        commercekit_deadline_s: float | None = None

        async def wait(self, gen: Any, *args: Any, **kwargs: Any) -> Any:
            limit = self.commercekit_deadline_s
            if limit is None:
                return await super().wait(gen, *args, **kwargs)
            fd = self.pgconn.socket
            fired: list[bool] = []

            def fire() -> None:
                fired.append(True)
                with contextlib.suppress(OSError):  # the socket is gone already
                    _drop_socket(fd)

            timer = asyncio.get_running_loop().call_later(limit, fire)
            try:
                return await super().wait(gen, *args, **kwargs)
            except psycopg.OperationalError as exc:
                if fired:  # the timer dropped the connection
                    raise psycopg.OperationalError(
                        f"the server did not answer within {limit:g} s: the connection was "
                        "dropped (statement_timeout_s)"
                    ) from exc
                raise
            finally:
                timer.cancel()

    _PSYCOPG_ASYNC_CLASS = AsyncDeadlineConnection
    return AsyncDeadlineConnection


def connect_args_for(
    driver: str, *, statement_timeout_s: float | None, connect_timeout_s: float
) -> dict[str, Any]:
    """Driver connect arguments for the connect timeout and the statement deadline."""
    args: dict[str, Any] = {"connect_timeout": max(1, round(connect_timeout_s))}
    if statement_timeout_s is None:
        return args
    if driver == "psycopg":
        ms = max(1, round(statement_timeout_s * 1000))
        idle = max(1, round(statement_timeout_s))
        args.update(
            keepalives=1,
            keepalives_idle=idle,
            keepalives_interval=max(1, round(statement_timeout_s / 3)),
            keepalives_count=3,
            tcp_user_timeout=ms,
            options=f"-c statement_timeout={ms}",
        )
    elif driver == "pymysql":
        args.update(read_timeout=statement_timeout_s, write_timeout=statement_timeout_s)
    elif driver == "asyncmy":
        # asyncmy bounds reads only; a write to a frozen peer fills the socket
        # buffer first, and the read of its answer then times out.
        args.update(read_timeout=statement_timeout_s)
    return args


def install_deadlines(engine: Engine, statement_timeout_s: float) -> None:
    """Give *engine*'s connections their client-side deadline (psycopg) and server-side limit."""
    driver = engine.dialect.driver
    setattr(engine, _ATTRIBUTE, statement_timeout_s)
    if driver == "psycopg" and engine.dialect.is_async:
        async_cls = _psycopg_async_connection_class()

        async def create(*cargs: Any, **cparams: Any) -> Any:
            conn = await async_cls.connect(*cargs, **cparams)
            conn.commercekit_deadline_s = statement_timeout_s
            return conn

        def async_connect(_dialect: Any, _record: Any, _cargs: Any, cparams: Any) -> None:
            cparams["async_creator_fn"] = create  # the dialect connects with it

        event.listen(engine, "do_connect", async_connect)
    elif driver == "psycopg":
        cls = _psycopg_connection_class()

        def do_connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
            conn = cls.connect(*cargs, **cparams)
            conn.commercekit_deadline_s = statement_timeout_s
            return conn

        event.listen(engine, "do_connect", do_connect)
    if driver in {"pymysql", "asyncmy"}:

        def on_connect(dbapi_connection: Any, _record: Any) -> None:
            # A cursor, not get_server_info(): SQLAlchemy's asyncmy adapter has no such method.
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("select version()")
                row = cursor.fetchone()
                if "mariadb" not in str(row[0] if row else "").lower():
                    return  # MySQL's max_execution_time covers SELECT only; socket limits stay
                cursor.execute(f"SET SESSION max_statement_time = {statement_timeout_s:.3f}")
            finally:
                cursor.close()

        event.listen(engine, "connect", on_connect)


def statement_timeout_of(engine: object) -> float | None:
    """The statement deadline :func:`install_deadlines` gave *engine*, if any."""
    value = getattr(engine, _ATTRIBUTE, None)
    return float(value) if isinstance(value, int | float) else None
