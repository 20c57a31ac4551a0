"""Observe on IPv6 and dual-stack overlays: nothing may assume IPv4 (pure, fast).

Each test here failed before its fix: doctor built an IPv4 /32 from a tunnel address,
walked every address of an announced prefix to test membership (forever, for an IPv6
/48), and knew single-address prefixes only as /32; gather named only /32 targets and
could pair an IPv6 source with an IPv4 target.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from ipaddress import IPv4Interface, IPv6Interface, ip_network

from topogen import doc, load, pub
from wgbgp.compile import Plan, compile_topology
from wgbgp.observe.doctor import Check
from wgbgp.observe.doctor.context import Context
from wgbgp.observe.doctor.datapath import judge_announced
from wgbgp.observe.doctor.handshake import hub_ping_cause
from wgbgp.observe.gather import Observation, plan_probes
from wgbgp.observe.probe import ProbeResult, ProbeSpec
from wgbgp.observe.status import Address, MachineStatus
from wgbgp.observe.wireguard import WgInterface, WgPeer
from wgbgp.transport import CommandResult


def _plans(announce: dict[str, list[str]], *, v4: bool = True) -> dict[str, Plan]:
    d = doc(len(announce), overlay6="fd00:42::/64")
    if not v4:
        del d["network"]["overlay"]
    for name, prefixes in announce.items():
        d["nodes"][name]["announce"] = prefixes
    return compile_topology(load(d))


def _status(machine: str, *addresses: IPv4Interface | IPv6Interface,
            interfaces: tuple[WgInterface, ...] = ()) -> MachineStatus:
    return MachineStatus(machine, 0.0, interfaces,
                         tuple(Address("lo", a) for a in addresses))


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Fail instead of hanging: a walk over 2**80 addresses never ends by itself."""
    def expire(_sig: int, _frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_doctor_finds_a_client_by_tunnel_address_in_an_ipv6_only_overlay() -> None:
    plans = _plans({"n1": ["2001:db8:1::/48"], "n2": ["2001:db8:2::/48"]}, v4=False)
    tunnel = plans["vps"].tunnels[0]
    addr = tunnel.peers[0].allowed_ips[0]  # n1's tunnel address, a /128
    assert str(addr).endswith("/128")
    # The hub runs a key for n1 other than the topology's: found by its address instead.
    live = WgPeer(pub("someone else"), None, (str(addr),), 0, 0, 0, None)
    hub = _status("vps", interfaces=(WgInterface(tunnel.interface, pub("vps"), 51820, None,
                                                 (live,)),))
    d = Context(Observation({}, statuses={"vps": hub}), plans)
    assert d.client_peer("vps", tunnel, "n1") == (live, "allowed-ips")


def test_doctor_attributes_an_unreachable_announced_address_without_walking_a_v6_48() -> None:
    plans = _plans({"n1": ["2001:db8:1::/48", "192.168.1.0/24"],
                    "n2": ["2001:db8:2::/48", "192.168.2.0/24"]})
    bgp = plans["n1"].bgp
    assert bgp is not None
    session = next(s for s in bgp.sessions if s.peer == "n2" and s.afi == "ipv4")
    spec = ProbeSpec("n1", "ping", "announced", "192.168.2.1", "n2", source="192.168.1.1")
    ping = ProbeResult(spec, CommandResult(tuple(spec.argv()), 1, "", ""))
    d = Context(Observation({}, (ping,), statuses={"n1": _status("n1")}), plans)
    # n2 lacks the route back to n1's source prefix, the second one n1 announces (after
    # an IPv6 /48 that does not hold the source).
    cause = Check("PREFIX_NOT_INSTALLED", "n2", "192.168.1.0/24", "fail", "not installed")
    d.route_fault[("n2", "192.168.1.0/24")] = cause
    with _deadline(10):
        judge_announced(d, "n1", session)
    judged = d.checks[-1]
    assert judged.code == "ANNOUNCED_UNREACHABLE" and judged.verdict == "skip"
    assert judged.because == "PREFIX_NOT_INSTALLED@n2"


def test_doctor_blames_narrow_allowed_ips_missing_an_ipv6_tunnel_address() -> None:
    plans = _plans({"n1": ["2001:db8:1::/48"], "n2": ["2001:db8:2::/48"]}, v4=False)
    tunnel = plans["n1"].tunnels[0]
    d = Context(Observation({}, statuses={"n1": _status("n1")}), plans)
    hub_addr = d.exp.tunnel_address("vps", tunnel.interface)
    assert hub_addr is not None and hub_addr.version == 6
    narrow = Check("ALLOWEDIPS_NARROW", "n1", "peer vps AllowedIPs", "fail", "narrow")
    d.narrow[("n1", "vps")] = narrow
    d.narrow_missing[("n1", "vps")] = [ip_network(hub_addr)]  # its /128
    assert hub_ping_cause(d, "n1", "vps", tunnel) is narrow


def _announced(specs: list[ProbeSpec]) -> set[tuple[str | None, str]]:
    return {(s.source, s.target) for s in specs if s.purpose == "announced"}


def test_gather_targets_an_announced_ipv6_128_without_a_view_of_the_peer() -> None:
    plans = _plans({"n1": ["2001:db8:1::/48"], "n2": ["2001:db8:2::1/128"]}, v4=False)
    statuses = {"n1": _status("n1", IPv6Interface("2001:db8:1::1/128"))}
    assert _announced(plan_probes(plans, statuses, "n1")) == {("2001:db8:1::1", "2001:db8:2::1")}


def test_gather_pings_announced_addresses_within_one_family() -> None:
    # n1's first announced prefix is IPv6, n2 announces IPv4 only: ping from n1's IPv4.
    plans = _plans({"n1": ["2001:db8:1::/48", "192.168.1.0/24"], "n2": ["192.168.2.0/24"]})
    statuses = {
        "n1": _status("n1", IPv6Interface("2001:db8:1::1/128"), IPv4Interface("192.168.1.1/32")),
        "n2": _status("n2", IPv4Interface("192.168.2.1/32")),
    }
    assert _announced(plan_probes(plans, statuses, "n1")) == {("192.168.1.1", "192.168.2.1")}
    # And nothing to ping when the two have no family in common.
    plans = _plans({"n1": ["2001:db8:1::/48"], "n2": ["192.168.2.0/24"]})
    statuses["n1"] = _status("n1", IPv6Interface("2001:db8:1::1/128"))
    assert _announced(plan_probes(plans, statuses, "n1")) == set()
