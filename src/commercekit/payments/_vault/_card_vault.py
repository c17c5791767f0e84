"""CardVault: cards encrypted with AES-256-GCM under a rotating key ring, behind opaque tokens.

The number is encrypted with the ring's current key and a fresh 96-bit nonce;
the token, the key id and the expiry are bound in as associated data, so a
ciphertext moved to another record fails to decrypt. The security code is
never stored. Each record names its key id, so old keys keep decrypting old
records after rotation, and :meth:`CardVault.rotate` re-encrypts them under
the current key in batches, as a routine job.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from types import MappingProxyType

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from commercekit.errors import (
    ConfigurationError,
    InvalidInputError,
    NotFoundError,
    UnsupportedTypeError,
)
from commercekit.payments._card import Card
from commercekit.payments._typing import KeyRing, VaultRecord, VaultStore

__all__ = [
    "CardToken",
    "CardVault",
    "InMemoryVaultStore",
    "StaticKeyRing",
    "check_replacement",
    "check_vault_record",
]

_NONCE_BYTES = 12


def _check_token(instance: CardToken, attribute: attrs.Attribute[str], value: str) -> None:
    if (
        not isinstance(value, str)
        or not value.startswith("vt_")
        or len(value) > 64
        or not value.isascii()
        or not value.isprintable()
    ):
        raise InvalidInputError(
            "a vault token is a str of printable ASCII that starts with 'vt_' (at most 64)"
        )


def _as_token(value: object) -> CardToken:
    if not isinstance(value, CardToken):
        raise UnsupportedTypeError(
            f"the vault takes a CardToken, not {type(value).__name__}; wrap a stored token "
            "string as CardToken(text)"
        )
    return value


@attrs.frozen
class CardToken:
    """An opaque reference to a card in a :class:`CardVault`; safe to store and log."""

    token: str = attrs.field(validator=_check_token)


def _keys(value: Mapping[str, bytes]) -> Mapping[str, bytes]:
    for key_id, key in value.items():
        if not isinstance(key, bytes) or len(key) != 32:
            raise ConfigurationError(f"key {key_id!r} must be 32 bytes for AES-256")
    return MappingProxyType(dict(value))


@attrs.frozen(repr=False)
class StaticKeyRing:
    """A :class:`KeyRing` from a mapping of key id to 32-byte key, and the current id.

    Load the keys from your secret manager; add a key and make it current to
    rotate, keep the old ones until :meth:`CardVault.rotate` has re-encrypted
    everything, then drop them.
    """

    keys: Mapping[str, bytes] = attrs.field(converter=_keys)
    current_id: str

    def __attrs_post_init__(self) -> None:
        if self.current_id not in self.keys:
            raise ConfigurationError(f"the current key id {self.current_id!r} is not in the ring")

    def key(self, key_id: str) -> bytes:
        """The key named *key_id*."""
        try:
            return self.keys[key_id]
        except KeyError:
            raise NotFoundError(
                f"the key ring has no key {key_id!r}; was it dropped before rotation finished?"
            ) from None

    def __repr__(self) -> str:
        return f"StaticKeyRing(key_ids={sorted(self.keys)!r}, current_id={self.current_id!r})"


def check_vault_record(record: object) -> VaultRecord:
    """Return *record* if it is a :class:`VaultRecord`; refuse anything else before writing."""
    if not isinstance(record, VaultRecord):
        raise UnsupportedTypeError(
            f"a vault store keeps VaultRecord values, not {type(record).__name__}"
        )
    return record


def check_replacement(old: VaultRecord, new: VaultRecord) -> None:
    """Refuse a replacement that is not a VaultRecord or changes the token."""
    check_vault_record(old)
    check_vault_record(new)
    if old.token != new.token:
        raise InvalidInputError(
            f"a replacement keeps its token: {new.token!r} cannot replace {old.token!r}"
        )


class InMemoryVaultStore:
    """A :class:`VaultStore` in a dict, for tests and demos."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, VaultRecord] = {}

    def put(self, record: VaultRecord) -> None:
        """Insert or replace the record of ``record.token``."""
        check_vault_record(record)
        with self._lock:
            self._records[record.token] = record

    def get(self, token: str) -> VaultRecord | None:
        """The record of *token*, or None."""
        with self._lock:
            return self._records.get(token)

    def delete(self, token: str) -> bool:
        """Remove *token*; say whether it was there."""
        with self._lock:
            return self._records.pop(token, None) is not None

    def stale(self, current_key_id: str, limit: int) -> list[VaultRecord]:
        """Up to *limit* records under another key."""
        with self._lock:
            return [r for r in self._records.values() if r.key_id != current_key_id][:limit]

    def replace(self, old: VaultRecord, new: VaultRecord) -> bool:
        """Swap *old* for *new* if *old* is still stored."""
        check_replacement(old, new)
        with self._lock:
            if self._records.get(old.token) != old:
                return False
            self._records[old.token] = new
            return True

    def __repr__(self) -> str:
        return f"InMemoryVaultStore(cards={len(self._records)})"


class CardVault:
    """Tokenizes cards: :meth:`tokenize` encrypts and stores, :meth:`detokenize` reads back."""

    def __init__(self, key_ring: KeyRing, store: VaultStore) -> None:
        self._ring = key_ring
        self._store = store

    def tokenize(self, card: Card) -> CardToken:
        """Encrypt *card* (its security code is dropped) and return its token."""
        if not isinstance(card, Card):
            raise InvalidInputError(f"CardVault.tokenize() takes a Card, not {type(card).__name__}")
        token = "vt_" + secrets.token_urlsafe(24)
        self._store.put(self._seal(token, card))
        return CardToken(token)

    def detokenize(self, token: CardToken) -> Card:
        """The card behind *token*, without a security code.

        Raises:
            NotFoundError: no such token (or it was deleted).
            InvalidInputError: the record does not decrypt (tampered, or the
                wrong key under that id).
        """
        record = self._record(token)
        number = self._open(record)
        return Card(number, record.exp_month, record.exp_year)

    def masked(self, token: CardToken) -> str:
        """The masked number of *token*, for showing to the customer."""
        return self._record(token).masked

    def delete(self, token: CardToken) -> bool:
        """Forget the card behind *token*; say whether it was there."""
        return self._store.delete(_as_token(token).token)

    def rotate(self, *, batch_size: int = 100) -> int:
        """Re-encrypt up to *batch_size* records under the current key; return how many.

        Run it until it returns 0; then the old keys can leave the ring. Safe
        to run on several workers at once: a record changed meanwhile is
        skipped and picked up by the next batch.
        """
        done = 0
        for record in self._store.stale(self._ring.current_id, batch_size):
            card = Card(self._open(record), record.exp_month, record.exp_year)
            if self._store.replace(record, self._seal(record.token, card)):
                done += 1
        return done

    def _record(self, token: CardToken) -> VaultRecord:
        record = self._store.get(_as_token(token).token)
        if record is None:
            raise NotFoundError(f"the vault has no card for token {token.token!r}")
        return record

    def _seal(self, token: str, card: Card) -> VaultRecord:
        key_id = self._ring.current_id
        nonce = secrets.token_bytes(_NONCE_BYTES)
        aad = _aad(token, key_id, card.exp_month, card.exp_year)
        ciphertext = AESGCM(self._ring.key(key_id)).encrypt(
            nonce, card.number.reveal().encode(), aad
        )
        return VaultRecord(
            token=token,
            key_id=key_id,
            nonce=nonce,
            ciphertext=ciphertext,
            masked=card.masked,
            brand=card.brand.value,
            exp_month=card.exp_month,
            exp_year=card.exp_year,
        )

    def _open(self, record: VaultRecord) -> str:
        aad = _aad(record.token, record.key_id, record.exp_month, record.exp_year)
        try:
            plain = AESGCM(self._ring.key(record.key_id)).decrypt(
                record.nonce, record.ciphertext, aad
            )
        except InvalidTag as exc:
            raise InvalidInputError(
                f"the vault record {record.token!r} does not decrypt under key "
                f"{record.key_id!r}: it was altered, or the key is wrong"
            ) from exc
        return plain.decode()

    def __repr__(self) -> str:
        return f"CardVault(key_ring={self._ring!r}, store={self._store!r})"


def _aad(token: str, key_id: str, exp_month: int, exp_year: int) -> bytes:
    return f"commercekit-vault-v1|{token}|{key_id}|{exp_month:02d}/{exp_year}".encode()
