"""`bgp_state`, what the lab polls while it waits for convergence: the sessions and the
installed BGP routes of one speaker, read by the same parsers and commands as `collect`."""

from __future__ import annotations

import pytest
from obsfix import ReplayExecutor, scenario

from wgbgp.observe import bgp_state, collect
from wgbgp.observe.status import parse_kernel_routes
from wgbgp.transport import CommandResult


def test_bgp_state_reads_what_collect_reads_from_two_commands() -> None:
    obs, plans = scenario("healthy")
    full = collect(ReplayExecutor(obs.snapshots["laptop"]), plans["laptop"]).bgp
    ex = ReplayExecutor(obs.snapshots["laptop"])
    state = bgp_state(ex, plans["laptop"])
    assert state is not None and full is not None
    # The session states (the details come from `show bgp neighbors`, not asked here).
    assert state.neighbors
    assert [(n.address, n.state) for n in state.neighbors] == \
        [(n.address, n.state) for n in full.neighbors]
    assert state.routes and state.routes == full.routes
    # Sessions and routes only: no WireGuard, no BGP table, each command once.
    assert ex.calls == [["vtysh", "-c", "show bgp summary json"],
                        ["vtysh", "-c", "show ip route bgp json"]]


def test_bgp_state_of_a_stopped_daemon_and_of_a_hub_is_none() -> None:
    obs, plans = scenario("frr_down")
    assert bgp_state(ReplayExecutor(obs.snapshots["laptop"]), plans["laptop"]) is None
    obs, plans = scenario("healthy")
    hub = ReplayExecutor(obs.snapshots["vps"])
    assert plans["vps"].bgp is None and bgp_state(hub, plans["vps"]) is None
    assert hub.calls == []


def test_kernel_routes_get_host_lengths_and_skip_empty_entries() -> None:
    v4 = '[{"dst":"100.100.1.0/24","gateway":"10.0.0.2","dev":"wg0"},{"dst":"192.0.2.7"},{}]'
    assert [r.prefix for r in parse_kernel_routes(v4, 32)] == ["100.100.1.0/24", "192.0.2.7/32"]
    (host,) = parse_kernel_routes('[{"dst":"2001:db8::1","dev":"wg0"}]', 128)
    assert host.prefix == "2001:db8::1/128" and host.installed and host.nexthops == ("wg0",)
    for bad in ("not json", '{"dst": 1}', "[1]"):
        with pytest.raises(ValueError):
            parse_kernel_routes(bad, 32)


def test_unparsable_frr_output_is_no_state() -> None:
    obs, plans = scenario("healthy")
    ex = ReplayExecutor(obs.snapshots["laptop"], overrides={
        ("vtysh", "-c", "show bgp summary json"): CommandResult(("vtysh",), 0, "{not json", "")})
    assert bgp_state(ex, plans["laptop"]) is None
