"""Read rendered configs back into data, to compare them with the Plan they came from.

Deliberately small and strict: it understands exactly what wgbgp renders.
"""

from __future__ import annotations

import re


def wg_quick(text: str) -> list[tuple[str, dict[str, str]]]:
    """[(section, {key: value})] of a wg-quick file; comments dropped, order kept."""
    sections: list[tuple[str, dict[str, str]]] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if m := re.fullmatch(r"\[(\w+)\]", line):
            sections.append((m.group(1), {}))
            continue
        key, sep, value = line.partition("=")
        assert sep and sections, f"not a wg-quick line: {raw!r}"
        key = key.strip()
        assert key not in sections[-1][1], f"{key} twice in one section"
        sections[-1][1][key] = value.strip()
    return sections


def frr(text: str) -> dict:
    """The parts of an frr.conf that wgbgp writes, as data."""
    got: dict = {"statics": [], "prefix_lists": {}, "neighbors": {}, "networks": [],
                 "group": {}, "in": {}, "out": {}}
    for line in text.splitlines():
        s = line.strip()
        if m := re.fullmatch(r"ip route (\S+) blackhole 250", s):
            got["statics"].append(m.group(1))
        elif m := re.fullmatch(r"ip prefix-list (\S+) seq (\d+) (permit|deny) (\S+(?: le \d+)?)",
                               s):
            got["prefix_lists"].setdefault(m.group(1), []).append(
                (int(m.group(2)), m.group(3), m.group(4)))
        elif m := re.fullmatch(r"router bgp (\d+)", s):
            got["asn"] = int(m.group(1))
        elif m := re.fullmatch(r"bgp router-id (\S+)", s):
            got["router_id"] = m.group(1)
        elif m := re.fullmatch(r"neighbor MESH (ebgp-multihop|timers) (.+)", s):
            got["group"][m.group(1)] = m.group(2)
        elif m := re.fullmatch(r"neighbor (\S+) remote-as (\d+)", s):
            got["neighbors"].setdefault(m.group(1), {})["asn"] = int(m.group(2))
        elif m := re.fullmatch(r"neighbor (\S+) peer-group (\S+)", s):
            got["neighbors"].setdefault(m.group(1), {})["group"] = m.group(2)
        elif m := re.fullmatch(r"neighbor (\S+) description (\S+)", s):
            got["neighbors"].setdefault(m.group(1), {})["description"] = m.group(2)
        elif m := re.fullmatch(r"network (\S+)", s):
            got["networks"].append(m.group(1))
        elif m := re.fullmatch(r"neighbor (\S+) prefix-list (\S+) (in|out)", s):
            got[m.group(3)][m.group(1)] = m.group(2)
        elif m := re.fullmatch(r"neighbor (\S+) route-map (\S+) (in|out)", s):
            got.setdefault("route_maps", {}).setdefault(m.group(3), {})[m.group(1)] = m.group(2)
        elif m := re.fullmatch(r"neighbor (\S+) maximum-prefix (\d+) restart (\d+)", s):
            got.setdefault("max_prefix", {})[m.group(1)] = (int(m.group(2)), int(m.group(3)))
        elif m := re.fullmatch(r"neighbor (\S+) password (\S+)", s):
            got.setdefault("passwords", {})[m.group(1)] = m.group(2)
    return got
