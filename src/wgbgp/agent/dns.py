"""Follow hub endpoints given as DNS names.

wg-quick resolves an `Endpoint = vps.example.net:51820` once, when the interface comes up;
when the VPS moves to another address nothing resolves the name again. The agent does, at
every reconcile: for each peer whose configured endpoint is a name, it resolves the name
and, when the endpoint WireGuard uses is not one of the name's addresses, sets it with
`wg set IFACE peer KEY endpoint ADDRESS:PORT`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import ip_address

from ..apply.changes import parse_wg_quick
from ..apply.drift import parse_wg_config
from ..render import RenderedFile
from ..transport import Executor

Resolver = Callable[[str], list[str]]


def resolve(host: str) -> list[str]:
    """The addresses `host` resolves to here, IPv4 first ([] when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_UDP)
    except (OSError, UnicodeError):
        return []
    found: list[str] = []
    for family in (socket.AF_INET, socket.AF_INET6):
        for fam, *_, sockaddr in infos:
            if fam == family and str(sockaddr[0]) not in found:
                found.append(str(sockaddr[0]))
    return found


@dataclass(frozen=True)
class NamedEndpoint:
    interface: str
    peer: str      # public key
    label: str     # the peer's name (the `# name` comment)
    host: str
    port: int


def named_endpoints(files: Sequence[RenderedFile]) -> list[NamedEndpoint]:
    """Peers whose configured endpoint is a DNS name, from the rendered wg-quick files."""
    out = []
    for f in files:
        if f.kind != "wireguard":
            continue
        iface = parse_wg_quick(f.path, f.text).name
        for key, peer in parse_wg_config(f.text).peers.items():
            if not peer.endpoint or ":" not in peer.endpoint:
                continue
            host, _, port = peer.endpoint.rpartition(":")
            host = host.strip("[]")
            try:
                ip_address(host)
                continue  # a literal address: wg-quick set it, drift repairs it
            except ValueError:
                pass
            if port.isdigit():
                out.append(NamedEndpoint(iface, key, peer.label, host, int(port)))
    return out


def live_endpoints(executor: Executor, iface: str) -> dict[str, str]:
    """`wg show IFACE endpoints` -> {peer key: "address:port" or "(none)"}."""
    res = executor.run(["wg", "show", iface, "endpoints"], check=False, timeout=10)
    out = {}
    for line in res.stdout.splitlines() if res.ok else ():
        parts = line.split()
        if len(parts) == 2:
            out[parts[0]] = parts[1]
    return out


def _host_of(endpoint: str) -> str:
    return endpoint.rpartition(":")[0].strip("[]")


def follow(executor: Executor, files: Sequence[RenderedFile],
           resolver: Resolver = resolve) -> tuple[list[str], list[str]]:
    """Point every named endpoint at what its name resolves to now.

    Returns (actions, problems) as log lines: an endpoint updated, or a name that does not
    resolve (the peer keeps the address it has)."""
    actions: list[str] = []
    problems: list[str] = []
    live: dict[str, dict[str, str]] = {}
    for ep in named_endpoints(files):
        addresses = resolver(ep.host)
        who = f"{ep.interface} peer {ep.label or ep.peer[:8] + '…'}"
        if not addresses:
            problems.append(f"{who}: {ep.host} does not resolve; keeping its current endpoint")
            continue
        if ep.interface not in live:
            live[ep.interface] = live_endpoints(executor, ep.interface)
        current = live[ep.interface].get(ep.peer)
        if current is None:
            continue  # the interface or peer is not up: the reconcile brings it up
        if current != "(none)" and _host_of(current) in addresses:
            continue
        address = addresses[0]
        target = f"[{address}]:{ep.port}" if ":" in address else f"{address}:{ep.port}"
        res = executor.run(["wg", "set", ep.interface, "peer", ep.peer, "endpoint", target],
                           check=False, timeout=10)
        if res.ok:
            actions.append(f"{who}: {ep.host} now resolves to {address}: endpoint "
                           f"{current} -> {target}")
        else:
            problems.append(f"{who}: could not set endpoint {target}: {res.error}")
    return actions, problems
