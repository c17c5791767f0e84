"""Amazon Pay's instant payment notifications, verified and taken into effect once each.

Amazon Pay publishes a notification (``{"ObjectType": "CHARGE", "ObjectId":
..., "NotificationType": "STATE_CHANGE", ...}``) to an Amazon SNS topic,
and SNS posts it to your endpoint, as often as it takes and in any order.
:class:`AmazonPayNotifications` verifies each delivery with a
:class:`SnsVerifier`, then runs the same exactly-once step as the other
webhooks: the SNS ``MessageId`` (kept by SNS across redeliveries) is claimed
in an :class:`IdempotencyStore`, the handler runs, and the claim is recorded;
if the handler raises, the claim is let go so the next delivery runs it again.
The handler gets a :class:`WebhookEvent` whose type is
``"<ObjectType>.<NotificationType>"`` and whose data is Amazon Pay's message.
Read the object it names back (``get_charge``, ``get_refund``) before acting:
the notification says what changed, not what it became.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from commercekit._json import read_json_object
from commercekit.errors import InvalidInputError
from commercekit.metrics import Metrics
from commercekit.payments._amazonpay._sns import SnsMessage, SnsVerifier
from commercekit.payments._typing import Clock, IdempotencyStore
from commercekit.payments._webhooks._processor import WebhookEvent, WebhookOutcome, _ExactlyOnce

__all__ = ["AmazonPayNotifications"]


class AmazonPayNotifications:
    """Verifies SNS deliveries of Amazon Pay notifications and runs *handler* once per message.

    Answer SNS 2xx for both outcomes; 400 for an
    :class:`~commercekit.errors.InvalidInputError` (a forged, tampered or
    stale message: SignatureError is one); 5xx for a
    :class:`~commercekit.errors.TransientError` (a certificate that could
    not be fetched, the same message being handled on another worker) or an
    error from your handler, so SNS delivers it again. A subscription
    confirmation goes to *on_subscription* (visit its ``subscribe_url`` to
    confirm), once.
    """

    def __init__(
        self,
        verifier: SnsVerifier,
        store: IdempotencyStore,
        handler: Callable[[WebhookEvent], None],
        *,
        on_subscription: Callable[[SnsMessage], None] | None = None,
        metrics: Metrics | None = None,
        clock: Clock = time.time,
        lease_s: float = 60.0,
    ) -> None:
        self._verifier = verifier
        self._handler = handler
        self._on_subscription = on_subscription
        self._once = _ExactlyOnce(store, metrics=metrics, clock=clock, lease_s=lease_s)

    def receive(self, body: bytes) -> WebhookOutcome:
        """Verify, parse and handle one SNS delivery; see the class docstring."""
        try:
            message = self._verifier.verify(body)
            event = _event(message)
        except InvalidInputError:
            self._once.rejected()
            raise

        def handle() -> None:
            if message.type == "Notification":
                self._handler(event)
            elif self._on_subscription is not None:
                self._on_subscription(message)

        return self._once.run(
            f"webhook:amazonpay:{message.message_id}", message.message_id, event.type, handle
        )

    def __repr__(self) -> str:
        return f"AmazonPayNotifications({self._verifier!r})"


def _event(message: SnsMessage) -> WebhookEvent:
    if message.type != "Notification":
        return WebhookEvent(message.message_id, message.type, int(message.timestamp), {})
    data = read_json_object(message.message, what="the SNS Message (an Amazon Pay notification)")
    kind = f"{data.get('ObjectType') or 'UNKNOWN'}.{data.get('NotificationType') or 'UNKNOWN'}"
    if not isinstance(data.get("ObjectId"), str):
        raise InvalidInputError("the Amazon Pay notification names no ObjectId")
    return WebhookEvent(message.message_id, kind, int(message.timestamp), data)
