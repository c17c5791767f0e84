"""What PaymentService charges, and how a source is told apart without keeping card data.

A request fingerprint must tell two cards apart (the same key with another
card is a :class:`~commercekit.errors.ConflictError`) without putting the card
number into the idempotency store. :class:`SourceFingerprinter` names a source
by what is safe to keep: a provider token or a vault token as it is, and a raw
card by brand, first six, last four and expiry, or by an HMAC-SHA256 of the
whole number and expiry when the shop gives a secret key.
"""

from __future__ import annotations

import hashlib
import hmac

from commercekit.errors import InvalidInputError
from commercekit.payments._card import Card, ProviderToken
from commercekit.payments._typing import PaymentSource
from commercekit.payments._vault._card_vault import CardToken, CardVault

__all__ = ["ServiceSource", "SourceFingerprinter", "resolve_source"]

ServiceSource = Card | ProviderToken | CardToken
"""What the service charges: a card, a provider's token, or a token of the card vault."""


class SourceFingerprinter:
    """Names a payment source for request fingerprints; the name never holds a card number.

    *key*, when given, makes a raw card's name an HMAC of its whole number and
    expiry, so two cards that share brand, first six, last four and expiry are
    still told apart.
    """

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key

    def source_id(self, source: ServiceSource) -> str:
        """The name of *source* (``token:...``, ``vault:...`` or ``card:...``).

        Raises:
            InvalidInputError: *source* is not a Card, a ProviderToken or a CardToken.
        """
        if isinstance(source, ProviderToken):
            return f"token:{source.value}"
        if isinstance(source, CardToken):
            return f"vault:{source.token}"
        if not isinstance(source, Card):
            raise InvalidInputError(
                f"a payment source is a Card, a ProviderToken or a CardToken, not "
                f"{type(source).__name__}"
            )
        expiry = f"{source.exp_month:02d}/{source.exp_year}"
        if self._key is not None:
            digest = hmac.new(
                self._key, f"{source.number.reveal()}|{expiry}".encode(), hashlib.sha256
            )
            return f"card:{digest.hexdigest()}"
        return f"card:{source.number.masked}|{expiry}"

    def __repr__(self) -> str:
        return f"SourceFingerprinter(keyed={self._key is not None})"


def resolve_source(source: ServiceSource, vault: CardVault | None) -> PaymentSource:
    """What the gateway is sent for *source*: a vault token becomes its card.

    Raises:
        InvalidInputError: a vault token without a vault.
        NotFoundError: the vault has no card for the token.
    """
    if isinstance(source, CardToken):
        if vault is None:
            raise InvalidInputError("a vault token needs a PaymentService built with vault=")
        return vault.detokenize(source)
    return source
