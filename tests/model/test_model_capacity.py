"""check warns when a hub-mode hub has more clients than its route server's daemon carries
on a 1 GB VPS (model/capacity.py); the wording is in tests/model/errors/hub-capacity.*."""

from __future__ import annotations

import pytest

from wgbgp.model import capacity
from wgbgp.model.capacity import CAPACITY, capacity_issues
from wgbgp.model.schema import Topology


def topology(clients: int, mode: str = "hub", hubs: int = 1) -> Topology:
    d: dict = {
        "network": {"name": "big", "overlay": "10.0.0.0/18", "mode": mode},
        "hubs": {f"h{i}": {"endpoint": f"198.51.100.{i + 1}:51820", "asn": 64600 + i,
                           **({"overlay": f"10.{64 * i}.0.0/18"} if i else {})}
                 for i in range(hubs)},
        "nodes": {f"c{i}": {"asn": 4200000000 + i} for i in range(clients)},
    }
    return Topology.model_validate(d)


def test_frr_hub_at_capacity_is_quiet_one_more_warns():
    limit = CAPACITY["frr"].clients
    assert limit == 900  # the README's figure for a 1 GB hub
    assert list(capacity_issues(topology(limit))) == []
    [issue] = capacity_issues(topology(limit + 1))
    assert issue.level == "warning" and issue.loc == ("hubs", "h0")
    assert f"{limit + 1} clients" in issue.message and f"about {limit}" in issue.message
    assert "at least 2 GB" in issue.fix and "2 networks" in issue.fix


def test_every_hub_warns_another_hub_does_not_split_the_load():
    issues = list(capacity_issues(topology(1000, hubs=2)))
    assert [i.loc for i in issues] == [("hubs", "h0"), ("hubs", "h1")]
    assert all("does not help" in i.fix for i in issues)


def test_mesh_hubs_run_no_route_server():
    assert list(capacity_issues(topology(1000, mode="mesh"))) == []


def test_the_figure_is_the_daemons(monkeypatch: pytest.MonkeyPatch):
    """A BIRD hub (issue 19: `hubs.NAME.daemon`) is held to BIRD's figure."""
    monkeypatch.setattr(capacity, "hub_daemon", lambda hub: "bird")
    assert CAPACITY["bird"].provisional
    assert list(capacity_issues(topology(1000))) == []
    [issue] = capacity_issues(topology(CAPACITY["bird"].clients + 1))
    assert "BIRD" in issue.message and "provisional" in issue.message


def test_a_hub_without_a_daemon_field_runs_frr():
    assert capacity.hub_daemon(topology(1).hubs["h0"]) == "frr"
