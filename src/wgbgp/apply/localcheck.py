"""Checks that look at this machine: DNS names and secret files the topology names.

Validation (model) is pure; what needs the world happens here, at the edge, and is
handed to `parse` as its `local` step so the findings are located by file and line like
every other. The resolver and the file test are injected, so tests (and golden files)
need neither a network nor the files.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

from ..compile import peerings
from ..model import Issue
from ..model.lock import Lock, renumbered
from ..model.schema import Secret, Topology
from ..model.special import literal
from ..model.validate import covering, reach_targets

Address = IPv4Address | IPv6Address
Resolver = Callable[[str], list[Address] | None]


def resolve_here(host: str) -> list[Address] | None:
    """The addresses `host` resolves to on this machine, or None when it does not."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_UDP)
    except (OSError, UnicodeError):
        return None
    found: list[Address] = []
    for *_, sockaddr in infos:
        address = ip_address(str(sockaddr[0]).split("%")[0])
        if address not in found:
            found.append(address)
    return found or None


@dataclass
class LocalChecks:
    """The `local` step of `parse`: DNS names resolved, secret files looked for.

    `base`: the topology file's directory (relative secret files are read from there)."""

    base: Path | None = None
    resolve: Resolver = resolve_here
    exists: Callable[[Path], bool] = os.path.exists
    # The address lock read beside the topology: deployed machines that would move.
    lock: Lock | None = None
    _cache: dict[str, list[Address] | None] = field(default_factory=dict)

    def __call__(self, topology: Topology) -> list[Issue]:
        return [*self._names(topology), *self._secret_files(topology),
                *renumbered(topology, self.lock)]

    def _names(self, t: Topology) -> Iterable[Issue]:
        resolved: dict[str, list[Address]] = {}
        warned: set[str] = set()
        for what, host, loc in reach_targets(t):
            if literal(host) is not None:
                continue
            if host not in self._cache:
                self._cache[host] = self.resolve(host)
            addresses = self._cache[host]
            if addresses:
                resolved[host] = addresses
            elif host not in warned:
                warned.add(host)
                harm = ("loop the tunnel into itself" if what.startswith("hub")
                        else "cut `apply` off from it")
                yield Issue("warning", loc, f"{host} ({what}) does not resolve on this "
                            "machine, so check cannot tell whether an announced prefix "
                            f"covers it (which would {harm})",
                            "check again where the name resolves, or write the address")
        yield from covering(t, resolved)

    def _secret_files(self, t: Topology) -> Iterable[Issue]:
        net = t.network
        pairs = {
            "bgp_password": ([(h, n) for h in t.hubs for n in t.nodes]
                             if net.mode == "hub" else peerings(t)),
            "preshared_key": [(h, n) for h in t.hubs for n in t.nodes],
        }
        for key in ("bgp_password", "preshared_key"):
            secret: Secret | None = getattr(net, key)
            if secret is None or secret.file is None:
                continue
            paths = dict.fromkeys(self._path(secret.for_pair(a, b)[1])
                                  for a, b in pairs[key])
            missing = [p for p in paths if not self.exists(p)]
            if not missing:
                continue
            some = (f"{missing[0]} does not exist" if len(paths) == 1 else
                    f"{len(missing)} of the {len(paths)} files it names do not exist "
                    f"(e.g. {missing[0]})")
            yield Issue("warning", ("network", key, "file"),
                        f"{some} on this machine: `render` and `apply` read it here and "
                        "would fail",
                        "create it (mode 0600) where wgbgp runs, e.g. "
                        f"`(umask 077; wg genpsk > {missing[0]})`, or name another file")

    def _path(self, name: str) -> Path:
        path = Path(name).expanduser()
        return path if path.is_absolute() else (self.base or Path.cwd()) / path
