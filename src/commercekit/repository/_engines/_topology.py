"""Topologies declared in code or from URLs: replication groups and shards of them."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url

from commercekit._extras import require
from commercekit.errors import ConfigurationError
from commercekit.repository._policy._token import GROUP_NAME
from commercekit.repository._typing import Topology, TopologyNode

from ._deadlines import connect_args_for, install_deadlines
from ._sqlite import configure_sqlite

if TYPE_CHECKING:  # SQLAlchemy's asyncio support loads only when an async engine is made
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = [
    "Node",
    "ReplicatedTopology",
    "ShardedTopology",
    "async_engine_from_url",
    "engine_from_url",
]

_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
}
_ASYNC_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+asyncmy",
    "mariadb": "mysql+asyncmy",
    "sqlite": "sqlite+aiosqlite",
    # A sync driver named in a URL gets its async counterpart, so one URL serves both twins.
    "postgresql+psycopg2": "postgresql+psycopg",
    "mysql+pymysql": "mysql+asyncmy",
    "mariadb+pymysql": "mysql+asyncmy",
    "sqlite+pysqlite": "sqlite+aiosqlite",
}
_DEADLINE_DRIVERS = {"psycopg", "pymysql", "asyncmy"}


def engine_from_url(
    url: str,
    *,
    connect_timeout_s: float = 3.0,
    statement_timeout_s: float | None = 10.0,
    **engine_options: Any,
) -> Engine:
    """Create an engine for *url*, with commercekit's defaults.

    ``postgresql://`` means psycopg 3 and ``mysql://``/``mariadb://`` mean
    PyMySQL; SQLite gets the BEGIN fix and WAL mode.

    Deadlines, so that a node that stops answering (frozen, partitioned, a hung
    disk) fails a statement instead of blocking it for ever:

    * *connect_timeout_s*: a new connection (whole seconds; libpq makes
      anything under 2 s 2 s);
    * *statement_timeout_s*: the longest any statement, fetch or COMMIT waits
      for the server's answer. Past it the client drops the connection (psycopg:
      a watchdog shuts the socket down; PyMySQL: ``read_timeout`` and
      ``write_timeout``), which the repository reports as
      ``DatabaseUnavailableError`` (``CommitOutcomeUnknownError`` during
      COMMIT); the server gets the same limit (PostgreSQL ``statement_timeout``,
      MariaDB ``max_statement_time``), and PostgreSQL connections TCP keepalives
      and ``tcp_user_timeout``. Set it above your slowest legitimate statement;
      None turns all of this off. Explicit ``connect_args`` win over these.
    """
    return _engine(
        url,
        _DRIVERS,
        _create_sync_engine,
        connect_timeout_s=connect_timeout_s,
        statement_timeout_s=statement_timeout_s,
        engine_options=engine_options,
    )


def async_engine_from_url(
    url: str,
    *,
    connect_timeout_s: float = 3.0,
    statement_timeout_s: float | None = 10.0,
    **engine_options: Any,
) -> AsyncEngine:
    """Create an asyncio engine for *url*, with the defaults of :func:`engine_from_url`.

    ``postgresql://`` means psycopg 3 in its async mode, ``mysql://`` and
    ``mariadb://`` mean asyncmy, ``sqlite://`` means aiosqlite (with the BEGIN
    fix and WAL mode; ``sqlite://`` alone is one in-memory database shared by
    every session). The deadlines are the same, kept on the event loop: see
    :func:`engine_from_url`.
    """
    return _engine(
        url,
        _ASYNC_DRIVERS,
        _create_async_engine,
        connect_timeout_s=connect_timeout_s,
        statement_timeout_s=statement_timeout_s,
        engine_options=engine_options,
    )


_DRIVER_EXTRAS = {
    "aiosqlite": ("aiosqlite", "asyncio"),
    "asyncmy": ("asyncmy", "mysql-asyncio"),
    "psycopg": ("psycopg", "postgres"),
    "pymysql": ("pymysql", "mysql"),
}
"""A driver's module and the extra that installs it (SQLAlchemy's own error names neither)."""


def _require_driver(url: URL, feature: str) -> None:
    driver = _DRIVER_EXTRAS.get(url.get_driver_name())
    if driver is not None:
        require(driver[0], extra=driver[1], feature=feature)


def _create_sync_engine(url: URL, **options: Any) -> Engine:
    _require_driver(url, f"the repository on {url.get_backend_name()}")
    return create_engine(url, **options)


def _create_async_engine(url: URL, **options: Any) -> AsyncEngine:
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import AsyncAdaptedQueuePool

    feature = f"the asyncio repository on {url.get_backend_name()}"
    require("greenlet", extra="asyncio", feature=feature)  # SQLAlchemy's bridge
    _require_driver(url, feature)

    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        # One connection holds the in-memory database. The sync engine shares it
        # (StaticPool), but tasks interleave their transactions on one connection,
        # so here they queue for it instead: a pool of exactly one.
        options.setdefault("poolclass", AsyncAdaptedQueuePool)
        options.setdefault("pool_size", 1)
        options.setdefault("max_overflow", 0)
    return create_async_engine(url, **options)


E = TypeVar("E", Engine, "AsyncEngine")


def _sync_engine(engine: Engine | AsyncEngine) -> Engine:
    # No isinstance(engine, AsyncEngine): that would import SQLAlchemy's asyncio support.
    return engine if isinstance(engine, Engine) else engine.sync_engine


def _engine(
    url: str,
    drivers: Mapping[str, str],
    create: Callable[..., E],
    *,
    connect_timeout_s: float,
    statement_timeout_s: float | None,
    engine_options: dict[str, Any],
) -> E:
    parsed = make_url(url)
    if parsed.drivername in drivers:
        parsed = parsed.set(drivername=drivers[parsed.drivername])
    if parsed.get_backend_name() == "sqlite":
        engine = create(parsed, **engine_options)
        configure_sqlite(_sync_engine(engine))
        return engine
    if statement_timeout_s is not None and not (
        isinstance(statement_timeout_s, int | float) and 0 < statement_timeout_s < math.inf
    ):
        raise ConfigurationError(
            f"statement_timeout_s is a positive number of seconds or None, "
            f"got {statement_timeout_s!r}"
        )
    driver = parsed.get_driver_name()
    connect_args = dict(engine_options.pop("connect_args", {}))
    if driver in _DEADLINE_DRIVERS:
        defaults = connect_args_for(
            driver, statement_timeout_s=statement_timeout_s, connect_timeout_s=connect_timeout_s
        )
        for key, value in defaults.items():
            if key == "options" and "options" in parsed.query and "options" not in connect_args:
                # libpq options from the URL (search_path, ...) keep theirs and gain ours
                connect_args["options"] = f"{parsed.query['options']} {value}"
            elif key not in parsed.query:  # the URL's own settings win, as connect_args do
                connect_args.setdefault(key, value)
    engine = create(parsed, connect_args=connect_args, **engine_options)
    if driver in _DEADLINE_DRIVERS and statement_timeout_s is not None:
        install_deadlines(_sync_engine(engine), float(statement_timeout_s))
    return engine


def _weight(_instance: object, _attribute: object, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ConfigurationError(f"a node weight is a positive, finite number, got {value!r}")


@attrs.frozen
class Node:
    """One database node: a name unique in its topology and the engine that reaches it.

    *weight* is a replica's share of reads without affinity (and of affinity
    keys) relative to the other replicas, as ProxySQL's and pgpool-II's weights.
    """

    name: str
    engine: Engine = attrs.field(converter=_sync_engine, repr=lambda e: f"<{e.dialect.name}>")
    """The node's engine; an ``AsyncEngine`` is kept as its ``sync_engine`` (as SQLAlchemy's
    events take it), and only an :class:`~commercekit.repository.AsyncDatabase` can use it."""
    weight: float = attrs.field(default=1.0, kw_only=True, validator=_weight)


def _nodes(value: Iterable[Node]) -> tuple[Node, ...]:
    return tuple(value)


@attrs.frozen
class ReplicatedTopology:
    """A primary and zero or more read replicas: one replication group.

    *name* keys the group's position in consistency tokens and names its shard.
    """

    primary: Node
    replicas: tuple[Node, ...] = attrs.field(default=(), converter=_nodes)
    name: str = "main"

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.name, str) or GROUP_NAME.fullmatch(self.name) is None:
            shown = repr(self.name[:70]) if isinstance(self.name, str) else type(self.name).__name__
            raise ConfigurationError(
                f"a group name is 1-64 of [A-Za-z0-9_.-] (it goes into consistency tokens), "
                f"got {shown}"
            )
        names = [n.name for n in self.nodes]
        if len(names) != len(set(names)):
            raise ConfigurationError(f"node names must be unique in a topology: {names}")

    @property
    def nodes(self) -> tuple[Node, ...]:
        """The primary, then the replicas."""
        return (self.primary, *self.replicas)

    @classmethod
    def from_urls(
        cls,
        primary: str,
        replicas: Sequence[str] = (),
        *,
        name: str = "main",
        asyncio: bool = False,
        **engine_options: Any,
    ) -> ReplicatedTopology:
        """Create engines for a primary and replica URLs (``primary``, ``replica1``, ...).

        *engine_options* go to :func:`engine_from_url` for every node, among them
        ``connect_timeout_s`` and ``statement_timeout_s`` (the deadlines). With
        *asyncio*, the engines come from :func:`async_engine_from_url`, for an
        :class:`~commercekit.repository.AsyncDatabase`.
        """
        make: Callable[..., Engine | AsyncEngine] = (
            async_engine_from_url if asyncio else engine_from_url
        )
        return cls(
            Node("primary", make(primary, **engine_options)),
            [Node(f"replica{i}", make(url, **engine_options)) for i, url in enumerate(replicas, 1)],
            name=name,
        )

    def dispose(self) -> None:
        """Close every pooled connection of every node (sync engines; see :func:`_dispose`)."""
        _dispose(self.nodes)


def _dispose(nodes: Sequence[TopologyNode]) -> None:
    """Dispose the nodes' engines; async ones are closed on their loop, so refuse them here."""
    for node in nodes:
        if node.engine.dialect.is_async:
            raise ConfigurationError(
                f"node {node.name!r} has an async engine, whose connections close on the event "
                "loop: await AsyncDatabase.dispose() (or the AsyncEngine's dispose()) instead"
            )
    for node in nodes:
        node.engine.dispose()


def _groups(value: Iterable[Topology] | Mapping[str, Topology]) -> tuple[Topology, ...]:
    if isinstance(value, Mapping):
        return tuple(value.values())
    return tuple(value)


@attrs.frozen
class ShardedTopology:
    """Several replication groups (shards); a shard key picks one by consistent hash."""

    groups: tuple[Topology, ...] = attrs.field(converter=_groups)

    def __attrs_post_init__(self) -> None:
        names = [g.name for g in self.groups]
        if not names:
            raise ConfigurationError("a sharded topology needs at least one group")
        if len(names) != len(set(names)):
            raise ConfigurationError(f"shard names must be unique: {names}")

    def dispose(self) -> None:
        """Close every pooled connection of every node of every shard."""
        _dispose([node for group in self.groups for node in (group.primary, *group.replicas)])
