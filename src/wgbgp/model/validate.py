"""Semantic checks over a parsed topology: what the schema alone cannot see. The checks
live by theme in `model/checks/` (addressing, identity, prefixes, policy, secrets); this
is their one entry point."""

from __future__ import annotations

from .capacity import capacity_issues
from .checks import (
    MESH_SESSIONS_HINT,
    check_addresses,
    check_asns,
    check_endpoints,
    check_exits,
    check_keys,
    check_lab,
    check_lints,
    check_names,
    check_peerings,
    check_planes,
    check_policy,
    check_prefixes,
    check_secrets,
    covering,
    reach_targets,
    secrets_in_text,
)
from .issues import Issue
from .schema import Topology

__all__ = ["MESH_SESSIONS_HINT", "check", "covering", "reach_targets", "secrets_in_text"]


def check(topology: Topology) -> list[Issue]:
    """Every error and warning in a schema-valid topology."""
    return [*check_names(topology), *check_endpoints(topology), *check_planes(topology),
            *check_addresses(topology), *check_asns(topology),
            *check_prefixes(topology), *check_keys(topology), *check_peerings(topology),
            *check_lab(topology), *check_lints(topology), *check_policy(topology),
            *check_exits(topology), *check_secrets(topology),
            *capacity_issues(topology)]
