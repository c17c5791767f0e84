"""The shipped Prometheus rules pass promtool; the Grafana dashboard follows the catalogue."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from commercekit.analytics import dashboard_file, dashboard_from_catalogue, rules_file
from commercekit.errors import InvalidInputError
from tests.conftest import missing_service

CATALOGUE = Path(__file__).parent.parent.parent / "docs" / "metrics.md"


def test_promtool_checks_the_shipped_rules() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        missing_service("promtool is not installed (Debian package prometheus)")
    result = subprocess.run(
        [promtool, "check", "rules", str(rules_file())],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    """``commercekit.rules.test.yml``: the checkout-latency burn-rate alerts fire on slow
    checkouts (``commercekit_commerce_checkout_seconds``), not on slow payment calls."""
    promtool = shutil.which("promtool")
    if promtool is None:
        missing_service("promtool is not installed (Debian package prometheus)")
    result = subprocess.run(
        [promtool, "test", "rules", str(Path(__file__).with_name("commercekit.rules.test.yml"))],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_checkout_latency_slo_is_built_on_the_checkout_histogram() -> None:
    text = rules_file().read_text()
    group = text[
        text.index("commercekit-slo-checkout-latency") : text.index("commercekit-slo-origin")
    ]
    assert group.count('commercekit_commerce_checkout_seconds_bucket{le="2.5"}') == 7
    assert "commercekit_payments_latency_seconds" not in group


def test_burn_rate_alerts_follow_the_sre_workbook() -> None:
    text = rules_file().read_text()
    for slo in ("checkout_latency", "origin_errors"):
        for long, short, factor in (("1h", "5m", "14.4"), ("6h", "30m", "6"), ("1d", "2h", "3")):
            pair = (
                f"commercekit:slo_{slo}_errors:ratio_rate{long} > ({factor} *",
                f"commercekit:slo_{slo}_errors:ratio_rate{short} > ({factor} *",
            )
            assert all(p in text for p in pair), (slo, long)


def test_the_dashboard_has_a_panel_for_every_catalogued_metric() -> None:
    catalogue = CATALOGUE.read_text()
    names = set(
        re.findall(
            r"^\| `(commercekit_[a-z0-9_]+)` \| (?:counter|gauge|histogram)", catalogue, re.M
        )
    )
    board = dashboard_from_catalogue(catalogue)
    exprs = " ".join(t["expr"] for p in board["panels"] for t in p.get("targets", []))
    assert names
    assert all(name in exprs for name in names)
    with pytest.raises(InvalidInputError):
        dashboard_from_catalogue("# no tables here")


def test_the_shipped_dashboard_is_the_one_the_catalogue_generates() -> None:
    """Regenerate it after a catalogue change:
    ``python -m commercekit.analytics dashboard docs/metrics.md > .../grafana-dashboard.json``."""
    shipped = json.loads(dashboard_file().read_text())
    generated = dashboard_from_catalogue(CATALOGUE.read_text())
    missing = {p.get("title") for p in generated["panels"]} - {
        p.get("title") for p in shipped["panels"]
    }
    assert not missing, f"panels missing from the shipped dashboard: {sorted(missing)}"
    assert shipped == generated
