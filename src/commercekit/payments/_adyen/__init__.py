"""Adyen (Checkout API v71): the gateway, its wire format and its refusal codes."""
