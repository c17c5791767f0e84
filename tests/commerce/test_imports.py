"""Importing the commerce services loads no dialect of their own.

See tests/analytics/test_imports.py for why and how it is measured.
"""

from __future__ import annotations

from tests.analytics.test_imports import dialects_after


def test_importing_the_catalog_loads_neither_postgresqls_nor_sqlites_dialect() -> None:
    # commercekit.commerce.catalog imports commercekit.commerce and commercekit.analytics.
    # MySQL's dialect is loaded still by commercekit.repository's outbox table (its
    # LONGTEXT column), which the commerce metadata defines at import.
    assert dialects_after("import commercekit.commerce.catalog") <= {"mysql"}
