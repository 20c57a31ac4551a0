"""Doctor rules on observations captured from real wireguard-go and FRR (see obsfix.py).

Every scenario injected one fault into a healthy network. Doctor must name that fault
first, by its code, and report no other failure: the symptoms the fault causes further
up (sessions down, prefixes missing, pings failing) are skipped *because* of it.
"""

from __future__ import annotations

import json
import re

import pytest
from obsfix import SCENARIOS, mutate, scenario, stdout, topology_text

from wgbgp.compile import compile_topology
from wgbgp.model import parse
from wgbgp.observe.doctor import CODES, LAYERS, diagnose
from wgbgp.observe.gather import Observation

# scenario -> (code, machine) doctor must name, seeing every machine
FAULTS = {
    "hub_not_forwarding": ("HUB_NOT_FORWARDING", "vps"),
    "hub_firewall": ("HUB_NOT_FORWARDING", "vps"),
    "ttl1": ("BGP_TTL", "laptop"),
    "hub_allowedips_narrow": ("ALLOWEDIPS_NARROW", "vps"),
    "client_allowedips_narrow": ("ALLOWEDIPS_NARROW", "laptop"),
    "udp_blocked": ("UDP_BLOCKED", "laptop"),
    "udp_blocked_recent": ("UDP_BLOCKED", "laptop"),  # handshake still < 180 s old
    "wrong_key": ("WG_KEY_MISMATCH", "vps"),
    "wrong_key_recent": ("WG_KEY_MISMATCH", "vps"),
    "nat_expired": ("NAT_MAPPING_EXPIRED", "laptop"),
    "asn_mismatch": ("ASN_MISMATCH", "laptop"),
    "policy_missing": ("POLICY_MISSING", "laptop"),
    "mtu_blackhole": ("MTU_BLACKHOLE", "laptop"),
    "frr_down": ("BGP_DAEMON_DOWN", "laptop"),
    "bird_down": ("BGP_DAEMON_DOWN", "builder"),  # BIRD stopped on a BIRD node
    "neighbor_address": ("BGP_NEIGHBOR_MISSING", "laptop"),
}


def test_every_fixture_is_covered() -> None:
    assert set(SCENARIOS) == {"healthy", *FAULTS}


def test_healthy_network_has_no_findings() -> None:
    obs, plans = scenario("healthy")
    report = diagnose(obs, plans)
    assert report.healthy and report.findings == []
    judged = {(c.code, c.machine) for c in report.checks if c.verdict == "ok"}
    for client in ("laptop", "friend"):
        for code in ("WG_NO_HANDSHAKE", "WG_NO_KEEPALIVE", "ALLOWEDIPS_NARROW",
                     "PEER_UNREACHABLE", "BGP_DAEMON_DOWN", "BGP_SESSION_DOWN",
                     "POLICY_MISSING", "PREFIX_NOT_RECEIVED", "ANNOUNCED_UNREACHABLE",
                     "MTU_BLACKHOLE"):
            assert (code, client) in judged, (code, client)
    assert ("HUB_NOT_FORWARDING", "vps") in judged


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_fault_is_named_first_and_alone(name: str) -> None:
    obs, plans = scenario(name)
    report = diagnose(obs, plans)
    code, machine = FAULTS[name]
    assert not report.healthy
    first = report.findings[0]
    assert (first.code, first.machine) == (code, machine), report.codes
    assert first.verdict == "fail" and first.evidence and first.fix
    fails = [c for c in report.checks if c.verdict == "fail"]
    assert len(fails) == 1, [c.ref for c in fails]
    # Every symptom points at a finding that exists.
    refs = {c.ref for c in report.checks}
    assert all(c.because in refs for c in report.checks if c.verdict == "skip")


def test_a_bird_node_gets_birds_words_and_commands() -> None:
    """Captured with BIRD stopped on `builder` (`birdc down`): the finding and its fix speak
    of BIRD, birdc and bird.conf; FRR's bgpd, vtysh and /etc/frr/daemons are not its."""
    obs, plans = scenario("bird_down")
    first = diagnose(obs, plans).findings[0]
    assert (first.code, first.machine, first.subject) == ("BGP_DAEMON_DOWN", "builder", "bird")
    assert first.message == "BIRD is not running on builder"
    assert first.evidence[0].startswith("birdc: Unable to connect to server control socket")
    assert "bird -c /etc/bird/bird.conf" in first.fix and "wgbgp apply" in first.fix
    said = " ".join((first.message, *first.evidence, first.fix))
    assert not any(w in said for w in ("vtysh", "bgpd", "/etc/frr", "FRR"))
    # An FRR node's stays FRR's.
    obs, plans = scenario("frr_down")
    frr = diagnose(obs, plans).findings[0]
    assert frr.subject == "bgpd" and "/etc/frr/daemons" in frr.fix


def test_sessions_with_a_dead_bird_node_are_skipped_because_of_it() -> None:
    obs, plans = scenario("bird_down")
    report = diagnose(obs, plans)
    # laptop (FRR) has a session with builder (BIRD): skipped, because of BIRD being down.
    skipped = next(c for c in report.checks if c.machine == "laptop"
                   and c.code == "BGP_SESSION_DOWN")
    assert skipped.verdict == "skip" and skipped.because == "BGP_DAEMON_DOWN@builder"


def test_a_code_is_its_own_name_in_json_and_comparisons() -> None:
    """Judges name codes as `Code` members; reports must read as the plain strings did."""
    from wgbgp.observe.doctor import Check, Code
    check = Check(Code.BGP_TTL, "laptop", "session with friend", "fail", "ttl 1")
    assert type(check.code) is str and check.code == "BGP_TTL" == Code.BGP_TTL
    assert check.to_json() == Check("BGP_TTL", "laptop", "session with friend", "fail",
                                    "ttl 1").to_json()
    assert json.dumps(Code.BGP_TTL) == '"BGP_TTL"' and f"{Code.BGP_TTL}" == "BGP_TTL"
    assert CODES["BGP_TTL"] is Code.BGP_TTL and (Code.BGP_TTL.layer, LAYERS[3]) == (3, "bgp")
    assert list(CODES) == [c.value for c in Code] and len(CODES) == 31


def test_daemon_words() -> None:
    from wgbgp.observe.doctor.daemon import Daemon
    bird, frr = Daemon("bird"), Daemon("frr")
    assert bird.show_session("best-friend", "10.0.0.3").startswith(
        '`birdc show protocols all "best_friend_*"`')
    assert frr.show_session("best-friend", "10.0.0.3").startswith(
        "`vtysh -c 'show bgp neighbors 10.0.0.3'`")
    assert bird.neighbor_line("10.0.0.3", 65020) == (
        "`neighbor 10.0.0.3 as 65020;` in its BGP protocol")
    assert frr.neighbor_line("10.0.0.3", 65020) == "`neighbor 10.0.0.3 remote-as 65020`"
    assert (bird.process, bird.conf, frr.process, frr.conf) == (
        "bird", "bird.conf", "bgpd", "frr.conf")


# What doctor says run on one machine only (no view of the others): the best it can.
PARTIAL = [
    ("hub_not_forwarding", ("laptop",), "PEER_UNREACHABLE", "laptop"),
    ("hub_not_forwarding", ("vps",), "HUB_NOT_FORWARDING", "vps"),
    ("hub_not_forwarding", ("laptop", "friend"), "HUB_NOT_FORWARDING", "vps"),
    ("hub_firewall", ("laptop", "friend"), "HUB_NOT_FORWARDING", "vps"),
    ("udp_blocked", ("laptop",), "WG_NO_HANDSHAKE", "laptop"),
    ("udp_blocked", ("vps",), "CLIENT_UNREACHABLE", "laptop"),
    ("wrong_key", ("laptop",), "WG_NO_HANDSHAKE", "laptop"),
    ("udp_blocked_recent", ("laptop",), "HUB_UNREACHABLE", "laptop"),
    ("wrong_key_recent", ("laptop",), "HUB_UNREACHABLE", "laptop"),
    ("wrong_key", ("vps",), "WG_KEY_MISMATCH", "vps"),
    ("ttl1", ("laptop",), "BGP_TTL", "laptop"),
    ("ttl1", ("friend",), "BGP_SESSION_DOWN", "friend"),
    ("asn_mismatch", ("friend",), "ASN_MISMATCH", "friend"),
    ("frr_down", ("friend",), "BGP_DAEMON_DOWN", "laptop"),
    ("policy_missing", ("friend",), "PREFIX_NOT_RECEIVED", "friend"),
    ("mtu_blackhole", ("friend",), "MTU_BLACKHOLE", "friend"),
    ("hub_allowedips_narrow", ("laptop",), "ANNOUNCED_UNREACHABLE", "laptop"),
    ("client_allowedips_narrow", ("friend",), "PEER_UNREACHABLE", "friend"),
    ("neighbor_address", ("friend",), "BGP_SESSION_DOWN", "friend"),
]


@pytest.mark.parametrize("name, view, code, machine", PARTIAL)
def test_partial_view(name: str, view: tuple[str, ...], code: str, machine: str) -> None:
    obs, plans = scenario(name)
    report = diagnose(obs.only(view), plans)
    assert not report.healthy
    first = report.findings[0]
    assert (first.code, first.machine) == (code, machine), report.codes
    assert set(report.unobserved) == set(plans) - set(view)


def test_nat_expiry() -> None:
    """The hub's probe, sent before the client speaks, shows the mapping gone; seen from
    the client alone, a missing keepalive explains the flapping session."""
    obs, plans = scenario("nat_expired")
    full = diagnose(obs, plans)
    assert full.codes == ["NAT_MAPPING_EXPIRED"]
    assert any("before laptop sent anything" in e for e in full.findings[0].evidence)
    for view in (("laptop",), ("laptop", "friend")):
        assert diagnose(obs.only(view), plans).codes == ["NAT_MAPPING_EXPIRED"], view


def test_missing_keepalive_alone_is_a_warning() -> None:
    obs, plans = scenario("healthy")
    obs = mutate(obs, "laptop", "wg", stdout(lambda s: re.sub(r"\t25$", "\toff", s,
                                                              flags=re.M)))
    report = diagnose(obs, plans)
    assert report.healthy and report.codes == ["WG_NO_KEEPALIVE"]
    assert "PersistentKeepalive = 25" in report.findings[0].fix


def test_without_probes_the_snapshots_still_tell() -> None:
    for name, code in (("healthy", None), ("udp_blocked", "UDP_BLOCKED"),
                       ("ttl1", "BGP_TTL"), ("policy_missing", "POLICY_MISSING"),
                       ("frr_down", "BGP_DAEMON_DOWN"), ("wrong_key", "WG_KEY_MISMATCH"),
                       ("hub_not_forwarding", "HUB_NOT_FORWARDING")):
        obs, plans = scenario(name)
        bare = Observation(obs.snapshots, (), obs.unobserved)
        report = diagnose(bare, plans)
        assert report.codes[:1] == ([code] if code else []), (name, report.codes)


# -- rules shown on edited real outputs ---------------------------------------------------

def first(obs: Observation, plans: dict) -> tuple[str, str]:
    f = diagnose(obs, plans).findings[0]
    return f.code, f.machine


def test_interface_down() -> None:
    obs, plans = scenario("healthy")
    obs = mutate(obs, "laptop", "wg", stdout(lambda s: ""))
    assert first(obs, plans) == ("WG_INTERFACE_MISSING", "laptop")


def test_hub_runs_another_key() -> None:
    obs, plans = scenario("healthy")
    other = "Z" * 43 + "="
    obs = mutate(obs, "vps", "wg", stdout(
        lambda s: re.sub(r"^(wg-vps\t\(redacted\)\t)\S+", rf"\g<1>{other}", s)))
    code, machine = first(obs, plans)
    assert (code, machine) == ("WG_KEY_MISMATCH", "vps")


def test_client_dials_wrong_endpoint() -> None:
    obs, plans = scenario("udp_blocked")
    obs = mutate(obs, "laptop", "wg", stdout(
        lambda s: s.replace("192.168.201.1:51820", "192.168.201.1:51821")))
    assert first(obs, plans) == ("WG_ENDPOINT_MISMATCH", "laptop")


def test_hub_listens_on_another_port() -> None:
    obs, plans = scenario("udp_blocked")
    obs = mutate(obs, "vps", "wg", stdout(lambda s: s.replace("\t51820\toff", "\t51999\toff")))
    assert first(obs, plans) == ("WG_ENDPOINT_MISMATCH", "vps")


def test_mtu_mismatch_is_a_warning() -> None:
    obs, plans = scenario("healthy")
    obs = mutate(obs, "friend", "addresses", stdout(
        lambda s: re.sub(r'("ifname":"wg-vps",[^}]*?"mtu":)1420', r"\g<1>1500", s)))
    report = diagnose(obs, plans)
    assert report.healthy and report.codes == ["MTU_MISMATCH"]


def test_tunnel_address_missing() -> None:
    obs, plans = scenario("healthy")
    obs = mutate(obs, "vps", "addresses", stdout(lambda s: s.replace('"10.0.0.1"', '"10.9.9.9"')))
    assert ("WG_ADDRESS_MISSING", "vps") in {(c.code, c.machine) for c in
                                             diagnose(obs, plans).findings}


def test_frr_without_bgp_instance() -> None:
    obs, plans = scenario("healthy")
    obs = mutate(obs, "friend", "bgp_summary", stdout(lambda s: "{\n}\n"))
    assert first(obs, plans) == ("BGP_NOT_CONFIGURED", "friend")


def test_local_asn_differs() -> None:
    obs, plans = scenario("asn_mismatch")
    obs = mutate(obs, "laptop", "bgp_summary", stdout(lambda s: s.replace('"as":65010',
                                                                          '"as":65011')))
    assert first(obs, plans) == ("ASN_MISMATCH", "laptop")


def test_received_but_not_installed() -> None:
    obs, plans = scenario("healthy")
    obs = mutate(obs, "friend", "bgp_routes", stdout(lambda s: s.replace('"installed":true',
                                                                         '"installed":false')))
    assert first(obs, plans) == ("PREFIX_NOT_INSTALLED", "friend")


def test_prefix_not_originated_by_peer() -> None:
    obs, plans = scenario("healthy")
    # friend's table loses its own prefix; laptop then has nothing from friend.
    obs = mutate(obs, "friend", "bgp_table", stdout(lambda s: "{}"))
    obs = mutate(obs, "laptop", "bgp_table", stdout(
        lambda s: s.replace('"100.100.100.2/32"', '"100.100.100.99/32"')))
    report = diagnose(obs, plans)
    assert report.findings[0].code == "PREFIX_NOT_ORIGINATED"
    assert report.findings[0].machine == "friend"


def test_forwarding_off_on_a_client_routing_a_lan() -> None:
    obs, _ = scenario("healthy")
    lan = topology_text("healthy").replace("announce: [100.100.100.2/32]",
                                           "announce: [100.100.100.4/30]")
    plans = compile_topology(parse(lan, "lan.yaml")[0])
    assert plans["friend"].ip_forward
    codes = {(c.code, c.machine) for c in diagnose(obs, plans).findings}
    assert ("FORWARDING_OFF", "friend") in codes


def test_machine_not_reachable() -> None:
    obs, plans = scenario("healthy")
    broken = dict.fromkeys(("wg", "addresses", "ip_forward"), "")
    for key in broken:
        obs = mutate(obs, "friend", key,
                     lambda o: type(o)(o.argv, -1, "", "OSError: ssh: connection refused"))
    assert first(obs, plans) == ("MACHINE_UNREACHABLE", "friend")


# -- report shape -------------------------------------------------------------------------

def test_report_json_is_stable() -> None:
    obs, plans = scenario("ttl1")
    data = json.loads(json.dumps(diagnose(obs, plans).to_json()))
    assert data["schema"] == "wgbgp.doctor/1" and data["healthy"] is False
    assert data["machines"] == ["vps", "laptop", "friend"]
    f = data["findings"][0]
    assert set(f) == {"code", "machine", "subject", "verdict", "layer", "message", "evidence",
                      "fix", "because"}
    assert f["layer"] == "bgp" and f["code"] in CODES
    assert {c["layer"] for c in data["checks"]} <= set(LAYERS.values())


def test_every_code_is_documented() -> None:
    for name in SCENARIOS:
        obs, plans = scenario(name)
        for c in diagnose(obs, plans).checks:
            assert c.code in CODES


# -- without a topology -------------------------------------------------------------------

@pytest.mark.parametrize("name, machine, code, healthy", [
    ("healthy", "laptop", None, True),
    ("healthy", "vps", None, True),
    # No FRR daemon at all: maybe a machine without BGP. Without a topology, a warning.
    ("frr_down", "laptop", "BGP_DAEMON_DOWN", True),
    ("asn_mismatch", "friend", "ASN_MISMATCH", False),
    ("policy_missing", "laptop", "POLICY_MISSING", False),
    ("udp_blocked", "laptop", "WG_NO_HANDSHAKE", False),
    # TTL 1 to a neighbour that is not a WireGuard peer: a local fact (the topology's
    # multihop is not needed to see it).
    ("ttl1", "laptop", "BGP_TTL", False),
])
def test_live_only(name: str, machine: str, code: str | None, healthy: bool) -> None:
    obs, _ = scenario(name)
    report = diagnose(obs.only((machine,)))
    assert report.codes[:1] == ([code] if code else [])
    assert report.healthy == healthy
