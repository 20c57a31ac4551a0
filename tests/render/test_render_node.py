"""`render --node X` compiles only what X needs, and X's files are byte for byte those of
the full render: on every example, and on generated hub-mode and mesh topologies (several
hubs, both families, more-specifics, BIRD nodes, secrets). Also: the prefix-list filters
(render/prefix_lists.py) write exactly what the Jinja loops they replace wrote."""

from __future__ import annotations

import shutil
from pathlib import Path

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import topogen
from wgbgp.cli.main import app
from wgbgp.compile import Plan, compile_topology
from wgbgp.model import Topology, parse
from wgbgp.render import render_machine
from wgbgp.render.files import _env, _le, secrets_needed

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def hub_mode_doc(clients: int, *, hubs: int = 2, seed: int = 0) -> dict:
    """A hub-mode topology with variety: dual stack, `hubs` hubs, some nodes with
    more-specifics or several prefixes, every third node on BIRD, one with nothing."""
    d: dict = {
        "network": {"name": "gen", "overlay": "10.0.0.0/22", "overlay6": "auto",
                    "mode": "hub", "bgp_password": {"env": "WGBGP_BGP_{pair}"}},
        "hubs": {},
        "nodes": {},
    }
    for h in range(hubs):
        hub: dict = {"endpoint": f"198.51.100.{h + 1}:51820", "asn": 64600 + h,
                     "public_key": topogen.pub(f"hub{h}")}
        if h:
            hub["overlay"] = f"10.{4 * h}.0.0/22"
        d["hubs"][f"hub{h}"] = hub
    for i in range(clients):
        k = i + seed
        node: dict = {"asn": 4200000000 + i, "public_key": topogen.pub(f"c{i}"),
                      "announce": [f"100.{64 + i // 256}.{i % 256}.0/24"]}
        if k % 3 == 0:
            node["daemon"] = "bird"
        if k % 4 == 1:
            node["announce"].append(f"2001:db8:{i:x}::/48")
            node["more_specifics"] = {"ipv4": 28, "ipv6": 56}
        if k % 5 == 2 and k % 4 != 1:
            node["announce"].append(f"172.{16 + i // 256}.{i % 256}.1/32")
        if k % 11 == 7:
            node["announce"] = []
        d["nodes"][f"c{i}"] = node
    return d


def files(plan: Plan) -> dict[str, str]:
    """Every file of a plan, by path (its secrets, if any, all "s3cret")."""
    secrets = dict.fromkeys(secrets_needed(plan), "s3cret")
    return {f.path: f.text for f in render_machine(plan, None, secrets)}


def assert_per_node_same(topology: Topology) -> None:
    full = compile_topology(topology)
    for name in full:
        alone = compile_topology(topology, [name])
        assert list(alone) == [name]
        assert alone[name] == full[name], name
        assert files(alone[name]) == files(full[name]), name
    # Several at once: those and only those, in the full compile's order.
    some = list(full)[::3]
    assert list(compile_topology(topology, reversed(some))) == some


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_each_example_per_node_is_the_full_compile(example: Path) -> None:
    assert_per_node_same(parse(example.read_text(), example.name)[0])


def test_generated_hub_mode_per_node_is_the_full_compile() -> None:
    assert_per_node_same(topogen.load(hub_mode_doc(40)))


@settings(max_examples=25, deadline=None)
@given(topogen.topology_docs(max_nodes=8), st.booleans())
def test_random_topologies_per_node(d: dict, hub_mode: bool) -> None:
    if hub_mode:
        d["network"]["mode"] = "hub"
        d["hubs"]["hub"]["asn"] = 4200000000  # the nodes have 64512-65534
        d.pop("peerings", None)
    assert_per_node_same(topogen.load(d))


def test_cli_render_node_writes_the_full_renders_files(tmp_path: Path) -> None:
    """The command itself, on every example and a generated hub-mode topology: the tree
    `render --node X --out` writes is X's part of `render --out`, byte for byte."""
    topologies = [shutil.copy(e, tmp_path / e.name) for e in EXAMPLES]
    generated = tmp_path / "generated.yaml"
    generated.write_text(topogen.text(hub_mode_doc(30, seed=1)))
    topologies.append(generated)
    for topology in map(Path, topologies):
        topo = parse(topology.read_text(), topology.name)[0]
        machines = [*topo.hubs, *topo.nodes]
        # The generated topology's BGP passwords (`env: WGBGP_BGP_{pair}`).
        env = {f"WGBGP_BGP_{'-'.join(sorted((h, n)))}".upper().replace("-", "_"): "s3cret"
               for h in topo.hubs for n in topo.nodes}
        full = tmp_path / "full" / topology.stem
        result = CliRunner().invoke(app, ["render", str(topology), "--out", str(full)], env=env)
        assert result.exit_code == 0, result.output
        for machine in [machines[0], machines[-1], machines[len(machines) // 2]]:
            alone = tmp_path / "alone" / topology.stem / f"only-{machine}"
            result = CliRunner().invoke(app, ["render", str(topology), "--node", machine,
                                              "--out", str(alone)], env=env)
            assert result.exit_code == 0, result.output
            assert [d.name for d in alone.iterdir()] == [machine]
            assert tree(alone, machine) == tree(full, machine), (topology.name, machine)


def tree(root: Path, machine: str = "") -> dict[str, bytes]:
    base = root / machine if machine else root
    return {str(p.relative_to(base)): p.read_bytes() for p in base.rglob("*") if p.is_file()}


# --- the filters against the Jinja loops they replace -----------------------------------

# The loops as the templates had them (frr.conf.j2, bird.conf.j2).
FRR_LOOP = (
    "{% for prefix, longest in s.import_filter() %}\n"
    "{{ f.ip }} prefix-list {{ s.import_list }} seq {{ loop.index * 5 }} permit {{ prefix }}"
    "{{ prefix | le(longest) }}\n"
    "{% endfor %}\n")
FRR_FILTER = "{{ s.accept | frr_prefix_list(s.accept_le, f.ip, s.import_list) }}\n"
BIRD_LOOP = ("{% for p, longest in s.import_filter() %}{{ bird_net(p, longest if longest and "
             "longest > p.prefixlen else none) }}{{ \", \" if not loop.last }}{% endfor %}")
BIRD_FILTER = "{{ s.accept | bird_prefix_set(s.accept_le) }}"


def _bird_net(prefix, le):
    return f"{prefix}{{{prefix.prefixlen},{le}}}" if le else str(prefix)


def _sessions(topology: Topology):
    for plan in compile_topology(topology).values():
        for s in plan.bgp.sessions if plan.bgp else ():
            if s.accept:
                yield s


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_filters_write_what_the_loops_wrote(example: Path) -> None:
    topologies = [parse(example.read_text(), example.name)[0],
                  topogen.load(hub_mode_doc(24, seed=len(example.name)))]
    env: jinja2.Environment = _env()
    assert env.filters["le"] is _le
    loops = [(env.from_string(FRR_LOOP), env.from_string(FRR_FILTER)),
             (env.from_string(BIRD_LOOP), env.from_string(BIRD_FILTER))]
    checked = 0
    for topology in topologies:
        for s in _sessions(topology):
            f = {"ip": "ip" if s.afi == "ipv4" else "ipv6"}
            for loop, fast in loops:
                want = loop.render(s=s, f=f, bird_net=_bird_net)
                # Twice: the second time every prefix's text comes from the cache.
                assert fast.render(s=s, f=f) == want
                assert fast.render(s=s, f=f) == want
            checked += 1
    assert checked
