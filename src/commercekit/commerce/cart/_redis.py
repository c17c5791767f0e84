"""``RedisCartStore``: carts in Redis, each a key whose expiry every write pushes back.

Layout under the store's *prefix*: ``<prefix>c:<cart id>`` holds the cart as
JSON; ``<prefix>idle`` is a sorted set of the open carts scored by their last
write (the injected clock's time), which :meth:`expire_idle` walks; every
write also drops its entries older than the time to live (their keys are gone),
so it does not grow with carts Redis dropped by itself. Every
write is optimistic: ``WATCH`` the carts, read them, apply the change,
``MULTI``/``EXEC`` the new values; an ``EXEC`` refused because a watched key
changed reads again and reapplies the change, as the SQL store does on its
version column. A merge watches both carts, so the guest's cart closes in the
same ``EXEC`` that grows the customer's.

Every write also sets ``<prefix>w:<stamp>``, a mark with a random stamp of
its own and a short expiry, in the same ``MULTI``. redis-py resends nothing
under a ``WATCH``: a connection lost around ``EXEC`` surfaces as a refused
``EXEC`` (a ``WatchError``), as does a real conflict. An ``EXEC`` Redis
answered with nil (a watched cart changed) wrote nothing: the change is read
again and reapplied after a short, jittered backoff. Otherwise the store asks
whether the mark exists: if it does the write was kept (done, whoever wrote the
cart since), so a lost reply never applies a change twice. If it does not, a
lost connection is :class:`StoreUnavailableError` (nothing was changed).

Every write sets the key's time to live again (*ttl_s*, 10 days by default):
a cart nobody touches disappears from Redis by itself (then ``get`` says
:class:`NotFoundError`), while ``expire_idle`` marks idle carts expired
earlier, by the injected clock, as the SQL store does.

The merge needs both keys on one Redis node: use one Redis (with replicas), not
a Redis Cluster. Errors: Redis unreachable or failing is
:class:`StoreUnavailableError`; a stored value that is not a cart is
:class:`InvalidInputError`; never a redis-py exception.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from commercekit._extras import require
from commercekit.commerce._shared import conflict_backoff_s
from commercekit.errors import (
    ConflictError,
    DuplicateError,
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
    StoreUnavailableError,
)
from commercekit.repository import UnitOfWork

from ._redis_json import decode, encode
from ._store import CartChange, CartRecord, CartStatus

if TYPE_CHECKING:
    from redis import Redis

__all__ = ["RedisCartStore"]

_T = TypeVar("_T")

DEFAULT_TTL_S = 10 * 86_400.0
"""How long a cart nobody writes stays in Redis."""

MARK_TTL_MS = 60_000
"""How long a write's mark (``<prefix>w:<stamp>``) lives: it is asked for only by the
call that wrote it, right after an ``EXEC`` whose reply was lost."""


class RedisCartStore:
    """Carts in Redis under *prefix*, each kept *ttl_s* after its last write.

    *client* is a synchronous ``redis.Redis`` (``from_url`` builds one with
    short timeouts). The store never closes a client it was given.
    """

    transactional = False

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "ck:cart:",
        ttl_s: float = DEFAULT_TTL_S,
        _owns_client: bool = False,
    ) -> None:
        if ttl_s <= 0:
            raise InvalidInputError(f"ttl_s must be positive, not {ttl_s!r}")
        if not prefix or not prefix.isprintable():
            raise InvalidInputError(f"the key prefix must be printable and not empty: {prefix!r}")
        self._r = client
        self._prefix = prefix
        self._idle = prefix + "idle"
        self._ttl_ms = max(1, int(ttl_s * 1000))
        self._owns = _owns_client
        redis = require("redis", extra="redis", feature="RedisCartStore")
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._watch_error: type[BaseException] = redis.WatchError
        self._lost: tuple[type[BaseException], ...] = (
            redis.ConnectionError,
            redis.TimeoutError,
            OSError,
        )

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "ck:cart:",
        ttl_s: float = DEFAULT_TTL_S,
        timeout_s: float = 2.0,
    ) -> RedisCartStore:
        """A store on the Redis at *url* (``redis://host:6379/0``), with *timeout_s* per call."""
        redis = require("redis", extra="redis", feature="RedisCartStore")
        try:
            client = redis.Redis.from_url(
                url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
            )
        except ValueError as exc:
            raise InvalidInputError(f"not a Redis URL: {exc}") from exc
        return cls(client, prefix=prefix, ttl_s=ttl_s, _owns_client=True)

    def close(self) -> None:
        """Close the client's connections if this store made the client (``from_url``)."""
        if self._owns:
            self._r.close()

    def __repr__(self) -> str:
        return f"RedisCartStore(prefix={self._prefix!r}, ttl_s={self._ttl_ms / 1000})"

    # -- the seam ---------------------------------------------------------------------

    def insert(self, record: CartRecord) -> None:
        """``SET NX`` the cart (:class:`DuplicateError` when its id is taken) and index it."""
        key = self._key(record.id)
        stamp = secrets.token_hex(8)

        def work() -> None:
            kept = self._r.set(key, encode(record, stamp), nx=True, px=self._ttl_ms)
            if not kept:
                # our own SET resent after a lost reply, even if the cart was written
                # since (its stamp is ours)? Or another cart under that id?
                found, wrote = decode(record.id, self._r.get(key))
                if wrote != stamp and not (record.stamp and found.stamp == record.stamp):
                    raise DuplicateError(f"a cart {record.id!r} exists already")
            if record.status is CartStatus.OPEN:
                index = self._r.pipeline(transaction=False)
                index.zadd(self._idle, {record.id: record.updated_at})
                self._trim(index, record.updated_at)
                index.execute()

        self._call("insert a cart", work)

    def get(self, cart_id: str, *, uow: UnitOfWork | None = None) -> CartRecord:
        """The cart (*uow* is ignored: Redis is not in the database's transaction)."""
        return self._call("read a cart", lambda: decode(cart_id, self._r.get(self._key(cart_id))))[
            0
        ]

    def update(
        self, cart_ids: Sequence[str], change: CartChange, *, max_retries: int
    ) -> tuple[CartRecord, ...]:
        """``WATCH`` the carts, apply *change*, ``MULTI``/``EXEC``; again when refused.

        A lost connection before ``EXEC`` was sent, or one whose ``EXEC`` the
        mark shows was not kept, is :class:`StoreUnavailableError`; a lost reply
        to a kept ``EXEC`` returns what was written.
        """
        keys = [self._key(i) for i in cart_ids]
        for attempt in range(max_retries):
            stamp = secrets.token_hex(8)
            mark = f"{self._prefix}w:{stamp}"
            sent = False
            written: Sequence[CartRecord] = ()
            with self._r.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(*keys)  # type: ignore[no-untyped-call]
                    read = tuple(
                        decode(i, raw)[0] for i, raw in zip(cart_ids, pipe.mget(keys), strict=True)
                    )
                    changed = change(read)
                    if changed is None:
                        return read
                    written = changed
                    pipe.multi()
                    kept = {r.id: r.stamp for r in read}
                    for record in written:
                        if not record.stamp:  # a change that left the stamp out keeps it
                            record = attrs.evolve(record, stamp=kept.get(record.id, ""))
                        pipe.set(self._key(record.id), encode(record, stamp), px=self._ttl_ms)
                        if record.status is CartStatus.OPEN:
                            pipe.zadd(self._idle, {record.id: record.updated_at})
                        else:
                            pipe.zrem(self._idle, record.id)
                    self._trim(pipe, max(r.updated_at for r in written))
                    pipe.set(mark, b"1", px=MARK_TTL_MS)
                    sent = True
                    pipe.execute()
                    return tuple(written)
                except self._watch_error as exc:
                    if self._refused(exc):
                        pass  # EXEC answered: a watched cart changed and nothing was written
                    elif sent and self._kept(mark, exc):
                        return tuple(written)  # the EXEC whose reply was lost had been kept
                    if self._connection_lost(exc):
                        raise self._unavailable("write a cart", exc) from exc
                except self._errors as exc:
                    if sent and self._kept(mark, exc):
                        return tuple(written)
                    raise self._unavailable("write a cart", exc) from exc
            if attempt + 1 < max_retries:  # another writer won: read again and reapply
                time.sleep(conflict_backoff_s(attempt))
        raise ConflictError(f"cart(s) {', '.join(map(repr, cart_ids))} kept changing; retry")

    def complete(
        self,
        cart_id: str,
        now: float,
        *,
        uow: UnitOfWork | None = None,
        stamp: str | None = None,
    ) -> bool:
        """Mark the open or frozen cart completed (idempotent; *uow* is ignored)."""
        done = False

        def change(read: tuple[CartRecord, ...]) -> Sequence[CartRecord] | None:
            nonlocal done
            cart = read[0]
            if cart.status is CartStatus.COMPLETED or stamp not in (None, cart.stamp):
                done = False  # completed already, or another cart under this id
                return None
            if cart.status not in (CartStatus.OPEN, CartStatus.FROZEN):
                raise InvalidStateError(f"cart {cart_id!r} is {cart.status.value}, not open")
            done = True
            return (
                attrs.evolve(
                    cart, status=CartStatus.COMPLETED, version=cart.version + 1, updated_at=now
                ),
            )

        self.update((cart_id,), change, max_retries=50)
        return done

    def freeze(
        self, cart_id: str, version: int, now: float, *, uow: UnitOfWork | None = None
    ) -> bool:
        """Freeze the cart if it is still at *version* (*uow* is ignored)."""
        moved = False

        def change(read: tuple[CartRecord, ...]) -> Sequence[CartRecord] | None:
            nonlocal moved
            cart = read[0]
            if cart.status not in (CartStatus.OPEN, CartStatus.FROZEN):
                raise InvalidStateError(f"cart {cart_id!r} is {cart.status.value}, not open")
            moved = cart.version == version
            if not moved:
                return None
            return (
                attrs.evolve(
                    cart, status=CartStatus.FROZEN, version=cart.version + 1, updated_at=now
                ),
            )

        self.update((cart_id,), change, max_retries=50)
        return moved

    def thaw(
        self,
        cart_id: str,
        now: float,
        *,
        version: int | None = None,
        uow: UnitOfWork | None = None,
    ) -> bool:
        """Open the frozen cart again, only at *version* when given (*uow* is ignored)."""
        moved = False

        def change(read: tuple[CartRecord, ...]) -> Sequence[CartRecord] | None:
            nonlocal moved
            cart = read[0]
            moved = cart.status is CartStatus.FROZEN and version in (None, cart.version)
            if not moved:
                return None
            return (
                attrs.evolve(
                    cart, status=CartStatus.OPEN, version=cart.version + 1, updated_at=now
                ),
            )

        self.update((cart_id,), change, max_retries=50)
        return moved

    def expire_idle(self, cutoff: float, *, limit: int) -> int:
        """Expire open carts last written before *cutoff*, oldest first (at most *limit*)."""

        def idle() -> list[Any]:
            return list(self._r.zrangebyscore(self._idle, "-inf", f"({cutoff!r}", 0, limit))

        done = 0
        for raw in self._call("list idle carts", idle):
            cart_id = raw.decode() if isinstance(raw, bytes) else str(raw)
            moved = False

            def change(read: tuple[CartRecord, ...]) -> Sequence[CartRecord] | None:
                nonlocal moved
                cart = read[0]
                moved = cart.status is CartStatus.OPEN and cart.updated_at < cutoff
                if not moved:
                    return None
                return (attrs.evolve(cart, status=CartStatus.EXPIRED, version=cart.version + 1),)

            try:
                self.update((cart_id,), change, max_retries=50)
            except NotFoundError:
                moved = False  # dropped by its time to live: nothing left to mark
            if not moved:
                self._unlist(cart_id)
            done += moved
        return done

    # -- internals --------------------------------------------------------------------

    def _connection_lost(self, exc: BaseException) -> bool:
        """True when redis-py's WatchError stands for a lost connection, not a changed key.

        redis-py raises ``WatchError("A ConnectionError occurred while watching ...")``
        in its handler of the connection error (so that is its ``__context__``); an
        ``EXEC`` refused because a watched key changed is ``"Watched variable changed."``.
        """
        cause = exc.__cause__ or exc.__context__
        return isinstance(cause, self._lost) or "occurred while watching" in str(exc)

    def _refused(self, exc: BaseException) -> bool:
        """True when Redis answered the ``EXEC`` with nil: a watched key changed, nothing written.

        That answer came back, so there is no write to look for (no ``EXISTS``
        of the mark); any other ``WatchError`` may hide a kept ``EXEC``.
        """
        return str(exc) == "Watched variable changed." and not self._connection_lost(exc)

    def _kept(self, mark: str, exc: BaseException) -> bool:
        """Whether the ``EXEC`` that set *mark* was kept (its reply was lost with *exc*)."""
        try:
            return bool(self._r.exists(mark))
        except self._errors as again:
            raise StoreUnavailableError(
                f"the Redis cart store lost the reply to a write ({type(exc).__name__}) and "
                f"cannot tell whether it was kept ({type(again).__name__}); read the cart "
                "before writing it again"
            ) from again

    def _trim(self, pipe: Any, now: float) -> None:
        """Queue dropping idle-index entries older than the time to live: their keys are gone.

        Every write does it, so the index stays as large as the carts Redis still
        holds even when ``expire_abandoned`` never runs.
        """
        pipe.zremrangebyscore(self._idle, "-inf", f"({now - self._ttl_ms / 1000!r}")

    def _unlist(self, cart_id: str) -> None:
        self._call("unlist a cart", lambda: self._r.zrem(self._idle, cart_id))

    def _key(self, cart_id: str) -> str:
        return f"{self._prefix}c:{cart_id}"

    def _call(self, what: str, work: Callable[[], _T]) -> _T:
        try:
            return work()
        except self._errors as exc:
            raise self._unavailable(what, exc) from exc

    def _unavailable(self, what: str, exc: BaseException) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"the Redis cart store could not {what} ({type(exc).__name__}); is Redis up? "
            "Nothing was changed unless the cart shows it"
        )
