"""The card vault on SQLite: tokenize, charge by token, rotate the key, and look at the raw row.

Runs as it is. In production the keys come from your secret manager and the
engine points at PostgreSQL; nothing else changes.
"""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path

import sqlalchemy as sa

from commercekit.money import Money
from commercekit.payments import (
    Card,
    CardVault,
    InMemoryIdempotencyStore,
    PaymentService,
    SandboxGateway,
    SqlAlchemyVaultStore,
    StaticKeyRing,
)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        engine = sa.create_engine(f"sqlite:///{Path(folder) / 'vault.db'}")
        store = SqlAlchemyVaultStore(engine)
        store.create_tables()
        old_key, new_key = secrets.token_bytes(32), secrets.token_bytes(32)

        vault = CardVault(StaticKeyRing({"2026-01": old_key}, "2026-01"), store)
        token = vault.tokenize(Card("4242 4242 4242 4242", 12, 2030, cvv="123"))
        print("token:", token.token[:12] + "…", "shows as", vault.masked(token))

        payments = PaymentService(SandboxGateway(), InMemoryIdempotencyStore(), vault=vault)
        result = payments.purchase("order-7", Money.of("12.50", "EUR"), token)
        print("charged by token:", result.status.value, result.amount)

        rotated = CardVault(
            StaticKeyRing({"2026-01": old_key, "2026-07": new_key}, "2026-07"), store
        )
        print("re-encrypted under the new key:", rotated.rotate())
        only_new = CardVault(StaticKeyRing({"2026-07": new_key}, "2026-07"), store)
        print("still readable with the new key alone:", only_new.detokenize(token).masked)

        with engine.connect() as conn:
            row = conn.execute(sa.select(store.table)).one()._mapping
        clear = b"4242424242424242" in bytes(row["ciphertext"])
        print(f"raw row: key {row['key_id']}, masked {row['masked']}, number in clear: {clear}")
        engine.dispose()


if __name__ == "__main__":
    main()
