"""The checkout saga: lease, snapshot, reserve, authorize, place, capture, complete; and recovery.

See ``docs/commerce.md`` ("Checkout saga").
"""

from ._model import STEPS, CheckoutResult, CheckoutStatus, FaultHook, Recovered
from ._saga import Checkout

__all__ = ["STEPS", "Checkout", "CheckoutResult", "CheckoutStatus", "FaultHook", "Recovered"]
