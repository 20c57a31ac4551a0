"""BGP state from BIRD 2's text output (it has no JSON). Pure: text in, typed objects out.

Sources (`birdc` through the control socket /run/bird/bird.ctl):
- `birdc show status`: router ID ("Router ID is 10.0.0.4");
- `birdc show protocols all`: one block per protocol. A block starts at column 0 with
  `NAME PROTO TABLE STATE SINCE INFO`, followed by indented `Key: value` lines; BGP blocks
  carry `Description`, `BGP state`, `Neighbor address`, `Neighbor AS`, `Local AS`,
  `Last error`, and per channel `Routes: N imported, [F filtered, ]M exported, ...` and
  `Input filter` / `Output filter`;
- `birdc show route`: `PREFIX TYPE [PROTO SINCE from ADDR] * (PREF) [ASPATH]` lines, a
  following path of the same prefix indented, then `\tvia NEXTHOP on IFACE`.

The objects are the ones `observe.frr` makes (BgpNeighbor, BgpPath, BgpStatus), so status,
doctor and the lab read a BIRD node like an FRR one. Checked against BIRD 2.0.12 output
(tests/observe/fixtures/bird).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .frr import BgpNeighbor, BgpPath

# `birdc` prints this banner first; every parser skips it.
_BANNER = re.compile(r"^BIRD \S+ ready\.$")
_HEADER = re.compile(r"^Name\s+Proto\s+Table\s+State\s+Since\s+Info")
_KEY = re.compile(r"^\s+([A-Za-z][A-Za-z0-9 /.-]*?):\s+(.*)$")
_ROUTES = re.compile(r"(\d+) imported(?:, (\d+) filtered)?, (\d+) exported")
_ROUTE = re.compile(
    r"^(?P<prefix>\S+)?\s+(?P<type>unicast|blackhole|unreachable|prohibited|\S+)\s+"
    r"\[(?P<proto>\S+)\s+[^\]]*?(?:\sfrom\s(?P<from>\S+))?\]\s*(?P<best>\*)?\s*"
    r"(?:\((?P<pref>\d+)\)(?:/\S+)?)?\s*(?:\[(?P<path>[^\]]*)\])?")
_VIA = re.compile(r"^\s+via\s+(\S+)(?:\s+on\s+(\S+))?")


class BirdOutputError(ValueError):
    """Output that is not what birdc prints for that command."""


@dataclass
class Protocol:
    """One protocol block of `show protocols all`."""

    name: str
    proto: str
    table: str
    state: str
    info: str
    since: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    channels: dict[str, dict[str, str]] = field(default_factory=dict)


def _lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if not _BANNER.match(ln.strip())]


def parse_protocols(text: str) -> list[Protocol]:
    """`birdc show protocols all` -> its protocol blocks, in order."""
    lines = _lines(text)
    if not any(_HEADER.match(ln) for ln in lines):
        first = next((ln for ln in lines if ln.strip()), "")
        raise BirdOutputError(f"`birdc show protocols all` printed no protocol table: "
                              f"{first[:120]!r}")
    out: list[Protocol] = []
    channel: dict[str, str] | None = None
    for line in lines:
        if not line.strip() or _HEADER.match(line):
            continue
        if not line[0].isspace():
            parts = line.split(None, 5)
            if len(parts) < 4:
                continue
            # SINCE may be "12:00:00.123" or "2024-01-01 12:00:00"; INFO is what follows.
            rest = parts[5] if len(parts) > 5 else ""
            since_extra = re.match(r"^(\d\d:\d\d:\d\d(?:\.\d+)?)\s*(.*)$", rest)
            info = since_extra.group(2) if since_extra else rest
            since = f"{parts[4]} {since_extra.group(1)}" if since_extra else parts[4]
            out.append(Protocol(parts[0], parts[1], parts[2], parts[3], info.strip(), since))
            channel = None
            continue
        if not out:
            continue
        stripped = line.strip()
        if stripped.startswith("Channel "):
            channel = out[-1].channels.setdefault(stripped.split()[1], {})
            continue
        m = _KEY.match(line)
        if m:
            key, value = m.group(1).strip(), m.group(2).strip()
            target = channel if channel is not None else out[-1].fields
            target.setdefault(key, value)
    return out


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _seconds(stamp: str) -> float | None:
    """Seconds since midnight of BIRD's time of day ("09:06:13.786", maybe after a date)."""
    m = re.search(r"(\d\d):(\d\d):(\d\d(?:\.\d+)?)$", stamp.strip())
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) if m else None


def uptime(since: str, now: str | None) -> float | None:
    """Seconds from a protocol's SINCE to the server's current time (BIRD shows times of
    day; a session up since before midnight wraps)."""
    a, b = _seconds(since), _seconds(now or "")
    if a is None or b is None:
        return None
    return round((b - a) % 86400, 3)


def parse_server_time(text: str) -> str | None:
    """`birdc show status` -> "Current server time is ..." value."""
    m = re.search(r"^Current server time is (.+)$", text, re.M)
    return m.group(1).strip() if m else None


def neighbors(protocols: list[Protocol], now: str | None = None) -> tuple[BgpNeighbor, ...]:
    """BGP protocols -> neighbours, as FRR's parser describes them. `now`: the server time
    from `show status`, for session uptimes."""
    out = []
    for p in protocols:
        if p.proto != "BGP":
            continue
        f = p.fields
        state = f.get("BGP state") or (p.info.split()[0] if p.info else "")
        state = state or ("Down" if p.state == "down" else "Unknown")
        established = state == "Established"
        received = sent = None
        filters_in: list[str] = []
        filters_out: list[str] = []
        for ch in p.channels.values():
            m = _ROUTES.search(ch.get("Routes", ""))
            if m:
                received = (received or 0) + int(m.group(1))
                sent = (sent or 0) + int(m.group(3))
            for key, dest in (("Input filter", filters_in), ("Output filter", filters_out)):
                name = ch.get(key)
                if name and name not in ("ACCEPT",):
                    dest.append(f"filter {name}")
        policy_in = bool(filters_in) if p.channels else None
        policy_out = bool(filters_out) if p.channels else None
        error = f.get("Last error")
        out.append(BgpNeighbor(
            address=f.get("Neighbor address", ""),
            state=state,
            remote_as=_int(f.get("Neighbor AS")),
            local_as=_int(f.get("Local AS")),
            description=f.get("Description"),
            established_for=uptime(p.since, now) if established else None,
            prefixes_received=received if established else None,
            prefixes_sent=sent if established else None,
            policy_in=policy_in,
            policy_out=policy_out,
            filters_in=tuple(filters_in),
            filters_out=tuple(filters_out),
            last_reset=error,
            last_notification=error if error and "Received:" in error else None,
            admin_down=p.state == "down" and "disabled" in p.info.lower(),
        ))
    return tuple(out)


def protocol_names(protocols: list[Protocol]) -> dict[str, str]:
    """BGP protocol name -> neighbour address (to attribute routes to neighbours)."""
    return {p.name: p.fields.get("Neighbor address", "") for p in protocols if p.proto == "BGP"}


def parse_routes(text: str, peers: dict[str, str] | None = None) -> tuple[BgpPath, ...]:
    """`birdc show route` -> paths. A path from BGP protocol P has peer = P's neighbour
    address (from `peers`, else the `from` address); static routes have peer None."""
    peers = peers or {}
    out: list[BgpPath] = []
    prefix = None
    for line in _lines(text):
        if not line.strip() or line.startswith("Table "):
            continue
        via = _VIA.match(line)
        if via:
            if out and out[-1].nexthop is None:
                last = out[-1]
                out[-1] = BgpPath(last.prefix, last.peer, last.valid, last.best, last.as_path,
                                  via.group(1))
            continue
        m = _ROUTE.match(line)
        if not m:
            continue
        prefix = m.group("prefix") or prefix
        if prefix is None:
            continue
        proto = m.group("proto")
        peer = peers.get(proto) or m.group("from")
        path = (m.group("path") or "").removeprefix("AS").rstrip("ie?").replace(" AS", " ")
        out.append(BgpPath(prefix=prefix, peer=peer if proto in peers or m.group("from")
                           else None, valid=True, best=bool(m.group("best")),
                           as_path=path.strip()))
    return tuple(out)


def parse_router_id(text: str) -> str | None:
    """`birdc show status` -> the router ID."""
    m = re.search(r"^Router ID is (\S+)", text, re.M)
    return m.group(1) if m else None


def local_as(protocols: list[Protocol]) -> int | None:
    return next((_int(p.fields.get("Local AS")) for p in protocols
                 if p.proto == "BGP" and p.fields.get("Local AS")), None)
