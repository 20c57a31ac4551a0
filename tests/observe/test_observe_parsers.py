"""Parsers of `wg show all dump`, FRR's JSON and ping, on outputs captured from the real tools."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from obsfix import raw

from wgbgp.observe.frr import FrrJsonError, parse_neighbors, parse_routes, parse_table
from wgbgp.observe.probe import ProbeSpec, parse_ping
from wgbgp.observe.wireguard import REDACTED, DumpError, parse_dump, redact_dump
from wgbgp.transport import CommandResult

# -- WireGuard --------------------------------------------------------------------------


def test_hub_dump_real() -> None:
    text = raw("healthy", "vps", "wg").stdout
    (iface,) = parse_dump(text)
    assert iface.name == "wg-vps" and iface.listen_port == 51820 and iface.fwmark is None
    assert len(iface.peers) == 2
    by_ip = {p.allowed_ips[0]: p for p in iface.peers}
    laptop = by_ip["10.0.0.10/32"]
    assert laptop.allowed_ips == ("10.0.0.10/32", "100.100.100.1/32")
    assert laptop.endpoint and laptop.endpoint.startswith("192.168.201.2:")  # as seen
    assert laptop.latest_handshake > 1_000_000_000 and laptop.rx_bytes > 0
    assert laptop.keepalive is None and not laptop.has_preshared_key


def test_client_dump_real() -> None:
    (iface,) = parse_dump(raw("healthy", "laptop", "wg").stdout)
    (hub,) = iface.peers
    assert hub.endpoint == "192.168.201.1:51820"
    assert hub.allowed_ips == ("0.0.0.0/0", "::/0")
    assert hub.keepalive == 25


def test_never_handshaked_peer() -> None:
    (iface,) = parse_dump(raw("udp_blocked", "laptop", "wg").stdout)
    peer = iface.peers[0]
    assert peer.latest_handshake == 0 and peer.handshake_age(2e9) is None
    assert peer.rx_bytes == 0 and peer.tx_bytes > 0


def test_unknown_peer_has_no_endpoint() -> None:
    (iface,) = parse_dump(raw("wrong_key", "vps", "wg").stdout)
    assert any(p.endpoint is None and p.latest_handshake == 0 for p in iface.peers)


def test_fixtures_hold_no_private_key() -> None:
    for machine in ("vps", "laptop", "friend"):
        first = raw("healthy", machine, "wg").stdout.splitlines()[0].split("\t")
        assert first[1] == REDACTED


def test_redact_removes_private_and_preshared_keys() -> None:
    priv, psk = "A" * 43 + "=", "B" * 43 + "="
    text = (f"wg0\t{priv}\tPUB=\t51820\toff\n"
            f"wg0\tPEER=\t{psk}\t1.2.3.4:5\t10.0.0.2/32\t0\t0\t0\toff\n")
    red = redact_dump(text)
    assert priv not in red and psk not in red and red.count(REDACTED) == 2
    (iface,) = parse_dump(red)
    assert iface.peers[0].has_preshared_key
    assert "private" not in repr(iface).lower()


def test_empty_allowed_ips_fwmark_and_ipv6_endpoint() -> None:
    text = ("wg0\t(none)\tPUB=\t0\t0x1234\n"
            "wg0\tPEER=\t(none)\t[2001:db8::1]:51820\t(none)\t5\t1\t2\t30\n")
    (iface,) = parse_dump(text)
    assert iface.fwmark == 0x1234 and iface.listen_port is None and iface.public_key == "PUB="
    p = iface.peers[0]
    assert p.allowed_ips == () and p.endpoint == "[2001:db8::1]:51820" and p.keepalive == 30


@pytest.mark.parametrize("text, why", [
    ("wg0\ta\tb\n", "expected 5"),
    ("wg0\tPEER=\t(none)\t(none)\t(none)\t0\t0\t0\toff\n", "before its interface"),
    ("wg0\t(none)\tPUB=\t51820\toff\nwg0\tP=\t(none)\t(none)\t(none)\tsoon\t0\t0\toff\n",
     "latest handshake"),
])
def test_bad_dump_is_an_error(text: str, why: str) -> None:
    with pytest.raises(DumpError, match=why):
        parse_dump(text)


key = st.text("ABCDEFabcdef0123456789+/", min_size=43, max_size=43).map(lambda s: s + "=")
peer = st.tuples(key, st.lists(st.sampled_from(["10.0.0.2/32", "0.0.0.0/0", "::/0",
                                                 "192.0.2.0/24"]), unique=True),
                 st.integers(0, 2**40), st.integers(0, 2**50), st.integers(0, 2**50),
                 st.one_of(st.none(), st.integers(1, 65535)),
                 st.one_of(st.none(), st.just("198.51.100.7:51820")))


@given(st.dictionaries(st.sampled_from(["wg0", "wg-hub", "wg-b"]),
                       st.tuples(key, st.integers(1, 65535), st.lists(peer, max_size=4)),
                       max_size=3))
def test_dump_roundtrip(spec: dict) -> None:
    lines = []
    for name, (pub, port, peers) in spec.items():
        lines.append(f"{name}\tSECRET=\t{pub}\t{port}\toff")
        for pk, allowed, hs, rx, tx, ka, ep in peers:
            lines.append("\t".join([name, pk, "(none)", ep or "(none)",
                                    ",".join(allowed) or "(none)", str(hs), str(rx), str(tx),
                                    str(ka) if ka else "off"]))
    parsed = parse_dump("\n".join(lines) + "\n")
    assert [i.name for i in parsed] == list(spec)
    for iface, (pub, port, peers) in zip(parsed, spec.values(), strict=True):
        assert iface.public_key == pub and iface.listen_port == port
        assert [(p.public_key, p.allowed_ips, p.latest_handshake, p.rx_bytes, p.tx_bytes,
                 p.keepalive, p.endpoint) for p in iface.peers] == [
            (pk, tuple(a), hs, rx, tx, ka, ep) for pk, a, hs, rx, tx, ka, ep in peers]


# -- FRR --------------------------------------------------------------------------------


def neighbors(scenario: str, machine: str, detail: bool = True):
    summary = raw(scenario, machine, "bgp_summary").stdout
    detail_text = raw(scenario, machine, "bgp_neighbors").stdout if detail else None
    return parse_neighbors(summary, detail_text)


def test_established_neighbor_real() -> None:
    router_id, asn, (n,) = neighbors("healthy", "laptop")
    assert (router_id, asn) == ("10.0.0.10", 65010)
    assert n.address == "10.0.0.2" and n.state == "Established" and n.established
    assert n.remote_as == 65020 and n.local_as == 65010 and n.description == "friend"
    assert n.prefixes_received == 1 and n.prefixes_sent == 1
    assert n.established_for is not None and n.established_for >= 0
    assert n.multihop == 2 and n.peer_group == "MESH"
    assert n.policy_in and n.policy_out
    assert n.filters_in == ("prefix-list FROM-friend",)
    assert n.filters_out == ("prefix-list OWN",)


def test_ttl1_neighbor_has_no_multihop_field() -> None:
    _, _, (n,) = neighbors("ttl1", "laptop")
    assert n.multihop == 1 and not n.established
    assert n.prefixes_received is None and n.established_for is None


def test_bad_peer_as_notification_real() -> None:
    _, _, (n,) = neighbors("asn_mismatch", "friend")
    assert n.last_notification == "OPEN Message Error/Bad Peer AS"
    _, _, (m,) = neighbors("asn_mismatch", "laptop")
    assert m.remote_as == 65099 and m.state == "Active"


def test_policy_missing_real() -> None:
    _, _, (n,) = neighbors("policy_missing", "laptop")
    assert n.established and n.policy_in is False and n.policy_out is False
    assert n.filters_in == () and n.prefixes_received == 0 and n.prefixes_sent == 0


def test_summary_alone_leaves_detail_unknown() -> None:
    _, _, (n,) = neighbors("healthy", "laptop", detail=False)
    assert n.established and n.multihop is None and n.policy_in is None


def test_bgp_table_and_rib_real() -> None:
    paths = parse_table(raw("healthy", "laptop", "bgp_table").stdout)
    local = [p for p in paths if p.peer is None]
    learned = [p for p in paths if p.peer == "10.0.0.2"]
    assert [p.prefix for p in local] == ["100.100.100.1/32"]
    assert learned[0].prefix == "100.100.100.2/32" and learned[0].valid and learned[0].best
    assert learned[0].as_path == "65020"
    (route,) = parse_routes(raw("healthy", "laptop", "bgp_routes").stdout, ("bgp",))
    assert route.prefix == "100.100.100.2/32" and route.installed and route.selected
    assert route.nexthops == ("10.0.0.2 via wg-vps",) and route.interfaces == ("wg-vps",)


def test_frr_garbage_is_an_error_and_empty_is_nothing() -> None:
    with pytest.raises(FrrJsonError, match="show bgp summary json"):
        parse_neighbors("% BGP instance not found\n")
    assert parse_neighbors("") == (None, None, ())
    assert parse_neighbors("{}") == (None, None, ())
    assert parse_routes("{\n}\n") == ()


# -- ping -------------------------------------------------------------------------------

def ping_output(stdout: str, rc: int = 0, stderr: str = "") -> CommandResult:
    return CommandResult(("ping",), rc, stdout, stderr)


def test_ping_summary_lines() -> None:
    ok = ping_output("--- 10.0.0.1 ping statistics ---\n"
                     "3 packets transmitted, 3 received, 0% packet loss, time 402ms\n")
    part = ping_output("3 packets transmitted, 2 received, 33.3333% packet loss, time 405ms\n", 1)
    none = ping_output("3 packets transmitted, 0 received, 100% packet loss, time 409ms\n", 1)
    assert parse_ping(ok) == (3, 3, None)
    assert parse_ping(part) == (3, 2, None)
    assert parse_ping(none) == (3, 0, None)


def test_ping_local_errors() -> None:
    too_big = ping_output("", 1, "ping: local error: message too long, mtu=1420\n")
    assert parse_ping(too_big)[2] == "local error: message too long, mtu=1420"
    no_src = ping_output("", 2, "ping: bind: Cannot assign requested address\n")
    assert "Cannot assign" in (parse_ping(no_src)[2] or "")


def test_probe_argv() -> None:
    df = ProbeSpec("laptop", "ping", "mtu", "10.0.0.1", "vps", size=1392, df=True)
    assert df.argv()[-5:] == ["-M", "do", "-s", "1392", "10.0.0.1"]
    assert df.packet_size == 1420
    src = ProbeSpec("laptop", "ping", "announced", "100.100.100.2", "friend",
                    source="100.100.100.1")
    assert src.argv()[-3:-1] == ["-I", "100.100.100.1"]
    tcp = ProbeSpec("laptop", "tcp", "bgp", "10.0.0.2", "friend", port=179)
    assert tcp.argv()[:4] == ["timeout", "3", "bash", "-c"] and tcp.argv()[-2:] == [
        "10.0.0.2", "179"]
