"""BGP import/export policy, TCP-MD5 and preshared keys as rendered: what a neighbour's
announcement meets in the rendered frr.conf, evaluated the way FRR evaluates it.

`accepts(text, peer, prefix)` reads the rendered prefix-lists and the IMPORT route-map
back and applies FRR's rules (first matching entry wins, implicit deny at the end; the
neighbour's prefix-list, then the peer-group's route-map, must both permit). The real
FRR runs the same files in tests/lab/test_hostile.py.
"""

from __future__ import annotations

import os
import re
import subprocess
from ipaddress import IPv4Network

import pytest
from confparse import frr, wg_quick
from hypothesis import given
from hypothesis import strategies as st

from topogen import doc, load, topology_docs
from wgbgp.compile import compile_topology
from wgbgp.compile.plan import SecretRef
from wgbgp.render import (
    SecretError,
    check_secret,
    render_frr,
    render_machine,
    render_nftables,
    secrets_needed,
)

PSK = "E4v5wX0kqN1v3gQ2pS6nYt8rU9iO0pA1sD2fG3hJ4kM="


def _entries(text: str, name: str) -> list[tuple[str, IPv4Network, int | None]]:
    out = []
    for m in re.finditer(rf"^ip prefix-list {re.escape(name)} seq \d+ (permit|deny) (\S+)"
                         r"(?: le (\d+))?$", text, re.MULTILINE):
        net = IPv4Network("0.0.0.0/0") if m.group(2) == "any" else IPv4Network(m.group(2))
        le = 32 if m.group(2) == "any" else (int(m.group(3)) if m.group(3) else None)
        out.append((m.group(1), net, le))
    return out


def _matches(entries, prefix: IPv4Network) -> str:
    for action, net, le in entries:
        longest = le if le is not None else net.prefixlen
        if prefix.subnet_of(net) and net.prefixlen <= prefix.prefixlen <= longest:
            return action
    return "deny"  # implicit


def accepts(text: str, peer: str, prefix: str | IPv4Network) -> bool:
    """Would this frr.conf install `prefix` when neighbour `peer` announces it?"""
    prefix = IPv4Network(prefix)
    assert re.search(r"^  neighbor MESH route-map IMPORT in$", text, re.MULTILINE)
    assert "route-map IMPORT deny 5\n match ip address prefix-list NEVER\nexit\n" \
           "route-map IMPORT permit 10\nexit\n" in text
    if _matches(_entries(text, f"FROM-{peer}"), prefix) != "permit":
        return False
    return _matches(_entries(text, "NEVER"), prefix) != "permit"


def exports(text: str, prefix: str) -> bool:
    return _matches(_entries(text, "OWN"), IPv4Network(prefix)) == "permit"


def three(**extra) -> dict:
    d = doc(3)
    d["nodes"]["n1"]["announce"] = ["100.100.1.1/32", "192.168.10.0/24"]  # RFC 1918, declared
    d["nodes"]["n2"]["announce"] = ["100.100.2.0/24"]
    d["nodes"]["n2"]["more_specifics"] = 26
    d["nodes"]["n3"]["announce"] = ["100.100.3.1/32"]
    for path, value in extra.items():
        node, field = path.split("__")
        d["nodes"][node][field] = value
    return d


@pytest.fixture(scope="module")
def confs() -> dict[str, str]:
    return {n: render_frr(p).text for n, p in compile_topology(load(three())).items()
            if p.bgp is not None}


def test_declared_prefixes_are_accepted_exactly(confs):
    assert accepts(confs["n3"], "n1", "100.100.1.1/32")
    # Declared, though inside RFC 1918: the declaration wins.
    assert accepts(confs["n3"], "n1", "192.168.10.0/24")
    assert not accepts(confs["n3"], "n1", "192.168.10.0/25")  # no more-specifics from n1
    assert not accepts(confs["n3"], "n1", "192.168.0.0/16")   # nor a covering aggregate


def test_more_specifics_up_to_the_declared_length(confs):
    for p in ("100.100.2.0/24", "100.100.2.128/25", "100.100.2.64/26"):
        assert accepts(confs["n1"], "n2", p)
    assert not accepts(confs["n1"], "n2", "100.100.2.32/27")
    assert not accepts(confs["n1"], "n2", "100.100.2.1/32")
    assert "ip prefix-list FROM-n2 seq 5 permit 100.100.2.0/24 le 26\n" in confs["n1"]
    # n2 may export what others accept from it; n1 exports exactly its own.
    assert exports(confs["n2"], "100.100.2.64/26") and not exports(confs["n2"], "100.100.2.0/27")
    assert exports(confs["n1"], "100.100.1.1/32") and not exports(confs["n1"], "100.100.2.0/24")


@pytest.mark.parametrize("prefix,why", [
    ("100.100.2.0/24", "another node's prefix (hijack)"),
    ("100.100.2.0/25", "a more-specific of another node's prefix"),
    ("0.0.0.0/0", "default route"),
    ("10.0.0.0/24", "the overlay"),
    ("10.0.0.2/32", "a tunnel address"),
    ("100.100.3.1/32", "the receiver's own prefix"),
    ("192.168.0.0/16", "RFC 1918, undeclared"),
    ("10.20.0.0/16", "RFC 1918, undeclared"),
    ("100.64.0.0/10", "shared address space"),
    ("127.0.0.0/8", "loopback"),
    ("224.0.0.0/4", "multicast"),
    ("8.8.8.0/25", "longer than /24, undeclared"),
    ("100.100.1.0/24", "a covering aggregate of a declared /32"),
])
def test_what_a_neighbour_may_not_send(confs, prefix, why):
    assert not accepts(confs["n3"], "n1", prefix), why


def test_never_list_wins_over_any_prefix_list():
    # Even if a neighbour's list were to permit them (e.g. hand-edited), the IMPORT
    # route-map denies the default, the overlay and our own prefixes.
    text = render_frr(compile_topology(load(three()))["n3"]).text
    hacked = text.replace("ip prefix-list FROM-n1 seq 5 permit 100.100.1.1/32",
                          "ip prefix-list FROM-n1 seq 5 permit 0.0.0.0/0 le 32")
    assert accepts(hacked, "n1", "8.8.8.0/24")
    for p in ("0.0.0.0/0", "10.0.0.0/24", "10.0.0.9/32", "100.100.3.1/32"):
        assert not accepts(hacked, "n1", p)


def test_max_prefix_is_declared_count_plus_margin():
    got = frr(render_frr(compile_topology(load(three()))["n3"]).text)
    assert got["max_prefix"] == {"10.0.0.2": (12, 5), "10.0.0.3": (11, 5)}
    got = frr(render_frr(compile_topology(load(three(n1__max_prefixes=4)))["n3"]).text)
    assert got["max_prefix"]["10.0.0.2"] == (4, 5)


def test_no_default_values_rendered():
    # frr-reload re-applies lines equal to FRR's defaults (they never show in the running
    # config), resetting sessions: none of the policy lines may be one.
    text = render_frr(compile_topology(load(three()))["n1"]).text
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("!")]
    for line in lines:
        assert not re.search(r"/(\d+) le \1\b", line), line  # `le` equal to the length
        assert not re.search(r"maximum-prefix \d+ (75|warning-only)", line), line


@given(topology_docs(max_nodes=6))
def test_every_session_accepts_exactly_what_its_peer_declares(d):
    topology = load(d)
    plans = compile_topology(topology)
    for plan in plans.values():
        if plan.bgp is None:
            continue
        text = render_frr(plan).text
        for s in plan.bgp.sessions:
            theirs = topology.nodes[s.peer].announce
            for p in theirs:
                assert accepts(text, s.peer, p)
            for other, node in topology.nodes.items():
                if other != s.peer:
                    for p in node.announce:
                        assert not accepts(text, s.peer, p)
            assert not accepts(text, s.peer, "0.0.0.0/0")
            assert not accepts(text, s.peer, topology.network.overlay)
            assert s.max_prefixes == len(theirs) + 10


# --- secrets ----------------------------------------------------------------------------

def with_secrets() -> dict:
    d = doc(2)
    d["network"]["bgp_password"] = {"file": "/etc/wgbgp/md5-{pair}.secret"}
    d["network"]["preshared_key"] = {"env": "WGBGP_PSK_{pair}"}
    return d


def test_secrets_needed_per_pair():
    plans = compile_topology(load(with_secrets()))
    assert secrets_needed(plans["vps"]) == (
        SecretRef("env", "WGBGP_PSK_N1_VPS"), SecretRef("env", "WGBGP_PSK_N2_VPS"))
    assert secrets_needed(plans["n1"]) == (
        SecretRef("env", "WGBGP_PSK_N1_VPS"), SecretRef("file", "/etc/wgbgp/md5-n1-n2.secret"))
    assert secrets_needed(plans["n2"])[1] == SecretRef("file", "/etc/wgbgp/md5-n1-n2.secret")
    assert secrets_needed(compile_topology(load(doc(2)))["n1"]) == ()


def test_secrets_are_rendered_only_where_they_belong():
    plans = compile_topology(load(with_secrets()))
    values = {ref: (PSK if ref.kind == "env" else "s3cret-md5") for p in plans.values()
              for ref in secrets_needed(p)}
    client = {f.kind: f for f in render_machine(plans["n1"], secrets=values)}
    assert frr(client["frr"].text)["passwords"] == {"10.0.0.3": "s3cret-md5"}
    assert client["frr"].holds_secret and client["frr"].mode == 0o640
    (_, _), (_, peer) = wg_quick(client["wireguard"].text)
    assert peer["PresharedKey"] == PSK
    assert client["wireguard"].holds_secret and client["wireguard"].mode == 0o600
    assert not client["sysctl"].holds_secret and "s3cret" not in client["sysctl"].text
    hub = render_machine(plans["vps"], secrets=values)
    assert [p.get("PresharedKey") for _, p in wg_quick(hub[0].text)[1:]] == [PSK, PSK]
    assert all("s3cret" not in f.text for f in hub)
    # Without secrets, nothing holds one.
    assert not any(f.holds_secret for f in render_machine(compile_topology(load(doc(2)))["n1"]))


def test_missing_or_malformed_secrets_are_named_never_shown():
    plan = compile_topology(load(with_secrets()))["n1"]
    with pytest.raises(SecretError, match="preshared key of tunnel n1-vps"):
        render_machine(plan)
    psk, md5 = secrets_needed(plan)
    with pytest.raises(SecretError) as exc:
        render_machine(plan, secrets={psk: "not-a-key-but-secret", md5: "ok"})
    assert "not-a-key-but-secret" not in str(exc.value) and "wg genpsk" in str(exc.value)
    for bad in ("has space", "line\nrouter bgp 1", "x" * 81, "", "bang!", "hash#"):
        with pytest.raises(SecretError) as exc:
            check_secret(md5, bad)
        assert bad not in str(exc.value) or bad == ""


@given(st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0x2FF), max_size=90))
def test_a_password_never_breaks_out_of_its_line(value):
    ref = SecretRef("env", "X", "BGP password of session a-b")
    try:
        checked = check_secret(ref, value)
    except SecretError:
        return
    assert checked == value and len(value) <= 80
    assert not any(c.isspace() or c in "!#" or ord(c) < 33 or ord(c) > 126 for c in value)


# --- hub firewall ------------------------------------------------------------------------

def hub_nft(exit_for: tuple[str, ...] = (), hub_exit: bool = False) -> str:
    d = doc(3)
    d["hubs"]["vps"]["exit"] = hub_exit
    for n in exit_for:
        d["nodes"][n]["exit"] = True
    return render_nftables(compile_topology(load(d))["vps"]).text


def test_firewall_without_exit_forwards_only_between_peers():
    text = hub_nft()
    assert "masquerade" not in text and "ip saddr {" not in text
    forward = text[text.index("chain forward"):]
    rules = [line.strip() for line in forward.splitlines() if "counter" in line]
    assert rules == ['iifname "wg-vps" oifname "wg-vps" counter accept',
                     'iifname "wg-vps" counter drop', 'oifname "wg-vps" counter drop']
    # Every base chain accepts by default: nothing outside the tunnel is our business.
    assert text.count("policy accept;") == 3 and "policy drop" not in text
    # Anti-spoofing both ways, and the hub itself closed to the tunnel but for ICMP.
    assert 'iifname "wg-vps" fib saddr . iif oif missing counter drop' in text
    assert 'iifname != { "wg-vps", "lo" } fib saddr oifname "wg-vps" counter drop' in text
    assert re.search(r'chain input \{.*iifname "wg-vps" counter drop', text, re.DOTALL)
    assert "dport 179" not in text  # a mesh hub speaks no BGP


def test_exit_only_for_the_nodes_that_ask():
    text = hub_nft(("n2",), hub_exit=True)
    assert 'iifname "wg-vps" ip saddr { 10.0.0.3/32, 100.64.2.0/24 } counter accept' in text
    assert ('iifname "wg-vps" oifname != "wg-vps" ip saddr { 10.0.0.3/32, 100.64.2.0/24 } '
            "counter masquerade") in text
    # The drop for everyone else still follows.
    assert text.index("counter masquerade") > text.index('iifname "wg-vps" counter drop')
    assert "masquerade" not in hub_nft(hub_exit=True)  # offered, not asked for


def dual_stack_exit_nft() -> str:
    d = doc(2, overlay6="fd42:42:42::/64")
    d["hubs"]["vps"]["exit"] = True
    d["nodes"]["n1"]["exit"] = True
    d["nodes"]["n1"]["announce"].append("2001:db8:1::/48")
    return render_nftables(compile_topology(load(d))["vps"]).text


def test_dual_stack_exit_one_set_per_family():
    text = dual_stack_exit_nft()
    assert 'ip saddr { 10.0.0.2/32, 100.64.1.0/24 } counter accept' in text
    assert 'ip6 saddr { fd42:42:42::2/128, 2001:db8:1::/48 } counter accept' in text
    assert 'ip6 saddr { fd42:42:42::2/128, 2001:db8:1::/48 } counter masquerade' in text
    assert "icmpv6 type { echo-request" in text


@pytest.mark.real_tools("ip", "nft")
@pytest.mark.parametrize("variant", ["no-exit", "exit", "dual-stack-exit"])
def test_firewall_accepted_by_nft(tmp_path, variant):
    text = {"exit": lambda: hub_nft(("n1", "n3"), hub_exit=True), "no-exit": hub_nft,
            "dual-stack-exit": dual_stack_exit_nft}[variant]()
    f = tmp_path / "wgbgp.nft"
    f.write_text(text)
    ns = f"wgbgp-pol-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        res = subprocess.run(["ip", "netns", "exec", ns, "nft", "-c", "-f", str(f)],
                             capture_output=True, text=True, timeout=30)
        assert res.returncode == 0, res.stderr
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)
