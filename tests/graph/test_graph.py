"""`wgbgp graph`: every example in every format, real Graphviz, and the layout guarded.

SVGs parse as XML and name every machine; DOT passes `dot -Tsvg`; Graphviz's own
placement (`-Tjson`) is checked for overlapping boxes at 30 nodes in mesh mode and 200
in hub mode, the sizes the picture must stay readable at.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

import topogen
from wgbgp.cli.main import app
from wgbgp.graph import (
    build_graph,
    engine_args,
    parse_statuses,
    to_dot,
    to_mermaid,
    topology_graph,
    with_status,
)
from wgbgp.graph.layout import layout, overlapping
from wgbgp.model import parse

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
SVG = "{http://www.w3.org/2000/svg}"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz not installed (apt-get install graphviz)")


def machines_of(path: Path) -> list[str]:
    topo, _ = parse(path.read_text(), str(path))
    return [*topo.hubs, *topo.nodes]


def run(*args: str | Path) -> object:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception)
    return result


def svg_texts(data: bytes) -> set[str]:
    root = ET.fromstring(data)
    assert root.tag == f"{SVG}svg"
    return {"".join(t.itertext()).strip() for t in root.iter(f"{SVG}text")}


@needs_dot
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
@pytest.mark.parametrize("fmt", ["svg", "png", "dot", "mermaid"])
def test_every_example_in_every_format(example: Path, fmt: str, tmp_path: Path) -> None:
    topology = tmp_path / example.name  # commands write a lock beside the topology
    shutil.copy(example, topology)
    out = tmp_path / f"picture.{fmt}"
    result = run("graph", topology, "--format", fmt, "--out", out)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    data = out.read_bytes()
    names = machines_of(example)
    if fmt == "svg":
        texts = svg_texts(data)
        assert set(names) <= texts, f"missing from the picture: {set(names) - texts}"
    elif fmt == "png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    elif fmt == "dot":
        text = data.decode()
        topo, _ = parse(example.read_text(), str(example))
        res = subprocess.run(["dot", *engine_args(topology_graph(topo)), "-Tsvg"],
                             input=text.encode(), capture_output=True)
        assert res.returncode == 0, res.stderr.decode()
        assert set(names) <= svg_texts(res.stdout)
    else:
        text = data.decode()
        assert text.splitlines()[1].startswith("flowchart ")
        for n in names:
            assert f"<b>{n}</b>" in text


def test_nodes_show_asn_and_prefixes() -> None:
    topo, _ = parse((ROOT / "examples" / "route-server.yaml").read_text(), "rs.yaml")
    g = topology_graph(topo)
    cleo = g.vertex("cleo")
    assert cleo.lines == ("AS 65203", "100.101.3.0/28", "172.20.63.0/24")
    assert g.vertex("fra").lines[0] == "AS 64600 route server"
    # Hub mode: one tunnel per client and hub, carrying the route-server session.
    spokes = [e for e in g.edges if e.kind == "tunnel"]
    assert len(spokes) == 6 * 2 and all(e.with_session for e in spokes)
    assert not [e for e in g.edges if e.kind == "session"]


def test_one_colour_per_plane() -> None:
    topo, _ = parse((ROOT / "examples" / "two-hubs.yaml").read_text(), "two-hubs.yaml")
    g = topology_graph(topo)
    assert g.planes == ("north", "south")
    dot = to_dot(g)
    north, south = g.plane_colour("north"), g.plane_colour("south")
    assert north != south
    # 3 mesh pairs on each plane, each its plane's colour; tunnels likewise.
    for plane, colour in (("north", north), ("south", south)):
        sessions = [e for e in g.edges if e.kind == "session" and e.plane == plane]
        assert len(sessions) == 3
        assert dot.count(f'color="{colour}"') >= 3 + 3 + 1  # sessions, tunnels, the hub


def big(kind: str):  # type: ignore[no-untyped-def]
    """30 clients in mesh mode, or 200 in hub mode over two hubs."""
    if kind == "mesh":
        return topogen.load(topogen.doc(30))
    d = topogen.doc(200, mode="hub")
    d["network"]["overlay"] = "10.0.0.0/22"
    d["hubs"]["vps"]["asn"] = 64600
    d["hubs"]["west"] = {"endpoint": "203.0.113.11:51820", "asn": 64600,
                         "overlay": "10.1.0.0/22", "public_key": topogen.pub("west")}
    for i in range(1, 201):
        d["nodes"][f"n{i}"]["announce"] = [f"100.{64 + i // 256}.{i % 256}.0/24"]
    return topogen.load(d)


@pytest.mark.parametrize("kind", ["mesh", "hub"])
def test_fixed_layout_keeps_boxes_apart(kind: str) -> None:
    g = topology_graph(big(kind))
    lay = layout(g)
    assert lay is not None
    assert set(lay.boxes) == set(g.machines())
    assert not overlapping(lay.boxes, gap=10), "boxes placed on top of each other"


@needs_dot
@pytest.mark.parametrize("kind", ["mesh", "hub"])
def test_graphviz_keeps_the_layout_readable(kind: str) -> None:
    """What Graphviz really drew (-Tjson: every box's position and size): no two boxes
    overlap, every machine is there, and the picture is no bigger than needed."""
    from wgbgp.graph.layout import Box

    g = topology_graph(big(kind))
    res = subprocess.run(["dot", *engine_args(g), "-Tjson"], input=to_dot(g).encode(),
                         capture_output=True, timeout=120)
    assert res.returncode == 0, res.stderr.decode()
    drawn = json.loads(res.stdout)
    boxes = {}
    for obj in drawn["objects"]:
        if obj.get("shape") in ("box", "box3d"):
            x, y = (float(v) for v in obj["pos"].split(","))
            boxes[obj["name"]] = Box(x, y, float(obj["width"]) * 72, float(obj["height"]) * 72)
    assert set(boxes) == set(g.machines())
    assert not overlapping(boxes, gap=4)
    width, height = (float(v) for v in drawn["bb"].split(",")[2:])
    # Readable at 100 %: boxes of ~150 x 50 pt, 10 a row (hub mode) or 30 round a circle.
    assert width < 2200 and height < 4000, (width, height)


STATUS = {
    "laptop": {"schema": "wgbgp.status/1", "machine": "laptop", "errors": {},
               "tunnels": [{"name": "wg-vps", "peers": [{"name": "vps", "handshake_age": 20}]}],
               "bgp": {"neighbors": [{"name": "friend", "address": "10.0.0.2",
                                      "state": "Established"}]}},
    "friend": {"schema": "wgbgp.status/1", "machine": "friend", "errors": {"bgp": "x"},
               "tunnels": [{"name": "wg-vps", "peers": [{"name": "vps",
                                                         "handshake_age": 900}]}],
               "bgp": None},
}


def test_status_colours_tunnels_and_sessions() -> None:
    topo, _ = parse((ROOT / "examples" / "classic.yaml").read_text(), "classic.yaml")
    g = with_status(topology_graph(topo), STATUS)
    state = {(e.kind, frozenset((e.a, e.b))): e.state for e in g.edges}
    assert state[("tunnel", frozenset(("laptop", "vps")))] == "up"
    assert state[("tunnel", frozenset(("friend", "vps")))] == "down"  # 900 s: stale
    # laptop still says Established (hold timer running): through the hub.
    assert state[("session", frozenset(("laptop", "friend")))] == "via-hub"
    assert g.vertex("vps").problems == ("no status",)
    assert g.vertex("friend").problems == ("bgp: unreadable",)
    dot = to_dot(g)
    assert dot.count('color="#c62828"') >= 2  # the stale tunnel and friend's box
    assert "(down)" in to_mermaid(g)


def test_a_direct_session_is_told_apart() -> None:
    topo, _ = parse((ROOT / "examples" / "classic.yaml").read_text(), "classic.yaml")
    status = json.loads(json.dumps(STATUS))
    status["laptop"]["tunnels"][0]["peers"].append({"name": "friend", "handshake_age": 5})
    g = with_status(topology_graph(topo), status)
    (session,) = [e for e in g.edges if e.kind == "session"]
    assert session.state == "direct"


def test_status_file_forms(tmp_path: Path) -> None:
    one = json.dumps(STATUS["laptop"])
    lab = json.dumps({"lab": "x", "machines": STATUS})
    lines = one + "\n" + json.dumps(STATUS["friend"]) + "\n"
    assert set(parse_statuses(one)) == {"laptop"}
    assert set(parse_statuses(lab)) == {"laptop", "friend"}
    assert set(parse_statuses(lines)) == {"laptop", "friend"}
    path = tmp_path / "s.json"
    path.write_text(lab)
    topology = tmp_path / "classic.yaml"
    shutil.copy(ROOT / "examples" / "classic.yaml", topology)
    result = run("graph", topology, "--status", path, "--format", "dot")
    assert result.exit_code == 0  # type: ignore[attr-defined]
    assert "down" in result.output  # type: ignore[attr-defined]
    path.write_text('{"not": "status"}')
    result = run("graph", topology, "--status", path, "--format", "dot")
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert "wgbgp.status/1" in result.output  # type: ignore[attr-defined]


def test_bad_format_and_out(tmp_path: Path) -> None:
    topology = tmp_path / "classic.yaml"
    shutil.copy(ROOT / "examples" / "classic.yaml", topology)
    result = run("graph", topology, "--format", "gif")
    assert result.exit_code == 2 and "--format" in result.output  # type: ignore[attr-defined]
    result = run("graph", topology, "--out", tmp_path / "missing-dir" / "x.dot")
    assert result.exit_code == 2 and "cannot write" in result.output  # type: ignore[attr-defined]
    assert not (tmp_path / "missing-dir").exists()


@needs_dot
def test_a_lab_graph_has_its_underlay() -> None:
    """Carriers with their public address, home routers, the Internet; laid out by dot."""
    from wgbgp.graph import Underlay, with_underlay
    from wgbgp.web.draw import draw

    topo, _ = parse((ROOT / "examples" / "classic.yaml").read_text(), "classic.yaml")
    g = with_underlay(topology_graph(topo), Underlay(
        ("vps",), (("laptop", "cgnat", False), ("friend", "cgnat", True)),
        (("cgnat", "198.51.100.1"),)))
    links = {(e.a, e.b) for e in g.edges if e.kind == "underlay"}
    assert links == {("carrier-cgnat", "internet"), ("vps", "internet"),
                     ("laptop", "carrier-cgnat"), ("home-friend", "carrier-cgnat"),
                     ("friend", "home-friend")}
    assert g.vertex("carrier-cgnat").lines == ("CG-NAT", "198.51.100.1")
    assert engine_args(g) == ["-Kdot"]
    texts = svg_texts(draw(g, "svg"))
    assert {"vps", "laptop", "friend", "carrier-cgnat", "home-friend", "internet",
            "home NAT"} <= texts


def test_empty_plans_build() -> None:
    assert build_graph({}, "mesh").vertices == ()
