"""The contract every VaultStore keeps under CardVault: in memory, SQL on SQLite, on PostgreSQL.

The fake passes the same tests as the SQL store, so it cannot drift from it.
The raw rows are read behind the store's back to show that the card number
and the security code never reach storage in clear.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from commercekit.errors import InvalidInputError, NotFoundError, UnsupportedTypeError
from commercekit.payments import (
    Card,
    CardToken,
    CardVault,
    InMemoryVaultStore,
    SqlAlchemyVaultStore,
    StaticKeyRing,
    VaultRecord,
    VaultStore,
)
from tests.contract.test_idempotency_contract import postgres_engine

PANS = ("4242424242424242", "5555555555554444", "378282246310005", "4000000000003220")
CVV = "9731"
K0, K1, K2 = b"\x00" * 32, b"\x01" * 32, b"\x02" * 32


@attrs.frozen
class Backend:
    store: VaultStore
    raw_rows: Callable[[], list[tuple[object, ...]]]


@pytest.fixture(params=["memory", "sqlite-memory", "sqlite-file", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    kind = request.param
    if kind == "memory":
        memory = InMemoryVaultStore()
        # Every record lives under some key id other than this one, so stale() lists them all.
        yield Backend(memory, lambda: [attrs.astuple(r) for r in memory.stale("-", 10**6)])
        return
    if kind == "sqlite-memory":
        engine = sa.create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    elif kind == "sqlite-file":
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'vault.db'}")
    else:
        engine = postgres_engine()
    sql = SqlAlchemyVaultStore(engine, table_prefix=f"ck_{uuid.uuid4().hex[:8]}_")
    sql.create_tables()

    def raw_rows() -> list[tuple[object, ...]]:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(f"SELECT * FROM {sql.table.name}"))]

    try:
        yield Backend(sql, raw_rows)
    finally:
        sql.drop_tables()
        engine.dispose()


def ring(current: str, **keys: bytes) -> StaticKeyRing:
    return StaticKeyRing(keys, current)


def test_a_card_is_stored_and_loaded_without_its_security_code(backend: Backend) -> None:
    vault = CardVault(ring("k1", k1=K1), backend.store)
    tokens = {pan: vault.tokenize(Card(pan, 11, 2031, cvv=CVV, holder="Ada")) for pan in PANS}
    for pan, token in tokens.items():
        card = vault.detokenize(token)
        assert card.number.reveal() == pan
        assert (card.exp_month, card.exp_year, card.cvv) == (11, 2031, None)
        assert vault.masked(token) == card.masked
        record = backend.store.get(token.token)
        assert record is not None
        assert (record.token, record.key_id, record.brand) == (token.token, "k1", card.brand.value)
    assert len(backend.raw_rows()) == len(PANS)


def test_put_replaces_the_record_of_a_token(backend: Backend) -> None:
    vault = CardVault(ring("k1", k1=K1), backend.store)
    a, b = vault.tokenize(Card(PANS[0], 1, 2030)), vault.tokenize(Card(PANS[1], 1, 2030))
    ra, rb = backend.store.get(a.token), backend.store.get(b.token)
    assert ra is not None
    assert rb is not None
    moved = attrs.evolve(ra, nonce=rb.nonce, ciphertext=rb.ciphertext)
    backend.store.put(moved)
    assert backend.store.get(a.token) == moved
    assert len(backend.raw_rows()) == 2
    with pytest.raises(InvalidInputError, match="does not decrypt"):
        vault.detokenize(a)  # the token is bound into the ciphertext: a moved one fails


def test_an_unknown_token_is_not_found(backend: Backend) -> None:
    vault = CardVault(ring("k1", k1=K1), backend.store)
    unknown = CardToken("vt_" + "x" * 32)
    assert backend.store.get(unknown.token) is None
    assert not backend.store.delete(unknown.token)
    with pytest.raises(NotFoundError, match="no card for token"):
        vault.detokenize(unknown)
    with pytest.raises(NotFoundError):
        vault.masked(unknown)
    token = vault.tokenize(Card(PANS[0], 1, 2030))
    assert vault.delete(token)
    with pytest.raises(NotFoundError):
        vault.detokenize(token)
    assert backend.raw_rows() == []


def test_rotation_re_encrypts_everything_without_losing_a_card(backend: Backend) -> None:
    old = CardVault(ring("k1", k1=K1), backend.store)
    tokens = {old.tokenize(Card(PANS[i % len(PANS)], 1 + i % 12, 2030)): i for i in range(7)}
    both = CardVault(ring("k2", k1=K1, k2=K2), backend.store)
    fresh = both.tokenize(Card(PANS[0], 5, 2032))
    assert len(backend.store.stale("k2", 100)) == 7
    assert both.rotate(batch_size=3) == 3
    assert both.rotate(batch_size=3) == 3
    assert both.rotate(batch_size=3) == 1
    assert both.rotate() == 0
    assert backend.store.stale("k2", 100) == []
    only_new = CardVault(ring("k2", k2=K2), backend.store)
    for token, i in tokens.items():
        card = only_new.detokenize(token)
        assert card.number.reveal() == PANS[i % len(PANS)]
        assert card.exp_month == 1 + i % 12
    assert only_new.detokenize(fresh).exp_year == 2032
    assert {row_key_id(r) for r in backend.raw_rows()} == {"k2"}


def test_rotation_that_fails_midway_loses_nothing(backend: Backend) -> None:
    CardVault(ring("k0", k0=K0), backend.store).tokenize(Card(PANS[2], 3, 2033))
    old = CardVault(ring("k1", k1=K1), backend.store)
    tokens = [old.tokenize(Card(pan, 4, 2034)) for pan in PANS]
    rotating = CardVault(ring("k2", k1=K1, k2=K2), backend.store)  # k0 was dropped too early
    with pytest.raises(NotFoundError, match="no key 'k0'"):
        rotate_all(rotating)
    every_key = CardVault(ring("k2", k0=K0, k1=K1, k2=K2), backend.store)
    assert [every_key.detokenize(t).number.reveal() for t in tokens] == list(PANS)
    assert every_key.rotate() >= 1
    assert every_key.rotate() == 0
    assert len(backend.raw_rows()) == len(PANS) + 1


def test_replace_is_a_compare_and_set(backend: Backend) -> None:
    vault = CardVault(ring("k1", k1=K1), backend.store)
    token = vault.tokenize(Card(PANS[0], 1, 2030))
    first = backend.store.get(token.token)
    assert first is not None
    second = attrs.evolve(first, key_id="k9", nonce=b"\x07" * 12)
    assert backend.store.replace(first, second)
    assert not backend.store.replace(first, attrs.evolve(first, key_id="k8"))  # stale view
    assert backend.store.get(token.token) == second
    missing = attrs.evolve(first, token="vt_missing")
    assert not backend.store.replace(missing, missing)
    assert backend.store.get("vt_missing") is None


def test_workers_rotating_at_once_re_encrypt_each_card_once(backend: Backend) -> None:
    old = CardVault(ring("k1", k1=K1), backend.store)
    tokens = [old.tokenize(Card(PANS[i % len(PANS)], 6, 2035)) for i in range(24)]
    done: list[int] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        vault = CardVault(ring("k2", k1=K1, k2=K2), backend.store)
        barrier.wait()
        while n := vault.rotate(batch_size=5):
            done.append(n)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(done) == len(tokens)
    only_new = CardVault(ring("k2", k2=K2), backend.store)
    assert all(only_new.detokenize(t).exp_month == 6 for t in tokens)


def good_record() -> VaultRecord:
    return VaultRecord(
        token="vt_good",
        key_id="k1",
        nonce=b"\x01" * 12,
        ciphertext=b"\x02" * 32,
        masked="424242******4242",
        brand="visa",
        exp_month=1,
        exp_year=2030,
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("token", "no-prefix"),
        ("token", "vt_" + "x" * 62),
        ("key_id", ""),
        ("key_id", "k" * 65),
        ("nonce", b"\x01" * 11),
        ("nonce", "not bytes"),
        ("ciphertext", b"\x02" * 16),
        ("masked", "4" * 20),
        ("brand", ""),
        ("exp_month", 13),
        ("exp_year", 1999),
        ("exp_year", True),
    ],
)
def test_a_bad_record_is_refused_before_anything_is_written(
    backend: Backend, field: str, value: object
) -> None:
    with pytest.raises(InvalidInputError, match=field):
        attrs.evolve(good_record(), **{field: value})
    assert backend.raw_rows() == []


def test_bad_input_writes_nothing(backend: Backend) -> None:
    vault = CardVault(ring("k1", k1=K1), backend.store)
    with pytest.raises(InvalidInputError):
        vault.tokenize(PANS[0])  # type: ignore[arg-type]
    with pytest.raises(UnsupportedTypeError):
        backend.store.put({"token": "vt_x"})  # type: ignore[arg-type]
    assert backend.raw_rows() == []
    token = vault.tokenize(Card(PANS[0], 1, 2030))
    before = backend.raw_rows()
    record = backend.store.get(token.token)
    assert record is not None
    with pytest.raises(InvalidInputError, match="keeps its token"):
        backend.store.replace(record, attrs.evolve(record, token="vt_other"))
    with pytest.raises(UnsupportedTypeError):
        backend.store.replace(record, "junk")  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        CardVault(ring("k2", k2=K2), backend.store).detokenize(token)
    assert backend.raw_rows() == before
    assert vault.detokenize(token).number.reveal() == PANS[0]


def test_the_stored_rows_never_hold_a_card_number_or_security_code(backend: Backend) -> None:
    vault = CardVault(ring("k1", k1=K1), backend.store)
    for pan in PANS:
        vault.tokenize(Card(pan, 12, 2031, cvv=CVV))
    CardVault(ring("k2", k1=K1, k2=K2), backend.store).rotate()
    rows = backend.raw_rows()
    assert len(rows) == len(PANS)
    for row in rows:
        blob = b"|".join(as_bytes(value) for value in row)
        for pan in PANS:
            assert pan.encode() not in blob
            assert pan.encode().hex().encode() not in blob
            middle = pan[6:-4]  # the digits masking hides, unless they repeat the shown ones
            if middle not in f"{pan[:6]}|{pan[-4:]}":
                assert middle.encode() not in blob
        assert CVV.encode() not in blob


def rotate_all(vault: CardVault) -> None:
    while vault.rotate(batch_size=2):
        pass


def as_bytes(value: object) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode()


def row_key_id(row: tuple[object, ...]) -> object:
    return row[1]  # (token, key_id, ...) in both the attrs tuple and the table
