"""Topologies for tests: a builder for YAML text and hypothesis strategies. Shared by
tests/model, tests/compile, tests/render and tests/cli (import as `topogen`)."""

from __future__ import annotations

import base64
import hashlib
from ipaddress import IPv4Network

import yaml
from hypothesis import strategies as st

from wgbgp.model import Topology, parse
from wgbgp.model.keys import clamp, public_key


def keypair(seed: str) -> tuple[str, str]:
    """A deterministic (private, public) WireGuard key pair for a name."""
    private = base64.b64encode(clamp(hashlib.sha256(seed.encode()).digest())).decode()
    return private, public_key(private)


def pub(seed: str) -> str:
    return keypair(seed)[1]


def doc(nodes: int = 2, *, hub: str = "vps", keys: bool = True, **network) -> dict:
    """A valid topology document with `nodes` clients n1..nN, each announcing one /32."""
    d: dict = {
        "network": {"name": "test", "overlay": "10.0.0.0/24", **network},
        "hubs": {hub: {"endpoint": "203.0.113.10:51820"}},
        "nodes": {},
    }
    if keys:
        d["hubs"][hub]["public_key"] = pub(hub)
    for i in range(1, nodes + 1):
        node = {"asn": 65000 + i, "announce": [f"100.64.{i}.0/24"]}
        if keys:
            node["public_key"] = pub(f"n{i}")
        d["nodes"][f"n{i}"] = node
    return d


def topo(nodes: int = 3, mode: str = "mesh", hubs: int = 1, **network) -> dict:
    """`doc` with `hubs` hubs (vps, then h1, h2, ... each on its own plane 10.I.0.0/24);
    in hub mode every hub gets ASN 64600 (a route server)."""
    d = doc(nodes, mode=mode, **network)
    for i in range(1, hubs):
        d["hubs"][f"h{i}"] = {"endpoint": f"203.0.113.{20 + i}:51820",
                              "overlay": f"10.{i}.0.0/24", "public_key": pub(f"h{i}")}
    if mode == "hub":
        for hub in d["hubs"].values():
            hub["asn"] = 64600
    return d


def text(d: dict) -> str:
    return yaml.safe_dump(d, sort_keys=False)


def load(d: dict) -> Topology:
    return parse(text(d), "t.yaml")[0]


# --- hypothesis -------------------------------------------------------------------------

@st.composite
def topology_docs(draw, max_nodes: int = 12, explicit_peerings: bool | None = None) -> dict:
    """Valid mesh topologies: varied overlay sizes, some pinned addresses, disjoint
    prefixes, unique ASNs, optional explicit peerings."""
    n = draw(st.integers(1, max_nodes))
    prefixlen = draw(st.integers(20, 28).filter(lambda p: 2 ** (32 - p) - 2 >= n + 1))
    overlay = IPv4Network(f"10.{draw(st.integers(0, 255))}.0.0/{prefixlen}")
    hosts = list(overlay.hosts())
    names = [f"n{i}" for i in range(n)]
    machines = ["hub", *names]
    # Pin a subset of machines to distinct addresses, anywhere in the overlay.
    pinned_names = draw(st.lists(st.sampled_from(machines), unique=True, max_size=len(machines)))
    pinned_addrs = draw(st.lists(st.sampled_from(hosts), unique=True,
                                 min_size=len(pinned_names), max_size=len(pinned_names)))
    pins = dict(zip(pinned_names, pinned_addrs, strict=True))
    asns = draw(st.lists(st.integers(64512, 65534), unique=True, min_size=n, max_size=n))
    # Disjoint prefixes: each node picks distinct /24 slots in 100.64.0.0/10, maybe split.
    slots = draw(st.lists(st.integers(0, 16383), unique=True, max_size=3 * n))
    owners = draw(st.lists(st.integers(0, n - 1), min_size=len(slots), max_size=len(slots)))
    d: dict = {
        "network": {"name": "prop", "overlay": str(overlay)},
        "hubs": {"hub": {"endpoint": "198.51.100.1:51820", "public_key": pub("hub")}},
        "nodes": {},
    }
    if "hub" in pins:
        d["hubs"]["hub"]["address"] = str(pins["hub"])
    for i, name in enumerate(names):
        node: dict = {"asn": asns[i], "public_key": pub(name)}
        if name in pins:
            node["address"] = str(pins[name])
        node["announce"] = []
        d["nodes"][name] = node
    for slot, owner in zip(slots, owners, strict=True):
        base = IPv4Network("100.64.0.0/10")
        p = IPv4Network((int(base.network_address) + slot * 256, 24))
        plen = draw(st.sampled_from([24, 25, 32]))
        p = next(p.subnets(new_prefix=plen))
        d["nodes"][names[owner]]["announce"].append(str(p))
    use_peerings = draw(st.booleans()) if explicit_peerings is None else explicit_peerings
    if use_peerings and n >= 2:
        pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
        chosen = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=len(pairs)))
        d["peerings"] = [list(p) for p in chosen]
    return d
