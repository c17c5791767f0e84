"""Stripe (PaymentIntents API): the gateway, its wire format and its decline codes."""
