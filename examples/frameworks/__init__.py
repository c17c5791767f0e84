"""What the framework examples share: the shop they serve and a Stripe-shaped loopback provider.

``examples/frameworks_fastapi.py``, ``frameworks_starlette.py`` and
``frameworks_django.py`` each wire the same :class:`~frameworks.shop.Shop`
(payments, orders, metrics, webhooks, the CDN) into one web framework; see
``docs/frameworks.md``.
"""
