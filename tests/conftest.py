"""Shared test setup, kept minimal: helpers live in tests/topogen.py."""

from __future__ import annotations

import os
import shutil

import pytest
from hypothesis import HealthCheck, settings

# Property tests build and parse whole topologies: allow a little more time per example.
settings.register_profile("wgbgp", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("wgbgp")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """`@pytest.mark.real_tools("wg", ..., root=True)`: skip, saying why, when the test
    cannot run here (not root, or a named binary is not installed)."""
    marker = item.get_closest_marker("real_tools")
    if marker is None:
        return
    if marker.kwargs.get("root", True) and os.geteuid() != 0:
        pytest.skip("real_tools: needs root (network namespaces)")
    missing = [b for b in marker.args if shutil.which(b) is None]
    if missing:
        pytest.skip(f"real_tools: {', '.join(missing)} not installed "
                    "(apt-get install wireguard-tools wireguard-go frr nftables iproute2)")
