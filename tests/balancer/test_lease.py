"""Leases and their ledger: what a balancer and its leases share, and nothing more."""

from __future__ import annotations

import ast
import inspect

import commercekit.balancer._pool._lease as lease_module
from commercekit.balancer import MaglevBalancer
from commercekit.balancer._pool._lease import LeaseLedger
from commercekit.balancer._pool._member import Member


def test_a_lease_knows_its_ledger_and_member_never_the_balancer() -> None:
    tree = ast.parse(inspect.getsource(lease_module))
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert not any("_base" in name or "_keyed" in name for name in imported), imported


def test_the_ledger_counts_takes_and_releases_and_forwards_failures() -> None:
    failed: list[str] = []
    ledger = LeaseLedger(counting=False, on_failure=lambda m: failed.append(m.name))
    member = Member("a", 1.0, None)
    first, second = ledger.take(member), ledger.take(member)
    assert len(ledger) == 2
    assert member.in_flight == 2
    first.release()
    first.release()  # a second release does nothing
    assert len(ledger) == 1
    assert member.in_flight == 1
    assert first.released
    second.report_failure()
    assert failed == ["a"]
    with second:
        pass
    assert len(ledger) == 0
    assert member.in_flight == 0


def test_a_balancers_in_flight_is_its_ledgers() -> None:
    balancer = MaglevBalancer(["a", "b"])
    with balancer.acquire("k"), balancer.acquire_node("b"):
        assert balancer.in_flight == 2
    assert balancer.in_flight == 0
