"""Issue 13, the smaller traps in the topology itself (the CLI ones: tests/cli)."""

from __future__ import annotations

import pytest

from topogen import doc, text
from wgbgp.lab.fromtopology import with_lab_keys
from wgbgp.lab.spec import HubSpec, LabSpec
from wgbgp.model import TopologyError, parse


def errors(source: str) -> list:
    with pytest.raises(TopologyError) as exc:
        parse(source, "t.yaml")
    return exc.value.issues


def warnings(d: dict) -> list:
    return parse(text(d), "t.yaml")[1]


def two_hubs(endpoint_b: str) -> dict:
    d = doc(2)
    d["hubs"]["b"] = {"endpoint": endpoint_b, "overlay": "10.1.0.0/24"}
    return d


def test_two_hubs_with_the_same_endpoint_are_refused():
    (issue,) = errors(text(two_hubs("203.0.113.10:51820")))
    assert issue.field == "hubs.b.endpoint" and "same endpoint as hub vps" in issue.message
    assert issue.line == 9 and "own public address or port" in issue.fix
    # The same address on another port is another WireGuard interface: fine.
    parse(text(two_hubs("203.0.113.10:51821")), "t.yaml")


@pytest.mark.parametrize(("endpoint", "kind"), [
    ("192.168.1.1:51820", "private space"), ("10.9.9.9:51820", "private space"),
    ("100.64.99.1:51820", "carrier-grade NAT"), ("127.0.0.1:51820", "loopback"),
    ("[fd00::1]:51820", "private space"), ("[fe80::1]:51820", "link-local")])
def test_a_hub_endpoint_clients_cannot_reach_is_a_warning(endpoint, kind):
    d = doc(2)
    d["hubs"]["vps"]["endpoint"] = endpoint
    (w,) = warnings(d)
    assert w.field == "hubs.vps.endpoint" and "not a public address" in w.message
    assert kind in w.message and "underlay: private" in w.fix
    d["network"]["underlay"] = "private"
    assert warnings(d) == []


def test_public_and_documentation_endpoints_give_no_warning():
    for endpoint in ("8.8.8.8:51820", "203.0.113.10:51820", "[2001:db8::1]:51820",
                     "[2a01:4f8::1]:51820", "vps.example.net:51820"):
        d = doc(2)
        d["hubs"]["vps"]["endpoint"] = endpoint
        assert warnings(d) == [], endpoint


def test_the_lab_marks_its_own_topology_private():
    d = doc(2)
    d["hubs"]["vps"]["endpoint"] = "192.168.77.1:51820"
    t, _ = parse(text(d), "t.yaml")
    spec = LabSpec(name="x", hubs=(HubSpec("vps", __import__("ipaddress").ip_address(
        "192.168.77.1"), 51820),), clients=(), carriers=())
    lab = with_lab_keys(t, spec, {"vps": "", "n1": "", "n2": ""})
    assert lab.network.underlay == "private"


@pytest.mark.parametrize("asn", [13335, 1, 64511 + 100000, 4199999999])
def test_a_public_asn_is_a_warning(asn):
    d = doc(2)
    d["nodes"]["n1"]["asn"] = asn
    (w,) = warnings(d)
    assert w.field == "nodes.n1.asn" and f"ASN {asn} is a public ASN" in w.message
    assert "64512-65534 or 4200000000-4294967294" in w.fix


def test_private_asns_give_no_warning():
    for asn in (64512, 65534, 4200000000, 4294967294):
        d = doc(2)
        d["nodes"]["n1"]["asn"] = asn
        assert warnings(d) == []


def test_documentation_asns_stay_refused():
    d = doc(2)
    d["nodes"]["n1"]["asn"] = 64500
    (issue,) = errors(text(d))
    assert "documentation" in issue.message


def test_asdot_asns_are_read_from_the_raw_text():
    d = doc(2)
    source = text(d).replace("asn: 65001", "asn: 1.10").replace("asn: 65002", "asn: 64086.59904")
    t, _ = parse(source.replace("asn: 1.10", "asn: 65000.1"), "t.yaml")
    assert t.nodes["n1"].asn == 65000 << 16 | 1 and t.nodes["n2"].asn == 4200000000
    # 1.10 is 65546, not 1.1 (which YAML would make of it), and a documentation ASN.
    (issue,) = errors(source)
    assert issue.field == "nodes.n1.asn" and "ASN 65546" in issue.message
    assert "written 1.10, asdot for 65546" in issue.message
    # Quoted, it is a string, as before; a float that is no asdot explains asdot.
    (issue,) = errors(source.replace("asn: 1.10", "asn: 1.70000"))
    assert "not a whole number" in issue.message and "asdot" in issue.fix


def test_unquoted_braces_in_a_flow_mapping_say_quote_the_value():
    d = doc(2)
    source = text(d).replace("network:\n", "network:\n  bgp_password: {file: "
                             "/etc/wgbgp/bgp-{pair}.secret}\n")
    (issue,) = errors(source)
    assert issue.line == 2 and "YAML syntax error" in issue.message
    assert issue.fix.startswith('quote the value: file: "/etc/wgbgp/bgp-{pair}.secret"')


def test_a_long_hub_name_explains_the_interface_name_limit():
    d = doc(2, hub="frankfurt-vps1")
    (issue,) = errors(text(d))
    assert issue.field == "hubs.frankfurt-vps1"
    assert "wg-frankfurt-vps1" in issue.message and "15 characters (IFNAMSIZ)" in issue.message
    assert "'frankfurt-vp'" in issue.fix
