"""AsyncSqlAlchemyIdempotencyStore across event loops: who owns the engine's pool, and the lock.

``from_url`` makes the store's own engine, whose pool belongs to the event
loop of its first call and is disposed as that loop shuts down: two
``asyncio.run()`` in a row work on MariaDB (asyncmy) and SQLite and leak no
socket. A caller's engine stays the caller's: used from a later loop while
its pool still holds the first loop's connections, the store says so with a
:class:`ConfigurationError` instead of the driver's ``RuntimeError``. The
SQLite turn lock is the running loop's.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import uuid
import warnings
from pathlib import Path

import pytest

from commercekit.errors import ConfigurationError, UnavailableError
from commercekit.payments import AsyncSqlAlchemyIdempotencyStore
from tests._loops import another_loop_holds, call_as_the_loop_finalizes
from tests.conftest import missing_service, server_engine

MARIADB_URL = "mysql+asyncmy://root@127.0.0.1:3306/test"


def _mariadb() -> str:
    try:
        __import__("asyncmy")
    except ImportError:
        missing_service("asyncmy is not installed (pip install 'commercekit[mysql]')")
    server_engine("mysql://root@127.0.0.1:3306/test", "MariaDB").dispose()
    return MARIADB_URL


def _prefix() -> str:
    return f"ck_{uuid.uuid4().hex[:8]}_"


async def _claim_and_read(store: AsyncSqlAlchemyIdempotencyStore, key: str) -> str | None:
    await store.begin(
        key, scope=key, operation="authorize", fingerprint="f", request="r",
        owner="o", now=1.0, lease_s=30.0,
    )  # fmt: skip
    await store.complete(key, owner="o", result="ok", now=2.0)
    record = await store.get(key)
    assert record is not None
    return record.result


@pytest.fixture(params=["mariadb", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "mariadb":
        return _mariadb()
    return f"sqlite+aiosqlite:///{tmp_path / 'idem.db'}"


def test_from_url_serves_a_second_event_loop_and_leaks_nothing(url: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stores = [AsyncSqlAlchemyIdempotencyStore.from_url(url, table_prefix=_prefix())]

        async def first() -> str | None:
            await stores[0].create_tables()
            return await _claim_and_read(stores[0], "k1")

        async def second() -> str | None:  # was "attached to a different loop" on asyncmy
            keys = [f"k2-{i}" for i in range(4)]
            results = await asyncio.gather(*(_claim_and_read(stores[0], k) for k in keys))
            assert set(results) == {"ok"}  # the SQLite lock taken in turns on this loop
            return await _claim_and_read(stores[0], "k3")

        async def drop() -> None:
            async with stores[0] as store:
                await store.drop_tables()

        assert asyncio.run(first()) == "ok"
        assert asyncio.run(second()) == "ok"
        asyncio.run(drop())
        stores.clear()
        gc.collect()
    assert [str(w.message) for w in caught] == []


def test_the_sqlite_lock_is_the_running_loops(tmp_path: Path) -> None:
    """A caller's engine: the lock contended on one loop is taken again on the next."""
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'idem.db'}")
    store = AsyncSqlAlchemyIdempotencyStore(engine, table_prefix=_prefix())

    async def contended(tag: str) -> None:
        await store.create_tables()
        await asyncio.gather(*(_claim_and_read(store, f"{tag}-{i}") for i in range(4)))
        await engine.dispose()  # the caller's engine: the caller disposes it on its loop

    asyncio.run(contended("a"))
    asyncio.run(contended("b"))  # was "is bound to a different event loop"


def test_a_callers_engine_kept_past_its_loop_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(_mariadb())
    stores = [AsyncSqlAlchemyIdempotencyStore(engine, table_prefix=_prefix())]

    async def use() -> str | None:
        await stores[0].create_tables()
        return await _claim_and_read(stores[0], "k")

    async def clean() -> None:
        await stores[0].drop_tables()
        await engine.dispose()

    # SQLAlchemy logs the failed reset with its traceback, which would hold the first
    # loop's connection (and leak its socket into a later test) in pytest's log capture.
    monkeypatch.setattr(logging.getLogger("sqlalchemy.pool"), "propagate", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # the caller's pool: its sockets leak
        assert asyncio.run(use()) == "ok"
        with pytest.raises(ConfigurationError, match="another event loop") as raised:
            asyncio.run(use())
        del raised  # its traceback holds the first loop's connection
        engine.sync_engine.pool = engine.sync_engine.pool.recreate()  # drop them, as told
        asyncio.run(clean())
        stores.clear()
        gc.collect()


def test_another_running_loop_is_a_configuration_error(tmp_path: Path) -> None:
    store = AsyncSqlAlchemyIdempotencyStore.from_url(
        f"sqlite+aiosqlite:///{tmp_path / 'idem.db'}", table_prefix=_prefix()
    )
    with (
        another_loop_holds(store.create_tables),
        pytest.raises(ConfigurationError, match="another event loop"),
    ):
        asyncio.run(store.get("k"))
    assert asyncio.run(store.get("k")) is None  # its loop has ended: this one gets the pool


def test_a_call_as_the_loop_finalizes_is_refused(tmp_path: Path) -> None:
    late = call_as_the_loop_finalizes(
        lambda: AsyncSqlAlchemyIdempotencyStore.from_url(
            f"sqlite+aiosqlite:///{tmp_path / 'idem.db'}", table_prefix=_prefix()
        ),
        lambda store: store.get("k"),
        first=lambda store: store.create_tables(),
    )
    assert isinstance(late.outcome, UnavailableError)
    assert late.warnings == []
