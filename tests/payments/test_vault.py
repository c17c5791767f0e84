"""CardVault: AES-256-GCM under a key ring, rotation without loss, no CVV, no clear number."""

from __future__ import annotations

import attrs
import pytest

from commercekit.errors import (
    ConfigurationError,
    InvalidInputError,
    NotFoundError,
    UnsupportedTypeError,
)
from commercekit.payments import Card, CardToken, CardVault, InMemoryVaultStore, StaticKeyRing

PAN = "4242424242424242"
K1, K2 = b"\x01" * 32, b"\x02" * 32


def vault(ring: StaticKeyRing, store: InMemoryVaultStore) -> CardVault:
    return CardVault(ring, store)


def test_tokenize_and_detokenize_without_the_cvv() -> None:
    store = InMemoryVaultStore()
    v = vault(StaticKeyRing({"k1": K1}, "k1"), store)
    token = v.tokenize(Card(PAN, 12, 2031, cvv="9731", holder="Ada"))
    card = v.detokenize(token)
    assert card.number.reveal() == PAN
    assert card.cvv is None
    assert (card.exp_month, card.exp_year) == (12, 2031)
    assert v.masked(token) == "424242******4242"
    record = store.get(token.token)
    assert record is not None
    for blob in (record.ciphertext, record.nonce, repr(record).encode()):
        assert PAN.encode() not in blob
        assert b"9731" not in blob
    assert "ciphertext" not in repr(record)


def test_each_card_gets_its_own_nonce_and_token() -> None:
    store = InMemoryVaultStore()
    v = vault(StaticKeyRing({"k1": K1}, "k1"), store)
    a, b = v.tokenize(Card(PAN, 1, 2030)), v.tokenize(Card(PAN, 1, 2030))
    assert a != b
    ra, rb = store.get(a.token), store.get(b.token)
    assert ra is not None
    assert rb is not None
    assert ra.nonce != rb.nonce
    assert ra.ciphertext != rb.ciphertext


def test_keys_rotate_without_losing_data() -> None:
    store = InMemoryVaultStore()
    old = vault(StaticKeyRing({"k1": K1}, "k1"), store)
    tokens = [old.tokenize(Card(PAN, 1, 2030)) for _ in range(5)]
    both = vault(StaticKeyRing({"k1": K1, "k2": K2}, "k2"), store)
    assert both.detokenize(tokens[0]).number.reveal() == PAN  # old records still read
    new_token = both.tokenize(Card(PAN, 1, 2030))
    assert store.get(new_token.token).key_id == "k2"  # type: ignore[union-attr]
    assert both.rotate(batch_size=2) == 2
    assert both.rotate(batch_size=10) == 3
    assert both.rotate() == 0
    only_new = vault(StaticKeyRing({"k2": K2}, "k2"), store)
    assert all(only_new.detokenize(t).number.reveal() == PAN for t in tokens)


def test_a_moved_or_altered_ciphertext_does_not_decrypt() -> None:
    store = InMemoryVaultStore()
    v = vault(StaticKeyRing({"k1": K1}, "k1"), store)
    a, b = v.tokenize(Card(PAN, 1, 2030)), v.tokenize(Card("5555555555554444", 1, 2030))
    ra, rb = store.get(a.token), store.get(b.token)
    assert ra is not None
    assert rb is not None
    store.put(attrs.evolve(ra, ciphertext=rb.ciphertext, nonce=rb.nonce))
    with pytest.raises(InvalidInputError, match="does not decrypt") as info:
        v.detokenize(a)
    assert PAN not in str(info.value)


def test_missing_tokens_and_keys_are_typed_errors() -> None:
    store = InMemoryVaultStore()
    v = vault(StaticKeyRing({"k1": K1}, "k1"), store)
    token = v.tokenize(Card(PAN, 1, 2030))
    with pytest.raises(NotFoundError, match="no key 'k1'"):
        vault(StaticKeyRing({"k2": K2}, "k2"), store).detokenize(token)
    assert v.delete(token)
    assert not v.delete(token)
    with pytest.raises(NotFoundError):
        v.detokenize(token)
    with pytest.raises(InvalidInputError):
        CardToken("not-a-token")
    with pytest.raises(ConfigurationError, match="32 bytes"):
        StaticKeyRing({"k": b"short"}, "k")
    with pytest.raises(ConfigurationError, match="current"):
        StaticKeyRing({"k": K1}, "other")
    assert "\\x01" not in repr(StaticKeyRing({"k1": K1}, "k1"))


@pytest.mark.parametrize("bad", ["vt_abc", 5, None, b"vt_x"])
def test_the_vault_takes_card_tokens_only(bad: object) -> None:
    vault = CardVault(StaticKeyRing({"k": b"\x07" * 32}, "k"), InMemoryVaultStore())
    for call in (vault.detokenize, vault.masked, vault.delete):
        with pytest.raises(UnsupportedTypeError, match="CardToken"):
            call(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["vt_\ud800", "vt_a\nb", "vt_\u00e9"])
def test_a_token_is_printable_ascii(text: str) -> None:
    with pytest.raises(InvalidInputError):
        CardToken(text)
