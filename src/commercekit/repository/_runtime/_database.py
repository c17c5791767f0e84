"""``Database``: the composition root of the repository part.

It takes a topology (one replication group, or shards of them), builds the
instruments and the per-group runtimes once, and hands out units of work and
read repositories. Nothing connects until the first statement.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Engine, MetaData, event

from commercekit._retry import sync_sleep
from commercekit.errors import CommerceKitError, ConfigurationError, InvalidInputError
from commercekit.metrics import Metrics, NullMetrics
from commercekit.repository._engines._topology import ShardedTopology
from commercekit.repository._policy._keyset import column_names
from commercekit.repository._policy._placement import ShardPlacement, ketama_shards
from commercekit.repository._policy._routing import Role, RoutingPolicy
from commercekit.repository._policy._token import ConsistencyToken, TokenLike, as_token
from commercekit.repository._retry import RetryPolicy, call_with_retries
from commercekit.repository._typing import PositionSource, Topology, TopologyNode
from commercekit.typing import MonotonicClock, WallClock

from ._background import Background, spawn_thread
from ._group import GroupRuntime
from ._metrics import RepositoryMetrics
from ._reads import ReadRepository
from ._replicas import key_text
from ._repository import model_info
from ._run import Committed, run_attempts
from ._sessions import SessionFactory, plain_session
from ._settings import ReadSettings
from ._uow import NOTICES_KEY, UnitOfWork

__all__ = ["Committed", "Database"]

R = TypeVar("R")
T = TypeVar("T")


@functools.lru_cache(maxsize=4096)
def _parse_token(text: str) -> ConsistencyToken | None:
    return as_token(text)


def _wrong_engine(node: TopologyNode) -> str:
    dialect = node.engine.dialect
    engine = f"{dialect.name}+{dialect.driver}"
    if dialect.is_async:
        return (
            f"node {node.name!r} has an async engine ({engine}): use AsyncDatabase for it, "
            "or engine_from_url for a sync one"
        )
    return (
        f"node {node.name!r} has a sync engine ({engine}): an AsyncDatabase needs async "
        "engines (async_engine_from_url, or ReplicatedTopology.from_urls(..., asyncio=True)); "
        "use Database for sync ones"
    )


class Database:
    """Units of work and routed reads over a replicated, optionally sharded topology.

    * ``unit_of_work()`` runs on the primary from first statement to commit;
      ``unit_of_work(read_only=True, token=...)`` on one replica that has
      replayed *token* (or the primary).
    * ``repository(Model)`` reads outside a unit of work: from a replica in
      service chosen by the balancer (least loaded, or by affinity *key*),
      honouring a token, retried when transient.
    * ``run(work, retry=True)`` runs a whole unit of work again on a transient
      failure; read-only work is always retried.

    *shard_keys* maps a model to the attribute that picks its shard (needed
    only with a :class:`ShardedTopology`); *shard_placement* builds the keyed
    balancer that places shard keys (default :func:`ketama_shards`). Clocks and
    sleep are injectable.
    """

    _asyncio = False
    """Whether the engines are async (the greenlet-driven runtime of an AsyncDatabase)."""

    def __init__(
        self,
        topology: Topology | ShardedTopology,
        *,
        metrics: Metrics | None = None,
        policy: RoutingPolicy | None = None,
        reads: ReadSettings | None = None,
        retry: RetryPolicy | None = None,
        shard_keys: Mapping[type[Any], str] | None = None,
        shard_placement: ShardPlacement = ketama_shards,
        position_source: PositionSource | None = None,
        clock: MonotonicClock = time.monotonic,
        wall_clock: WallClock = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        groups = topology.groups if isinstance(topology, ShardedTopology) else (topology,)
        nodes: list[tuple[str, str, Role]] = []
        for group in groups:
            for node in (group.primary, *group.replicas):
                if node.engine.dialect.is_async is not self._asyncio:
                    raise ConfigurationError(_wrong_engine(node))
            nodes.append((group.name, group.primary.name, Role.PRIMARY))
            nodes.extend((group.name, r.name, Role.REPLICA) for r in group.replicas)
        backend = metrics or NullMetrics()
        self._metrics = RepositoryMetrics(backend, nodes)
        self._read_retried = self._metrics.retries["read"].inc
        self._work_retried = self._metrics.retries["unit_of_work"].inc
        self._policy = policy or RoutingPolicy()
        self._retry = retry or RetryPolicy()
        self._sleep = sync_sleep(sleep, owner=type(self).__name__)
        self._clock = clock
        self._wall_clock = wall_clock
        self._groups = {
            group.name: GroupRuntime(
                group,
                policy=self._policy,
                settings=reads or ReadSettings(),
                metrics=self._metrics,
                metrics_backend=backend,
                clock=clock,
                wall_clock=wall_clock,
                source=position_source,
                sleep=sleep,
                spawn=self._spawn,
            )
            for group in groups
        }
        self._guards = {name: self._guard(name) for name in self._groups}
        self._only_group = tuple(self._groups.values())
        """Every read's groups when there is one group (built once)."""

        self._placement = shard_placement(list(self._groups))
        self._shard_keys = dict(shard_keys or {})
        if len(self._groups) > 1:
            for model, attr in self._shard_keys.items():
                if attr not in column_names(model):
                    raise ConfigurationError(f"{model.__name__} has no attribute {attr!r}")
        self._listeners: list[tuple[Engine, str, Callable[..., None]]] = []
        for group in groups:
            for node in (group.primary, *group.replicas):
                self._listen(group.name, node.name, node.engine)

    def _listen(self, group: str, node: str, engine: Engine) -> None:
        inc = self._metrics.statements[(group, node)].inc

        def on_statement(*_args: Any) -> None:
            inc()

        event.listen(engine, "before_cursor_execute", on_statement)
        self._listeners.append((engine, "before_cursor_execute", on_statement))
        if engine.dialect.name == "postgresql":

            def on_connect(dbapi_connection: Any, record: Any) -> None:
                notices: list[str] = []
                record.info[NOTICES_KEY] = notices
                dbapi_connection.add_notice_handler(
                    lambda diag: notices.append(str(diag.message_primary or ""))
                )

            event.listen(engine, "connect", on_connect)
            self._listeners.append((engine, "connect", on_connect))

    def _spawn(self, fn: Callable[[], None], name: str, done: Callable[[], None]) -> Background:
        """Start a background probe: a thread (the asyncio twin's runtime starts a task)."""
        return spawn_thread(fn, name, done)

    def close(self, *, probe_wait_s: float = 5.0) -> None:
        """Remove the listeners this database put on the engines (the engines stay open).

        A background probe still running is given up to *probe_wait_s* to end
        (a thread that does not is logged; the asyncio twin cancels its task
        and awaits it).
        """
        for group in self._groups.values():
            group.join_probe(probe_wait_s)
        for engine, name, fn in self._listeners:
            if event.contains(engine, name, fn):
                event.remove(engine, name, fn)
        self._listeners.clear()

    def _engines(self) -> list[Engine]:
        """Every node's engine, primaries first, each once."""
        found: dict[int, Engine] = {}
        for group in self._groups.values():
            for node in (group.primary, *group.replicas.values()):
                found.setdefault(id(node.engine), node.engine)
        return list(found.values())

    def dispose(self, *, probe_wait_s: float = 5.0) -> None:
        """:meth:`close`, then close every pooled connection of every node's engine.

        For a shop's shutdown: the engines stay usable (a later statement opens
        a new connection), but nothing this database opened stays open.
        """
        self.close(probe_wait_s=probe_wait_s)
        for engine in self._engines():
            engine.dispose()

    # -- shards -------------------------------------------------------------

    @property
    def shards(self) -> tuple[str, ...]:
        """The names of the replication groups, in topology order."""
        return tuple(self._groups)

    def shard_for(self, key: Hashable) -> str:
        """The shard that owns *key* (the placement's pick for ``str(key)``)."""
        if len(self._groups) == 1:
            return next(iter(self._groups))
        return self._placement.pick(key_text(key))

    def _group(self, shard_key: Hashable | None) -> GroupRuntime:
        if len(self._groups) == 1:
            return self._only_group[0]
        if shard_key is None:
            raise InvalidInputError(
                f"this database has {len(self._groups)} shards: pass shard_key= to pick one"
            )
        return self._groups[self.shard_for(shard_key)]

    def _guard(self, group: str) -> Callable[[type[Any]], Callable[[object], None] | None]:
        def guard_for(model: type[Any]) -> Callable[[object], None] | None:
            attr = self._shard_keys.get(model)
            if attr is None or len(self._groups) == 1:
                return None

            def check(obj: object) -> None:
                owner = self.shard_for(getattr(obj, attr))
                if owner != group:
                    raise InvalidInputError(
                        f"{model.__name__} with {attr}={getattr(obj, attr)!r} belongs to shard "
                        f"{owner!r}, not {group!r}: open the unit of work with that shard_key"
                    )

            return check

        return guard_for

    # -- units of work ------------------------------------------------------

    def unit_of_work(
        self,
        *,
        read_only: bool = False,
        token: TokenLike = None,
        shard_key: Hashable | None = None,
        key: Hashable | None = None,
    ) -> UnitOfWork:
        """A unit of work (use it in ``with``): on the primary, or on one replica if read-only.

        *token* (read-only) picks a replica that has replayed it; *shard_key*
        picks the shard; *key* steers replica choice (same key, same replica).
        """
        return self._unit_of_work(read_only=read_only, token=token, shard_key=shard_key, key=key)

    def _unit_of_work(
        self,
        *,
        read_only: bool,
        token: TokenLike,
        shard_key: Hashable | None,
        key: Hashable | None,
        session_factory: SessionFactory = plain_session,
        avoid: frozenset[str] = frozenset(),
    ) -> UnitOfWork:
        group = self._group(shard_key)
        return UnitOfWork(
            group,
            read_only=read_only,
            token=self._token(token),
            key=key,
            guard=self._guards[group.name],
            metrics=self._metrics,
            wall_clock=self._wall_clock,
            session_factory=session_factory,
            avoid=avoid,
        )

    def run(
        self,
        work: Callable[[UnitOfWork], R],
        *,
        read_only: bool = False,
        retry: bool = False,
        token: TokenLike = None,
        shard_key: Hashable | None = None,
        key: Hashable | None = None,
    ) -> Committed[R]:
        """Run *work* in a unit of work and commit; return its value and the commit's token.

        Transient failures (lost connections before COMMIT, serialization
        failures, deadlocks) run *work* again from the start in a new
        transaction, when *read_only* or *retry* says that is safe: *work*
        must then have no effects outside the database. A lost COMMIT is never
        retried (:class:`CommitOutcomeUnknownError`).
        """

        def once(uow: UnitOfWork) -> Committed[R]:
            with uow:
                value = work(uow)
            return Committed(value, uow)

        return self._run(
            once, read_only=read_only, retry=retry, token=token, shard_key=shard_key, key=key
        )

    def _run(
        self,
        once: Callable[[UnitOfWork], R],
        *,
        read_only: bool,
        retry: bool,
        token: TokenLike,
        shard_key: Hashable | None,
        key: Hashable | None,
        session_factory: SessionFactory = plain_session,
    ) -> R:
        """:meth:`run`'s one copy (the asyncio twin's runs it in a greenlet)."""
        return run_attempts(
            lambda avoid: self._unit_of_work(
                read_only=read_only,
                token=token,
                shard_key=shard_key,
                key=key,
                session_factory=session_factory,
                avoid=avoid,
            ),
            once,
            retrying=read_only or retry,
            policy=self._retry,
            on_retry=self._work_retried,
            sleep=self._sleep,
        )

    # -- reads outside a unit of work -----------------------------------------

    def repository(self, model: type[T]) -> ReadRepository[T]:
        """Routed reads of *model* outside any unit of work (replicas first)."""
        return ReadRepository(model, self)

    def _token(self, token: TokenLike) -> ConsistencyToken | None:
        if token is None or isinstance(token, ConsistencyToken):
            return token or None
        if type(token) is not str:  # the cache below must not hash what is no string
            return as_token(token)  # raises InvalidInputError, naming the type
        return _parse_token(token)

    def _read_in(
        self,
        group: GroupRuntime,
        fn: Callable[[Any, Any, Role], R],
        token: ConsistencyToken | None,
    ) -> R:
        """Run one routed read in *group* (no affinity key: spread by the replicas' load)."""
        wanted = None if token is None else token.get(group.name)
        try:
            return call_with_retries(
                self._retry, self._read_retried, self._sleep, group.run_read, fn, wanted, None
            )
        except CommerceKitError as exc:
            self._metrics.error(exc)
            raise

    def _groups_for(
        self, model: type[Any], shard_key: Hashable | None, key: Any = None
    ) -> Sequence[GroupRuntime]:
        if len(self._groups) == 1:
            return self._only_group
        if shard_key is not None:
            return [self._groups[self.shard_for(shard_key)]]
        attr = self._shard_keys.get(model)
        if key is not None and attr is not None and model_info(model)[0] == [attr]:
            return [self._groups[self.shard_for(key)]]
        return list(self._groups.values())

    # -- operations -----------------------------------------------------------

    def probe(self) -> None:
        """Probe every replica now (lag, replayed position, liveness)."""
        for group in self._groups.values():
            group.probe()

    def create_all(self, metadata: MetaData) -> None:
        """Create *metadata*'s tables on every primary (replicas get them by replication)."""
        for group in self._groups.values():
            metadata.create_all(group.primary.engine)

    def drop_all(self, metadata: MetaData) -> None:
        """Drop *metadata*'s tables on every primary."""
        for group in self._groups.values():
            metadata.drop_all(group.primary.engine)
