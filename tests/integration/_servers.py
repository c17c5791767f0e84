"""Real database servers for integration tests, in temporary folders on loopback ports.

* :class:`PgCluster`: a PostgreSQL primary and streaming standbys (initdb,
  pg_basebackup -R -X stream, pg_ctl), as the ``postgres`` user when run as root.
* :class:`MariaDbPair`: a MariaDB primary and a GTID replica (mariadb-install-db,
  mariadbd --log-bin, CHANGE MASTER TO ... MASTER_USE_GTID=slave_pos).

Both are context managers that stop every server they started and delete
their folder, whatever happens. Settings favour speed (fsync off): test data only.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

PG_BIN_CANDIDATES = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
MARIADBD_CANDIDATES = [Path("/usr/sbin/mariadbd"), Path("/usr/bin/mariadbd")]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_user(user: str) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", user, "--"]
    return []


def _user_exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def pg_bin() -> Path | None:
    """The newest PostgreSQL bin folder with initdb, or None."""
    for candidate in PG_BIN_CANDIDATES:
        if (candidate / "initdb").exists() and (candidate / "pg_basebackup").exists():
            return candidate
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def pg_missing() -> str | None:
    """Why a PostgreSQL cluster cannot start here, or None."""
    if pg_bin() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) are not installed"
    if os.geteuid() == 0 and not _user_exists("postgres"):
        return "running as root but there is no 'postgres' user to run PostgreSQL as"
    return None


def mariadb_missing() -> str | None:
    """Why a MariaDB pair cannot start here, or None."""
    if shutil.which("mariadb-install-db") is None or _mariadbd() is None:
        return "MariaDB server binaries (mariadb-install-db, mariadbd) are not installed"
    if os.geteuid() == 0 and not _user_exists("mysql"):
        return "running as root but there is no 'mysql' user to run MariaDB as"
    return None


def _mariadbd() -> Path | None:
    for candidate in MARIADBD_CANDIDATES:
        if candidate.exists():
            return candidate
    found = shutil.which("mariadbd")
    return Path(found) if found else None


def _run(cmd: list[str], *, timeout: float = 60) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {result.stdout}\n{result.stderr}")


def _chown(path: Path, user: str) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, user, user)


def _children(pid: int) -> list[int]:
    """The direct children of process *pid* (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _signal(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


class Faults:
    """SIGSTOP / SIGCONT / SIGKILL of server processes, remembering what it froze.

    ``thaw_all`` (called by the servers' ``close``, and by the fault tests in
    ``finally``) continues every process still stopped, whatever happened.
    """

    def __init__(self) -> None:
        self.frozen: dict[str, list[int]] = {}

    def freeze(self, name: str, pids: list[int]) -> None:
        self.frozen.setdefault(name, []).extend(pids)
        _signal(pids, signal.SIGSTOP)

    def thaw(self, name: str) -> None:
        _signal(self.frozen.pop(name, []), signal.SIGCONT)

    def thaw_all(self) -> None:
        for name in list(self.frozen):
            self.thaw(name)


class PgCluster:
    """A PostgreSQL primary and *standbys* streaming standbys."""

    def __init__(self, standbys: int = 2) -> None:
        self.standby_names = [f"standby{i}" for i in range(1, standbys + 1)]
        self.bin = pg_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="ck-pg-"))
        self.ports: dict[str, int] = {}
        self.running: set[str] = set()
        self._as = _as_user("postgres")
        self.faults = Faults()

    # -- lifecycle ----------------------------------------------------------

    def __enter__(self) -> PgCluster:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _pg(self, tool: str, *args: str, timeout: float = 60) -> None:
        assert self.bin is not None
        _run([*self._as, str(self.bin / tool), *args], timeout=timeout)

    def start(self) -> None:
        _chown(self.dir, "postgres")
        primary = self.dir / "primary"
        self._pg(
            "initdb", "-D", str(primary), "-U", "postgres", "--auth=trust", "-N",
            "-E", "UTF8", "--locale=C",
        )  # fmt: skip
        with (primary / "postgresql.conf").open("a") as conf:
            conf.write(
                "\nlisten_addresses='127.0.0.1'\n"
                f"unix_socket_directories='{self.dir}'\n"
                "wal_level=replica\nmax_wal_senders=10\nhot_standby=on\n"
                "wal_keep_size='256MB'\nfsync=off\nfull_page_writes=off\n"
                "shared_buffers='32MB'\nmax_connections=60\n"
                "shared_preload_libraries='pg_stat_statements'\n"
                "pg_stat_statements.track='all'\n"
                "hot_standby_feedback=on\nwal_receiver_status_interval='100ms'\n"
            )
        self.ports["primary"] = free_port()
        self.start_node("primary")
        self.execute("primary", "create extension if not exists pg_stat_statements")
        for name in self.standby_names:
            self.ports[name] = free_port()
            self._pg(
                "pg_basebackup", "-h", "127.0.0.1", "-p", str(self.ports["primary"]),
                "-U", "postgres", "-D", str(self.dir / name), "-R", "-X", "stream",
                "-c", "fast", "--no-sync",
            )  # fmt: skip
            self.start_node(name)
        self.wait_streaming(len(self.standby_names))

    def start_node(self, name: str) -> None:
        self._pg(
            "pg_ctl", "-D", str(self.dir / name), "-l", str(self.dir / f"{name}.log"), "-w",
            "-t", "30", "-o", f"-p {self.ports[name]}", "start",
        )  # fmt: skip
        self.running.add(name)

    def stop_node(self, name: str, mode: str = "fast") -> None:
        self.running.discard(name)
        self._pg("pg_ctl", "-D", str(self.dir / name), "-m", mode, "-w", "-t", "30", "stop")

    def pids(self, name: str) -> list[int]:
        """The postmaster of node *name* and its children (backends, walreceiver, ...)."""
        pid = int((self.dir / name / "postmaster.pid").read_text().split()[0])
        return [pid, *_children(pid)]

    def freeze(self, name: str) -> None:
        """SIGSTOP every process of node *name*: it keeps its sockets but answers nothing."""
        self.faults.freeze(name, self.pids(name))

    def thaw(self, name: str) -> None:
        """SIGCONT what :meth:`freeze` stopped (and anything forked since)."""
        self.faults.thaw(name)
        with contextlib.suppress(OSError, ValueError):
            _signal(self.pids(name), signal.SIGCONT)

    def kill(self, name: str) -> None:
        """SIGKILL every process of node *name*, as a crash would (restart: ``start_node``)."""
        pids = self.pids(name)
        self.faults.thaw(name)
        _signal(pids, signal.SIGKILL)
        self.running.discard(name)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
            time.sleep(0.02)

    def close(self) -> None:
        self.faults.thaw_all()
        for name in [*self.standby_names, "primary"]:
            if name in self.running:
                with contextlib.suppress(Exception):
                    self.stop_node(name, "immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- access -------------------------------------------------------------

    def url(self, name: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.ports[name]}/postgres"

    def execute(self, name: str, sql: str) -> list[tuple[object, ...]]:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.ports[name], user="postgres", dbname="postgres",
            autocommit=True, connect_timeout=5,
        ) as conn:  # fmt: skip
            cur = conn.execute(sql)
            return list(cur.fetchall()) if cur.description else []

    def wait_streaming(self, count: int, timeout_s: float = 20) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            rows = self.execute(
                "primary", "select count(*) from pg_stat_replication where state = 'streaming'"
            )
            if rows[0][0] >= count:
                return
            time.sleep(0.05)
        raise RuntimeError(f"fewer than {count} standbys streaming after {timeout_s}s")

    def set_primary_setting(self, name: str, value: str | None) -> None:
        """ALTER SYSTEM SET *name* (RESET it for None) on the primary, and wait until it holds.

        The postmaster passes a reload on to every backend asynchronously: wait until a new
        session sees the value, and a moment more for pooled sessions to have the signal.
        """
        if value is None:
            self.execute("primary", f"alter system reset {name}")
        else:
            self.execute("primary", f"alter system set {name} = '{value}'")
        self.execute("primary", "select pg_reload_conf()")
        shown = self.execute("primary", f"select boot_val from pg_settings where name = '{name}'")
        wanted = shown[0][0] if value is None else value
        deadline = time.monotonic() + 10
        while self.execute("primary", f"show {name}") != [(wanted,)]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the primary did not take {name} = {wanted!r}")
            time.sleep(0.05)
        time.sleep(0.5)

    def wait_caught_up(self, timeout_s: float = 20) -> None:
        """Wait until every running standby has replayed the primary's current LSN."""
        target = self.execute("primary", "select pg_current_wal_lsn()")[0][0]
        deadline = time.monotonic() + timeout_s
        for name in self.standby_names:
            if name not in self.running:
                continue
            while time.monotonic() < deadline:
                rows = self.execute(name, f"select pg_last_wal_replay_lsn() >= '{target}'::pg_lsn")
                if rows[0][0]:
                    break
                time.sleep(0.02)
            else:
                raise RuntimeError(f"{name} did not catch up in {timeout_s}s")


class MariaDbPair:
    """A MariaDB primary with binary logs and one replica following it by GTID."""

    PASSWORD = "repl-test-only"

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ck-maria-"))
        self.ports: dict[str, int] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._as = _as_user("mysql")
        self.mariadbd = _mariadbd()
        self.faults = Faults()

    def __enter__(self) -> MariaDbPair:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> None:
        _chown(self.dir, "mysql")
        for name in ("primary", "replica"):
            _run(
                [
                    *self._as, "mariadb-install-db", "--no-defaults",
                    f"--datadir={self.dir / name}", "--auth-root-authentication-method=normal",
                    "--skip-test-db", "--skip-name-resolve",
                ],
                timeout=120,
            )  # fmt: skip
            self.ports[name] = free_port()
            self.start_node(name)
        self.execute(
            "primary",
            f"CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY '{self.PASSWORD}'",
            "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'",
            "CREATE DATABASE shop",
        )
        self.execute(
            "replica",
            f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={self.ports['primary']}, "
            f"MASTER_USER='repl', MASTER_PASSWORD='{self.PASSWORD}', "
            "MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1",  # reconnect fast after restarts
            "START SLAVE",
        )
        self.wait_caught_up()

    def start_node(self, name: str) -> None:
        server_id = 1 if name == "primary" else 2
        args = [
            *self._as, str(self.mariadbd), "--no-defaults", f"--datadir={self.dir / name}",
            f"--socket={self.dir / name}.sock", f"--port={self.ports[name]}",
            "--bind-address=127.0.0.1", f"--pid-file={self.dir / name}.pid",
            f"--log-error={self.dir / name}.err", f"--server-id={server_id}",
            "--log-bin=mysql-bin", "--binlog-format=ROW", "--skip-name-resolve",
            "--innodb-flush-log-at-trx-commit=2", "--sync-binlog=0",
            "--innodb-buffer-pool-size=32M", "--performance-schema=OFF",
        ]  # fmt: skip
        if name == "replica":
            args.append("--read-only")
        self.procs[name] = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"mariadbd {name} exited: see {self.dir / name}.err")
            with contextlib.suppress(Exception):
                self.execute(name, "select 1")
                return
            time.sleep(0.05)
        raise RuntimeError(f"mariadbd {name} did not start in 30s")

    def stop_node(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        proc.terminate()  # runuser forwards SIGTERM to mariadbd: a clean shutdown
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def pid(self, name: str) -> int:
        """The mariadbd process of node *name* (not the ``runuser`` in front of it)."""
        return int((self.dir / f"{name}.pid").read_text().split()[0])

    def freeze(self, name: str) -> None:
        """SIGSTOP node *name*'s mariadbd: it keeps its sockets but answers nothing.

        ``runuser`` stops itself when its child stops (job control), so it is
        in the list too, and continued with it.
        """
        proc = self.procs.get(name)
        self.faults.freeze(name, [self.pid(name), *([proc.pid] if proc is not None else [])])

    def thaw(self, name: str) -> None:
        self.faults.thaw(name)

    def kill(self, name: str) -> None:
        """SIGKILL node *name*'s mariadbd, as a crash would (restart: ``start_node``)."""
        pid = self.pid(name)
        self.faults.thaw(name)
        _signal([pid], signal.SIGKILL)
        proc = self.procs.pop(name, None)
        if proc is not None:
            _signal([proc.pid], signal.SIGCONT)  # a runuser stopped by job control reaps it
            proc.wait(timeout=10)
        with contextlib.suppress(FileNotFoundError):
            (self.dir / f"{name}.pid").unlink()

    def close(self) -> None:
        self.faults.thaw_all()
        for name in list(self.procs):
            with contextlib.suppress(Exception):
                self.stop_node(name)
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, name: str, database: str = "shop") -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.ports[name]}/{database}"

    def execute(self, name: str, *sqls: str) -> list[tuple[object, ...]]:
        import pymysql

        conn = pymysql.connect(
            host="127.0.0.1", port=self.ports[name], user="root", autocommit=True,
            connect_timeout=5,
        )  # fmt: skip
        try:
            rows: list[tuple[object, ...]] = []
            with conn.cursor() as cur:
                for sql in sqls:
                    cur.execute(sql)
                    rows = list(cur.fetchall())
            return rows
        finally:
            conn.close()

    def wait_caught_up(self, timeout_s: float = 20) -> None:
        pos = self.execute("primary", "select @@gtid_binlog_pos")[0][0]
        if pos:
            done = self.execute("replica", f"select master_gtid_wait('{pos}', {timeout_s})")
            if done[0][0] != 0:
                raise RuntimeError("the MariaDB replica did not catch up")


@contextlib.contextmanager
def nothing() -> Iterator[None]:
    yield
