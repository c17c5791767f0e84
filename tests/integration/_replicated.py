"""One engine's primary and replicas behind one handle, for the suites parametrised over engines.

:class:`PgServers` drives a :class:`PgCluster` (a primary, two streaming
standbys) and :class:`MariaDbServers` a :class:`MariaDbPair` (a primary, one
GTID replica) through the same methods, so one test states a promise once and
runs on both. What only one engine has (synchronous replication, GTID text)
stays in that engine's own module.
"""

from __future__ import annotations

import time
from typing import ClassVar, Protocol

from commercekit.repository import GtidPosition, Lsn
from tests.integration._servers import MariaDbPair, PgCluster


class ReplicatedServers(Protocol):
    """A primary and its replicas, as the replicated-repository tests drive them."""

    engine: str
    """``postgresql`` or ``mariadb``: the test ids and the printed figures."""
    position: type[Lsn] | type[GtidPosition]
    """The position a consistency token holds on this engine."""
    shutdown_ships_everything: bool
    """Whether a clean stop of the primary first sends every commit to the replicas."""
    comeback_s: float
    """How long reads may take to return to replicas that were restarted."""

    @property
    def primary_url(self) -> str: ...
    @property
    def replicas(self) -> list[str]:
        """The replicas' server names, in the topology's order (``replica1``, ...)."""

    @property
    def replica_urls(self) -> list[str]: ...
    def pause_replay(self, name: str) -> None:
        """Replica *name* keeps receiving the primary's changes but applies none."""

    def resume_replay(self, name: str) -> None: ...
    def stop(self, name: str) -> None:
        """A clean shutdown of server *name* (``primary`` or a replica)."""

    def start(self, name: str) -> None: ...
    def start_all(self) -> None:
        """Start every server that is down, and wait until every replica follows the primary."""

    def wait_caught_up(self) -> None:
        """Wait until every running replica has applied the primary's latest commit."""

    def reset_statements(self) -> None:
        """Forget the statements every server ran so far (and start recording them)."""

    def statements(self, name: str) -> str:
        """The statements server *name* ran since :meth:`reset_statements`, lower case."""

    def shown(self, literal: str) -> str:
        """*literal* (SQL) as :meth:`statements` shows it."""

    def stop_recording(self) -> None: ...


class PgServers:
    """A :class:`PgCluster`: statements from pg_stat_statements, replay paused by function."""

    engine = "postgresql"
    position = Lsn
    shutdown_ships_everything = True  # a fast shutdown waits for the walsenders to send it all
    comeback_s = 5.0

    def __init__(self, cluster: PgCluster) -> None:
        self.cluster = cluster

    @property
    def primary_url(self) -> str:
        return self.cluster.url("primary")

    @property
    def replicas(self) -> list[str]:
        return list(self.cluster.standby_names)

    @property
    def replica_urls(self) -> list[str]:
        return [self.cluster.url(n) for n in self.cluster.standby_names]

    def pause_replay(self, name: str) -> None:
        self.cluster.execute(name, "select pg_wal_replay_pause()")

    def resume_replay(self, name: str) -> None:
        self.cluster.execute(name, "select pg_wal_replay_resume()")

    def stop(self, name: str) -> None:
        self.cluster.stop_node(name)

    def start(self, name: str) -> None:
        if name not in self.cluster.running:
            self.cluster.start_node(name)

    def start_all(self) -> None:
        for name in ("primary", *self.cluster.standby_names):
            self.start(name)
        self.cluster.wait_streaming(len(self.cluster.standby_names))

    def wait_caught_up(self) -> None:
        self.cluster.wait_caught_up()

    def settle(self) -> None:
        self.start_all()
        self.wait_caught_up()

    def freeze(self, name: str) -> None:
        self.cluster.freeze(name)

    def thaw(self, name: str) -> None:
        self.cluster.thaw(name)

    def kill(self, name: str) -> None:
        self.cluster.kill(name)

    def thaw_all(self) -> None:
        self.cluster.faults.thaw_all()

    def reset_statements(self) -> None:
        for name in ("primary", *self.cluster.standby_names):
            self.cluster.execute(name, "select pg_stat_statements_reset()")

    def statements(self, name: str) -> str:
        rows = self.cluster.execute(name, "select query from pg_stat_statements")
        return " ".join(str(r[0]) for r in rows).lower()

    def shown(self, literal: str) -> str:
        return "$1"  # pg_stat_statements shows a statement's constants as parameters

    def stop_recording(self) -> None:
        pass


class MariaDbServers:
    """A :class:`MariaDbPair`: statements from the general log, replay paused by SQL thread."""

    engine = "mariadb"
    position = GtidPosition
    shutdown_ships_everything = False  # nothing makes the primary wait for the replica
    comeback_s = 10.0
    _LOG: ClassVar[str] = "select argument from mysql.general_log where command_type = 'Query'"

    def __init__(self, pair: MariaDbPair) -> None:
        self.pair = pair

    @property
    def primary_url(self) -> str:
        return self.pair.url("primary")

    @property
    def replicas(self) -> list[str]:
        return ["replica"]

    @property
    def replica_urls(self) -> list[str]:
        return [self.pair.url("replica")]

    def pause_replay(self, name: str) -> None:
        self.pair.execute(name, "STOP SLAVE SQL_THREAD")

    def resume_replay(self, name: str) -> None:
        self.pair.execute(name, "START SLAVE SQL_THREAD")

    def stop(self, name: str) -> None:
        self.pair.stop_node(name)

    def start(self, name: str) -> None:
        if name not in self.pair.procs:
            self.pair.start_node(name)

    def start_all(self) -> None:
        for name in ("primary", "replica"):
            self.start(name)
        deadline = time.monotonic() + 20
        while True:  # the IO thread reconnects every second after a primary restart
            try:
                self.pair.wait_caught_up(timeout_s=2)
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise

    def wait_caught_up(self) -> None:
        self.pair.wait_caught_up()

    def settle(self) -> None:
        self.start_all()
        self.wait_caught_up()

    def freeze(self, name: str) -> None:
        self.pair.freeze(name)

    def thaw(self, name: str) -> None:
        self.pair.thaw(name)

    def kill(self, name: str) -> None:
        self.pair.kill(name)

    def thaw_all(self) -> None:
        self.pair.faults.thaw_all()

    def reset_statements(self) -> None:
        for name in ("primary", "replica"):  # the general log, as a table, of every statement
            self.pair.execute(
                name,
                "SET GLOBAL general_log = 0",
                "TRUNCATE TABLE mysql.general_log",
                "SET GLOBAL log_output = 'TABLE'",
                "SET GLOBAL general_log = 1",
            )

    def statements(self, name: str) -> str:
        rows = self.pair.execute(name, self._LOG)
        return " ".join(
            (r[0].decode() if isinstance(r[0], bytes) else str(r[0])) for r in rows
        ).lower()

    def shown(self, literal: str) -> str:
        return literal

    def stop_recording(self) -> None:
        for name in ("primary", "replica"):
            self.pair.execute(
                name, "SET GLOBAL general_log = 0", "TRUNCATE TABLE mysql.general_log"
            )
