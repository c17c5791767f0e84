"""Alembic's script folder of the commerce schema (see ``commercekit.commerce.migrations``)."""
