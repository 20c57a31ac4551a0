"""Shared test setup, kept minimal: helpers live in tests/topogen.py."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

import labenv

# Property tests build and parse whole topologies: allow a little more time per example.
settings.register_profile("wgbgp", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("wgbgp")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip, saying why, a test that cannot run here, before its fixtures build anything:
    `@pytest.mark.lab(*needs)` (root, the underlay's tools and `needs`: labenv.py) and
    `@pytest.mark.real_tools("wg", ..., root=True)` (not root, or a binary missing)."""
    lab = item.get_closest_marker("lab")
    if lab is not None:
        reason = labenv.skip_reason(*lab.args)
        if reason:
            pytest.skip(reason)
    marker = item.get_closest_marker("real_tools")
    if marker is None:
        return
    if marker.kwargs.get("root", True) and os.geteuid() != 0:
        pytest.skip("real_tools: needs root (network namespaces)")
    missing = [b for b in marker.args if shutil.which(b) is None]
    if missing:
        pytest.skip(f"real_tools: {', '.join(missing)} not installed "
                    "(apt-get install wireguard-tools wireguard-go frr nftables iproute2)")


def _no_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    if os.environ.get("WGBGP_NO_SKIP") == "1" and report.skipped and not hasattr(report,
                                                                                 "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, and CI allows no skip (WGBGP_NO_SKIP=1): {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """With WGBGP_NO_SKIP=1 (CI sets it) a skip is a failure: on the machine CI prepared,
    a test skipped for a missing tool or for lack of root is a missing install step."""
    outcome = yield
    _no_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):  # type: ignore[no-untyped-def]
    """The same for a whole module skipped at import (`allow_module_level=True`)."""
    outcome = yield
    _no_skip(outcome.get_result())


_EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
_LOCKS_BEFORE = set(_EXAMPLES.glob("*.lock"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The suite never writes into the repository: a lock file that appeared beside an
    example means a test ran check/render/plan on the example itself, not on a copy."""
    new = sorted(set(_EXAMPLES.glob("*.lock")) - _LOCKS_BEFORE)
    if new and not hasattr(session.config, "workerinput"):  # once, on the controller
        print(f"\nERROR: the tests wrote {', '.join(p.name for p in new)} under examples/: "
              "run check/render/plan on a copy of the example")
        session.exitstatus = 1
