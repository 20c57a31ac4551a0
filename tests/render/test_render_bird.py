"""BIRD 2 configs (daemon: bird), and IPv6 in every rendered file.

Every rendered bird.conf is checked by the real `bird -p -c FILE` (parse only, no daemon);
a negative control proves a broken file fails that check.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from topogen import doc, load
from wgbgp.compile import compile_topology
from wgbgp.model import parse
from wgbgp.render import render_bird, render_frr, render_machine

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
needs_bird = pytest.mark.skipif(shutil.which("bird") is None, reason="bird2 is not installed")


def bird_check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bird", "-p", "-c", str(path)], capture_output=True, text=True,
                          timeout=30)


def topo(kind: str, *, birds: tuple[str, ...] = ("n2",), nodes: int = 3):
    """A topology: 'v4', 'dual' or 'v6' overlay; the named nodes run BIRD."""
    d = doc(nodes)
    if kind in ("dual", "v6"):
        d["network"]["overlay6"] = "fd00:42::/64"
        for i, node in enumerate(d["nodes"].values(), 1):
            node["announce"] = [*node["announce"], f"2001:db8:{i}::/48"]
    if kind == "v6":
        del d["network"]["overlay"]
        for node in d["nodes"].values():
            node["announce"] = [p for p in node["announce"] if ":" in p]
    for name in birds:
        d["nodes"][name]["daemon"] = "bird"
    return load(d)


def bird_conf(kind: str, node: str = "n2", **kw) -> str:
    rendered = render_bird(compile_topology(topo(kind, **kw))[node])
    assert rendered is not None
    return rendered.text


def test_bird_node_gets_bird_conf_and_no_frr_conf():
    plans = compile_topology(topo("dual"))
    files = {f.path: f for f in render_machine(plans["n2"])}
    assert "/etc/bird/bird.conf" in files and "/etc/frr/frr.conf" not in files
    assert files["/etc/bird/bird.conf"].kind == "bird"
    assert files["/etc/bird/bird.conf"].mode == 0o640
    assert render_frr(plans["n2"]) is None
    assert render_bird(plans["n1"]) is None and render_frr(plans["n1"]) is not None
    assert render_bird(plans["vps"]) is None


def test_bird_policy_mirrors_frr():
    text = bird_conf("dual")
    # One protocol per neighbour and family, multihop through the hub, FRR's timers.
    for proto in ("n1_v4", "n3_v4", "n1_v6", "n3_v6"):
        assert f"protocol bgp {proto} from mesh {{" in text
    assert "multihop 2;" in text and "hold time 30;" in text and "keepalive time 10;" in text
    # Import: only what that neighbour declared (RFC 8212: explicit filter, else reject).
    assert "if net ~ [ 100.64.1.0/24 ] then accept;" in text
    assert "if net ~ [ 2001:db8:3::/48 ] then accept;" in text
    # Export: only our own prefixes, and only as originated here (not re-exported).
    assert "if source = RTS_STATIC && net ~ [ 100.64.2.0/24 ] then accept;" in text
    assert "if source = RTS_STATIC && net ~ [ 2001:db8:2::/48 ] then accept;" in text
    # Sessions per family between tunnel addresses of that family.
    assert "neighbor 10.0.0.2 as 65001;" in text and "local 10.0.0.3 as 65002;" in text
    assert "neighbor fd00:42::2 as 65001;" in text and "local fd00:42::3 as 65002;" in text
    # The kernel gets BGP routes only, never our blackholes.
    assert text.count("if source = RTS_BGP then accept;") == 2


def test_bird_node_announcing_nothing_exports_nothing():
    d = doc(2)
    d["nodes"]["n1"]["announce"] = []
    d["nodes"]["n1"]["daemon"] = "bird"
    text = render_bird(compile_topology(load(d))["n1"]).text
    assert "protocol static" not in text
    assert "filter export_own4 {\n\treject;\n}" in text


def test_hyphenated_names_make_valid_protocol_names():
    d = doc(2)
    d["nodes"]["best-friend"] = d["nodes"].pop("n2")
    d["nodes"]["n1"]["daemon"] = "bird"
    text = render_bird(compile_topology(load(d))["n1"]).text
    assert "protocol bgp best_friend_v4 from mesh" in text
    assert 'description "best-friend";' in text


@needs_bird
@pytest.mark.parametrize("kind", ["v4", "dual", "v6"])
@pytest.mark.parametrize("node", ["n1", "n2", "n3"])
def test_bird_accepts_every_rendered_config(kind, node, tmp_path):
    conf = tmp_path / "bird.conf"
    conf.write_text(bird_conf(kind, node, birds=("n1", "n2", "n3")))
    res = bird_check(conf)
    assert res.returncode == 0, res.stderr + res.stdout


@needs_bird
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_bird_accepts_examples_as_bird_nodes(example, tmp_path):
    """Every node of every example, rendered as a BIRD node, passes `bird -p -c`."""
    topology, _ = parse(example.read_text(), str(example))
    nodes = {n: node.model_copy(update={"daemon": "bird"}) for n, node in topology.nodes.items()}
    plans = compile_topology(topology.model_copy(update={"nodes": nodes}))
    for name in topology.nodes:
        conf = tmp_path / f"{name}.conf"
        conf.write_text(render_bird(plans[name]).text)
        res = bird_check(conf)
        assert res.returncode == 0, f"{name}: {res.stderr}{res.stdout}"


@needs_bird
def test_bird_check_catches_a_broken_config(tmp_path):
    """Negative control: the check above would notice a bad file."""
    conf = tmp_path / "bird.conf"
    conf.write_text(bird_conf("dual").replace("multihop 2;", "multihop two;", 1))
    assert bird_check(conf).returncode != 0


# --- IPv6 in the other files -----------------------------------------------------------

def test_dual_stack_wireguard_and_sysctl():
    plans = compile_topology(topo("dual"))
    files = {f.kind: f.text for f in render_machine(plans["vps"])}
    assert "Address = 10.0.0.1/24, fd00:42::1/64" in files["wireguard"]
    assert "AllowedIPs = 10.0.0.2/32, fd00:42::2/128, 100.64.1.0/24, 2001:db8:1::/48" \
        in files["wireguard"]
    assert "net.ipv6.conf.all.forwarding = 1" in files["sysctl"]
    client = {f.kind: f.text for f in render_machine(plans["n1"])}
    assert "Address = 10.0.0.2/24, fd00:42::2/64" in client["wireguard"]
    assert "AllowedIPs = 0.0.0.0/0, ::/0" in client["wireguard"]


def test_ipv4_only_has_no_ipv6_lines():
    plans = compile_topology(topo("v4", birds=()))
    frr = render_frr(plans["n1"]).text
    assert "MESH6" not in frr and "ipv6 prefix-list" not in frr
    sysctl = {f.kind: f.text for f in render_machine(plans["vps"])}["sysctl"]
    assert "ipv6" not in sysctl


def test_frr_dual_stack_sessions_per_family():
    frr = render_frr(compile_topology(topo("dual", birds=()))["n1"]).text
    assert "neighbor fd00:42::3 peer-group MESH6" in frr
    assert "ipv6 prefix-list FROM6-n2 seq 5 permit 2001:db8:2::/48" in frr
    assert "ipv6 route 2001:db8:1::/48 blackhole 250" in frr
    v4_af = frr.split(" address-family ipv4 unicast\n")[1].split(" exit-address-family")[0]
    assert "no neighbor MESH6 activate" in v4_af  # IPv6 sessions carry no IPv4
    assert frr.count("address-family ipv4 unicast") == 1


def test_frr_ipv6_only():
    frr = render_frr(compile_topology(topo("v6", birds=()))["n1"]).text
    assert "bgp router-id 0.0.0.2" in frr
    assert "neighbor MESH " not in frr and "ip prefix-list" not in frr
    assert "no neighbor MESH6 activate" in frr


def test_ipv6_more_specifics_in_both_daemons_filters():
    """more_specifics per family: n1 (FRR) and n3 (BIRD) accept n2's IPv6 /64s and IPv4
    /26s; n2 exports as far. IPv6 lengths past /32 are what makes them useful."""
    d = doc(3)
    d["network"]["overlay6"] = "fd00:42::/64"
    d["nodes"]["n2"]["announce"] = ["100.64.2.0/24", "2001:db8:2::/48"]
    d["nodes"]["n2"]["more_specifics"] = {"ipv4": 26, "ipv6": 64}
    d["nodes"]["n3"]["daemon"] = "bird"
    plans = compile_topology(load(d))
    frr = render_frr(plans["n1"]).text
    assert "ip prefix-list FROM-n2 seq 5 permit 100.64.2.0/24 le 26\n" in frr
    assert "ipv6 prefix-list FROM6-n2 seq 5 permit 2001:db8:2::/48 le 64\n" in frr
    bird = render_bird(plans["n3"]).text
    assert "if net ~ [ 100.64.2.0/24{24,26} ] then accept;" in bird
    assert "if net ~ [ 2001:db8:2::/48{48,64} ] then accept;" in bird
    own = render_frr(plans["n2"]).text
    assert "ipv6 prefix-list OWN6 seq 5 permit 2001:db8:2::/48 le 64\n" in own
    d["nodes"]["n2"]["daemon"] = "bird"
    own = render_bird(compile_topology(load(d))["n2"]).text
    assert "net ~ [ 2001:db8:2::/48{48,64} ] then accept;" in own


@needs_bird
def test_ipv6_more_specifics_accepted_by_bird_and_vtysh(tmp_path):
    d = doc(3)
    d["network"]["overlay6"] = "fd00:42::/64"
    d["nodes"]["n2"]["announce"] = ["100.64.2.0/24", "2001:db8:2::/48"]
    d["nodes"]["n2"]["more_specifics"] = {"ipv4": 32, "ipv6": 128}
    d["nodes"]["n3"]["daemon"] = "bird"
    plans = compile_topology(load(d))
    conf = tmp_path / "bird.conf"
    conf.write_text(render_bird(plans["n3"]).text)
    assert "2001:db8:2::/48{48,128}" in conf.read_text()
    res = bird_check(conf)
    assert res.returncode == 0, res.stderr + res.stdout
    if shutil.which("vtysh"):
        frr = tmp_path / "frr.conf"
        frr.write_text(render_frr(plans["n1"]).text)
        res = subprocess.run(["vtysh", "--dryrun", "--inputfile", str(frr)],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0 and "%" not in res.stdout, res.stdout + res.stderr
