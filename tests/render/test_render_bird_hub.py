"""A hub-mode hub with `daemon: bird`: BIRD 2 as the route server (issue 19).

The same policy as the FRR hub (frr.conf's CLIENTS group), checked line by line here,
and every rendered config checked by the real `bird -p -c FILE`. Also: a client is one
block that no other client's change touches (so `birdc configure` keeps sessions), and the
clients' own configs do not depend on their hub's daemon.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest

from topogen import doc, load
from wgbgp.compile import compile_topology
from wgbgp.compile.mesh import import_limit
from wgbgp.model import parse
from wgbgp.model.validate import check
from wgbgp.render import render_bird, render_frr, render_machine
from wgbgp.render.files import SecretError

needs_bird = pytest.mark.skipif(shutil.which("bird") is None, reason="bird2 is not installed")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "route-server-bird.yaml"


def hub_doc(nodes: int = 3, *, hubs: int = 1, dual: bool = False, **network) -> dict:
    """Hub mode, every hub BIRD; n2 more_specifics 26, n3 max_prefixes 4."""
    d = doc(nodes, mode="hub", **network)
    d["hubs"]["vps"].update(asn=64600, daemon="bird")
    for i in range(1, hubs):
        d["hubs"][f"hub{i}"] = {"endpoint": f"203.0.113.{20 + i}:51820", "asn": 64600,
                                "daemon": "bird", "overlay": f"10.{i}.0.0/24"}
    if dual:
        d["network"]["overlay6"] = "fd00:42::/64"
        for i, node in enumerate(d["nodes"].values(), 1):
            node["announce"] = [*node["announce"], f"2001:db8:{i}::/48"]
    if nodes >= 2:
        d["nodes"]["n2"]["more_specifics"] = {"ipv4": 26}
    if nodes >= 3:
        d["nodes"]["n3"]["max_prefixes"] = 4
    return d


def big_doc(clients: int) -> dict:
    """A BIRD hub with `clients` clients, one /32 each (the benchmarks' shape)."""
    d = {"network": {"name": "big", "overlay": "10.0.0.0/18", "mode": "hub"},
         "hubs": {"vps": {"endpoint": "203.0.113.10:51820", "asn": 64600, "daemon": "bird"}},
         "nodes": {f"c{i}": {"asn": 4200000000 + i,
                             "announce": [f"100.{100 + i // 250}.{i % 250}.1/32"]}
                   for i in range(1, clients + 1)}}
    return d


@lru_cache(maxsize=1)
def big_hub_conf(clients: int) -> str:
    return hub_conf(big_doc(clients))


def hub_conf(d: dict, hub: str = "vps", secrets: dict | None = None) -> str:
    rendered = render_bird(compile_topology(load(d))[hub], secrets)
    assert rendered is not None
    return rendered.text


def protocol_blocks(text: str) -> dict[str, str]:
    """protocol name -> its block, for every client protocol."""
    return {m.group(1): m.group(0) for m in re.finditer(
        r"^protocol bgp (\S+) from rs_client\d \{\n.*?^\}\n", text, re.M | re.S)}


def bird_check(tmp_path: Path, text: str) -> None:
    conf = tmp_path / "bird.conf"
    conf.write_text(text)
    res = subprocess.run(["bird", "-p", "-c", str(conf)], capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 0, res.stderr + text


def test_bird_hub_gets_bird_conf_and_no_frr_conf():
    plans = compile_topology(load(hub_doc()))
    files = {f.path: f for f in render_machine(plans["vps"])}
    assert "/etc/bird/bird.conf" in files and "/etc/frr/frr.conf" not in files
    assert files["/etc/bird/bird.conf"].kind == "bird"
    assert files["/etc/bird/bird.conf"].mode == 0o640
    assert "/etc/wgbgp/nftables.nft" in files  # still a hub: forwarding rules
    assert render_frr(plans["vps"]) is None
    assert plans["vps"].bgp is not None and plans["vps"].bgp.daemon == "bird"


def test_frr_stays_the_default_hub_daemon():
    d = doc(2, mode="hub")
    d["hubs"]["vps"]["asn"] = 64600
    plans = compile_topology(load(d))
    assert render_bird(plans["vps"]) is None and render_frr(plans["vps"]) is not None


def test_the_frr_hubs_policy_per_client():
    d = hub_doc()
    topology = load(d)
    text = hub_conf(d)
    blocks = protocol_blocks(text)
    assert set(blocks) == {"n1_v4", "n2_v4", "n3_v4"}
    # Declared prefixes only, with the more-specific allowance; a limit per client.
    assert "rs_import4([ 100.64.1.0/24 ])" in blocks["n1_v4"]
    assert "rs_import4([ 100.64.2.0/24{24,26} ])" in blocks["n2_v4"]
    for name, block in blocks.items():
        node = topology.nodes[name.removesuffix("_v4")]
        assert f"import limit {import_limit(node, 4)} action restart;" in block
        assert f"neighbor {compile_topology(topology)['vps'].bgp.sessions[0].peer_address}" \
            in blocks["n1_v4"]
        assert f"as {node.asn};" in block
    assert "import limit 4 action restart;" in blocks["n3_v4"]
    # Never a default route or the overlay, for anyone, before the declared set.
    assert "return net ~ [ 0.0.0.0/0, 10.0.0.0/24+ ];" in text
    assert re.search(r"if never4\(\) then return false;\n\treturn net ~ declared;", text)
    # Route server: next hop and AS path unchanged; only BGP routes go out.
    template = text[text.index("template bgp rs_client4"):]
    assert "\trs client;\n" in template and "direct;" in template
    assert "export where source = RTS_BGP;" in template
    assert "next hop self" not in text
    # One hub: no BFD; no password unless asked.
    assert "bfd" not in text and "password" not in text


def test_several_hubs_bfd_and_each_plane_its_own_never_list():
    d = hub_doc(hubs=2)
    text = hub_conf(d, "hub1")
    assert "\tbfd on;\n" in text and 'interface "wg-hub1"' in text
    assert "interval 300 ms;" in text and "multiplier 3;" in text
    assert "10.0.0.0/24+, 10.1.0.0/24+" in text  # both planes' overlays refused
    assert "local 10.1.0.2 as 64600;" in text


def test_md5_when_asked_and_missing_secret_named(tmp_path):
    d = hub_doc(2, bgp_password={"file": "./md5-{pair}"})
    plans = compile_topology(load(d))
    refs = [s.password for s in plans["vps"].bgp.sessions]
    assert all(refs)
    with pytest.raises(SecretError, match="n1"):
        render_bird(plans["vps"], {})
    values = {r: f"pw-{i}" for i, r in enumerate(refs)}
    text = hub_conf(d, secrets=values)
    blocks = protocol_blocks(text)
    assert '\tpassword "pw-0";\n' in blocks["n1_v4"]
    assert '\tpassword "pw-1";\n' in blocks["n2_v4"]


def test_dual_stack_one_protocol_per_client_and_family():
    text = hub_conf(hub_doc(dual=True))
    blocks = protocol_blocks(text)
    assert set(blocks) == {f"n{i}_v{v}" for i in (1, 2, 3) for v in (4, 6)}
    assert "rs_import6([ 2001:db8:1::/48 ])" in blocks["n1_v6"]
    assert "return net ~ [ ::/0, fd00:42::/64+ ];" in text
    assert "template bgp rs_client6" in text and "protocol kernel kernel6" in text


def test_a_client_that_declares_nothing_in_a_family_imports_nothing_there():
    d = hub_doc(2, dual=True)
    d["nodes"]["n1"]["announce"] = ["100.64.1.0/24"]
    blocks = protocol_blocks(hub_conf(d))
    assert "ipv6 { import none; import limit 10 action restart; };" in blocks["n1_v6"]


def test_adding_or_removing_a_client_changes_no_other_clients_block():
    """What lets `birdc configure` keep every other session: each client is one block,
    and the shared parts (functions, templates, BFD) do not depend on who the clients are."""
    d = hub_doc(4, dual=True)
    for i, node in enumerate(d["nodes"].values(), 1):  # as the lock file keeps them
        node.update(address=f"10.0.0.{10 + i}", address6=f"fd00:42::{10 + i}")
    before = hub_conf(d)
    d["nodes"]["n5"] = {"asn": 65005, "announce": ["100.64.5.0/24"], "address": "10.0.0.15",
                        "address6": "fd00:42::15"}
    after = hub_conf(d)
    old, new = protocol_blocks(before), protocol_blocks(after)
    assert set(new) - set(old) == {"n5_v4", "n5_v6"}
    assert {k: new[k] for k in old} == old

    def shared(text: str) -> str:
        return text[:text.index("# The clients.")]

    assert shared(before) == shared(after)
    del d["nodes"]["n2"]
    removed = protocol_blocks(hub_conf(d))
    assert {k: removed[k] for k in removed if k in old} == {
        k: v for k, v in old.items() if not k.startswith("n2_")}


def test_clients_configs_do_not_depend_on_the_hubs_daemon():
    """FRR and BIRD clients peer with a BIRD hub exactly as with an FRR hub (their
    local-pref planes included)."""
    d = hub_doc(3, hubs=2)
    d["nodes"]["n2"]["daemon"] = "bird"
    with_bird = compile_topology(load(d))
    for hub in d["hubs"].values():
        hub.pop("daemon")
    with_frr = compile_topology(load(d))
    for name in ("n1", "n2", "n3"):
        assert render_machine(with_bird[name]) == render_machine(with_frr[name])
    frr_client = render_frr(with_bird["n1"])
    assert frr_client is not None and "set local-preference" in frr_client.text


def test_mesh_mode_hub_runs_no_bgp_and_check_says_daemon_is_unused():
    d = doc(2)
    d["hubs"]["vps"]["daemon"] = "bird"
    topology = load(d)
    plans = compile_topology(topology)
    assert plans["vps"].bgp is None
    assert render_bird(plans["vps"]) is None and render_frr(plans["vps"]) is None
    warnings = [i for i in check(topology) if tuple(i.loc)[-1:] == ("daemon",)]
    assert warnings and "speaks no BGP in mesh mode" in warnings[0].message


def test_a_5000_client_hub_config_is_small():
    """A client costs one short block (a few hundred bytes), not a copy of the policy."""
    text = big_hub_conf(5000)
    assert len(protocol_blocks(text)) == 5000
    assert len(text) / 5000 < 250, len(text) / 5000


@needs_bird
@pytest.mark.parametrize("hubs,dual,md5", [(1, False, False), (2, False, True),
                                            (1, True, False), (2, True, True)])
def test_bird_accepts_every_rendered_hub_config(tmp_path, hubs, dual, md5):
    network = {"bgp_password": {"file": "./md5-{pair}"}} if md5 else {}
    d = hub_doc(4, hubs=hubs, dual=dual, **network)
    plans = compile_topology(load(d))
    for hub in d["hubs"]:
        secrets = {s.password: "s3cret" for s in plans[hub].bgp.sessions if s.password}
        bird_check(tmp_path, hub_conf(d, hub, secrets))


@needs_bird
def test_bird_accepts_the_example_and_a_5000_client_hub(tmp_path):
    topology, _ = parse(EXAMPLE.read_text(), str(EXAMPLE))
    for hub in topology.hubs:
        rendered = render_bird(compile_topology(topology)[hub])
        assert rendered is not None
        bird_check(tmp_path, rendered.text)
    bird_check(tmp_path, big_hub_conf(5000))
