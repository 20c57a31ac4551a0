"""Shared test setup. Kept minimal: helpers live in tests/topogen.py."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

# Property tests build and parse whole topologies: allow a little more time per example.
settings.register_profile("wgbgp", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("wgbgp")
