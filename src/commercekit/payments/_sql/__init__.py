"""The SQL side of payments: the idempotency stores (sync and on an AsyncEngine) and transactions.

SQLAlchemy loads only when one of these is used (see ``commercekit.payments.__getattr__``).
"""
