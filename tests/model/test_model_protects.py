"""Issue 13, point 1: announcements that would break the network are refused.

A prefix covering a hub's endpoint or an `ssh:` target (literal or resolved), the
special-purpose registries, absurdly short prefixes; and the "did you mean" hint never
suggests something broader than what was written.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from topogen import doc, text
from wgbgp.apply.localcheck import LocalChecks
from wgbgp.compile import compile_topology
from wgbgp.model import TopologyError, parse
from wgbgp.model.special import MIN_LENGTH, host_bits_fix, special_purpose
from wgbgp.render import render_machine


def errors(d: dict, local=None) -> list:
    with pytest.raises(TopologyError) as exc:
        parse(text(d), "t.yaml", local=local)
    return exc.value.issues


def announcing(*prefixes: str, endpoint: str = "198.51.100.7:51820", **node) -> dict:
    d = doc(2)
    d["hubs"]["vps"]["endpoint"] = endpoint
    d["nodes"]["n1"]["announce"] = list(prefixes)
    d["nodes"]["n1"].update(node)
    return d


# --- covering what machines must reach ------------------------------------------------

def test_a_prefix_covering_the_hub_endpoint_is_a_routing_loop():
    (issue,) = errors(announcing("198.51.100.0/24"))
    assert issue.field == "nodes.n1.announce.0" and issue.line == 12
    assert "covers 198.51.100.7, hub vps's endpoint" in issue.message
    assert "loop" in issue.message and "198.51.100.7 out" in issue.fix


def test_ipv6_endpoint_covered():
    (issue,) = errors(announcing("2001:db8:50::/48", endpoint="[2001:db8:50::7]:51820"))
    assert "covers 2001:db8:50::7, hub vps's endpoint" in issue.message


def test_a_prefix_covering_an_ssh_target_cuts_apply_off():
    d = announcing("100.100.0.0/16")
    d["nodes"]["n2"]["ssh"] = "root@100.100.3.4"
    (issue,) = errors(d)
    assert issue.field == "nodes.n1.announce.0"
    assert "the `ssh:` target of n2" in issue.message and "cut itself off" in issue.message
    d["nodes"]["n2"]["ssh"] = "ssh://admin@[2001:db8:1::9]:2222"
    d["nodes"]["n1"]["announce"] = ["2001:db8::/32"]
    (issue,) = errors(d)  # and ssh:// is a scheme, not a user:password
    assert "covers 2001:db8:1::9, the `ssh:` target of n2" in issue.message


def fake_dns(table: dict[str, list[str]]):
    def resolve(host: str) -> list[IPv4Address | IPv6Address] | None:
        return [ip_address(a) for a in table[host]] if host in table else None
    return resolve


def test_a_dns_endpoint_is_resolved_at_the_edge_and_checked():
    d = announcing("100.100.0.0/16", endpoint="vps.example.net:51820")
    parse(text(d), "t.yaml")  # pure validation alone cannot know
    local = LocalChecks(resolve=fake_dns({"vps.example.net": ["2001:db8::1", "100.100.9.9"]}))
    (issue,) = errors(d, local)
    assert issue.field == "nodes.n1.announce.0"
    assert "covers 100.100.9.9, hub vps's endpoint (vps.example.net resolves to it)" \
        in issue.message


def test_a_dns_name_that_does_not_resolve_is_a_warning():
    d = announcing("100.100.0.0/16", endpoint="vps.example.net:51820")
    _, warnings = parse(text(d), "t.yaml", local=LocalChecks(resolve=fake_dns({})))
    (w,) = [w for w in warnings if w.field == "hubs.vps.endpoint"]
    assert "vps.example.net" in w.message and "does not resolve" in w.message
    assert w.level == "warning" and w.line == 6


def test_names_are_resolved_once():
    asked: list[str] = []

    def resolve(host: str) -> None:
        asked.append(host)
        return None

    d = announcing("100.100.0.0/16", endpoint="vps.example.net:51820")
    d["hubs"]["vps"]["ssh"] = "root@vps.example.net"
    parse(text(d), "t.yaml", local=LocalChecks(resolve=resolve))
    assert asked == ["vps.example.net"]


# --- special-purpose space --------------------------------------------------------------

REFUSED = ["0.0.0.0/8", "127.0.0.0/8", "127.0.0.1/32", "169.254.0.0/16", "192.0.0.0/24",
           "224.0.0.0/24", "239.1.0.0/16", "240.0.0.0/4", "255.255.255.255/32",
           "198.18.0.0/15", "::/128", "::1/128", "::ffff:0:0/96", "fe80::/10", "fe80::/64",
           "ff02::/16", "100::/64", "2001::/32", "2002::/16", "fec0::/10", "4000::/16",
           "0.0.0.0/1", "128.0.0.0/1", "2000::/3"]
ALLOWED = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
           "fd00::/16", "fd42:1:2::/48", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24",
           "2001:db8::/32", "8.8.8.0/24", "2a01:4f8::/32", "64:ff9b::/96"]


@pytest.mark.parametrize("prefix", REFUSED)
def test_special_purpose_space_is_refused(prefix):
    d = announcing(prefix, endpoint="203.0.113.10:51820", allow_short=True)
    issue = next(i for i in errors(d) if i.field == "nodes.n1.announce.0")
    assert "over the overlay" in issue.message and "private ones" in issue.fix


@pytest.mark.parametrize("prefix", ALLOWED)
def test_private_documentation_and_public_space_is_allowed(prefix):
    d = announcing(prefix, endpoint="203.0.113.10:51820")
    if prefix.startswith("203.0.113"):
        d["hubs"]["vps"]["endpoint"] = "192.0.2.10:51820"
    if prefix == "10.0.0.0/8":
        d["network"]["overlay"] = "172.31.0.0/24"
    d["nodes"]["n2"]["announce"] = ["172.31.9.0/24"] if prefix != "172.16.0.0/12" else []
    assert special_purpose(ip_network(prefix)) is None
    parse(text(d), "t.yaml")


def test_short_prefixes_need_allow_short():
    (issue,) = errors(announcing("64.0.0.0/3", endpoint="203.0.113.10:51820"))
    assert "shorter than /8" in issue.message and "1/8 of all IPv4 addresses" in issue.message
    assert "'allow_short: true' on n1" in issue.fix
    (issue,) = errors(announcing("2400::/6", endpoint="203.0.113.10:51820"))
    assert "shorter than /16" in issue.message
    t, _ = parse(text(announcing("64.0.0.0/3", "2400::/6", endpoint="203.0.113.10:51820",
                                 allow_short=True)), "t.yaml")
    assert t.nodes["n1"].allow_short


def test_allow_short_without_a_short_prefix_is_a_warning():
    _, warnings = parse(text(announcing("100.100.0.0/16", allow_short=True)), "t.yaml")
    (w,) = warnings
    assert w.field == "nodes.n1.allow_short" and "no effect" in w.message


# --- did you mean -----------------------------------------------------------------------

def test_host_bits_hint_is_never_a_quarter_of_ipv4():
    (issue,) = errors(announcing("100.64.2.0/2"))
    assert "host bits set" in issue.message
    assert issue.fix.startswith("did you mean 100.64.2.0/24?")
    assert "64.0.0.0" not in issue.fix
    (issue,) = errors(announcing("10.0.0.1/8"))
    assert issue.fix == "did you mean 10.0.0.0/8 or 10.0.0.1/32?"


@given(st.integers(0, 2**32 - 1), st.integers(0, 32))
def test_suggestions_start_at_the_written_address_or_keep_a_sane_length(address, length):
    written = f"{IPv4Address(address)}/{length}"
    try:
        ip_network(written)
        return  # no host bits: nothing to suggest
    except ValueError:
        pass
    fix = host_bits_fix(written)
    assert fix is not None and fix.startswith("did you mean ")
    for word in fix.replace("?", " ").split():
        if "/" not in word:
            continue
        net = ip_network(word)
        if int(net.network_address) == address:
            assert net.prefixlen >= length  # narrower than written
        else:
            assert net.prefixlen == length >= MIN_LENGTH[4]


# --- one node, aggregate and its own more-specifics --------------------------------------

def test_a_node_may_announce_an_aggregate_and_its_own_more_specific():
    d = announcing("100.100.0.0/16", "100.100.2.0/24")
    t, warnings = parse(text(d), "t.yaml")
    assert warnings == []
    plans = compile_topology(t)
    (peer,) = [p for p in plans["vps"].tunnels[0].peers if p.name == "n1"]
    allowed = [str(a) for a in peer.allowed_ips]
    assert "100.100.0.0/16" in allowed and "100.100.2.0/24" in allowed
    frr = next(f.text for f in render_machine(plans["n2"]) if f.path.endswith("frr.conf"))
    assert "permit 100.100.0.0/16" in frr and "permit 100.100.2.0/24" in frr
    # Another node's more-specific of it is still refused.
    d["nodes"]["n2"]["announce"] = ["100.100.3.0/24"]
    (issue,) = errors(d)
    assert issue.field == "nodes.n2.announce.0" and "announced by n1" in issue.message


def test_a_prefix_listed_twice_by_one_node_is_a_warning():
    _, warnings = parse(text(announcing("100.100.0.0/16", "100.100.0.0/16")), "t.yaml")
    (w,) = warnings
    assert w.field == "nodes.n1.announce.1" and "twice" in w.message


# --- secret files on this machine -------------------------------------------------------

def test_check_warns_when_a_named_secret_file_is_missing_here(tmp_path: Path):
    d = doc(3)
    d["network"]["bgp_password"] = {"file": "./bgp-{pair}.secret"}
    (tmp_path / "bgp-n1-n2.secret").write_text("x")
    _, warnings = parse(text(d), "t.yaml", local=LocalChecks(tmp_path))
    (w,) = warnings
    assert w.field == "network.bgp_password.file"
    assert "2 of the 3 files" in w.message and str(tmp_path / "bgp-n1-n3.secret") in w.message
    d["network"]["bgp_password"] = {"file": "/nonexistent/bgp.secret"}
    _, warnings = parse(text(d), "t.yaml", local=LocalChecks(tmp_path))
    assert [w.message.split(" on this")[0] for w in warnings if w.field.endswith("file")] == [
        "/nonexistent/bgp.secret does not exist"]
