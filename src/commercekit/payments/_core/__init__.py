"""The service core: the state machine, the ledger, idempotency, reconciliation, the SQL store.

Pure decisions (transitions, ledger rules, fingerprints) live here once and serve both
:class:`PaymentService` and :class:`AsyncPaymentService`. Nothing is re-exported: the public
names come from :mod:`commercekit.payments`.
"""
