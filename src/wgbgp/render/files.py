"""Plan -> the text of every file a machine needs. Pure: no file is read or written here."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)
from typing import Any

import jinja2

from ..compile.intent import INTENT_PATH, intent_json
from ..compile.plan import BgpSession, Plan, Prefix, SecretRef, Tunnel
from ..model.keys import InvalidKey, decode_key
from .prefix_lists import bird_prefix_set, frr_prefix_list

WIREGUARD_DIR = "/etc/wireguard"
FRR_CONF = "/etc/frr/frr.conf"
BIRD_CONF = "/etc/bird/bird.conf"
SYSCTL_CONF = "/etc/sysctl.d/90-wgbgp.conf"
NFTABLES_CONF = "/etc/wgbgp/nftables.nft"
# The TTL (IPv6: hop limit) BIRD sends multihop BFD packets with: the system default, 64
# on Linux (FRR sends 255).
BIRD_BFD_TTL = 64
# Minutes before a session closed for sending too many prefixes is tried again.
MAX_PREFIX_RESTART = 5
# What a TCP-MD5 password may hold: printable, no spaces or comment marks (it becomes one
# word on an frr.conf line), at most the kernel's 80 bytes.
_PASSWORD = re.compile(r"^[A-Za-z0-9_.,:;@%+=/^~*()\[\]{}<>?&$-]{1,80}$")

# Secrets the renderer inlines, by where they are read. The caller reads them (I/O) and
# passes them in: see `secrets_needed`.
Secrets = Mapping[SecretRef, str]


class SecretError(ValueError):
    """A secret a plan needs is missing or malformed. The message never holds its value."""

    def __init__(self, ref: SecretRef, problem: str) -> None:
        super().__init__(f"{ref.what or 'secret'} ({ref}): {problem}")
        self.ref = ref


@dataclass(frozen=True)
class RenderedFile:
    """A file for one machine: where it goes there, what it holds, who may read it."""

    path: str
    text: str
    mode: int = 0o644
    kind: str = ""  # wireguard, frr, bird, sysctl, nftables
    # It holds a secret (private or preshared key, password): never print it.
    holds_secret: bool = False

    @property
    def secret(self) -> bool:
        return self.mode & 0o077 == 0


def secrets_needed(plan: Plan) -> tuple[SecretRef, ...]:
    """Every secret rendering this machine's files needs, each once, in order."""
    refs = [p.preshared_key for t in plan.tunnels for p in t.peers if p.preshared_key]
    if plan.bgp is not None:
        refs += [s.password for s in plan.bgp.sessions if s.password]
    return tuple(dict.fromkeys(refs))


def check_secret(ref: SecretRef, value: str) -> str:
    """The secret, checked for what it is used as; SecretError (without it) otherwise."""
    if ref.what.startswith("preshared key"):
        try:
            decode_key(value)
        except InvalidKey as exc:
            raise SecretError(ref, f"not a WireGuard preshared key ({exc}); make one with "
                              "`wg genpsk`") from None
        return value.strip()
    if not _PASSWORD.fullmatch(value):  # not .match: `$` also matches before a final \n
        raise SecretError(ref, "a BGP password is 1 to 80 characters: letters, digits and "
                          "_.,:;@%+=/^~*()[]{}<>?&$- (no spaces, '!' or '#')")
    return value


def _lookup(secrets: Secrets | None, ref: SecretRef) -> str:
    if secrets is None or ref not in secrets:
        raise SecretError(ref, "not read (wgbgp reads it when rendering, where it runs)")
    return check_secret(ref, secrets[ref])


def _le(prefix: IPv4Network, longest: int | None) -> str:
    """` le N` when more-specifics up to /N are meant, else nothing."""
    return f" le {longest}" if longest is not None and longest > prefix.prefixlen else ""


@lru_cache(maxsize=1 << 16)
def _ip_text(value: object) -> str:
    return str(value)


def _finalize(value: Any) -> Any:
    """Applied to every {{ ... }}: an address or prefix is formatted once, not at each use
    (in a mesh every neighbour's address appears in every other frr.conf, several times;
    ipaddress's str() was a fifth of rendering)."""
    return _ip_text(value) if type(value) in _IP_TYPES else value


_IP_TYPES = frozenset((IPv4Address, IPv4Network, IPv4Interface, IPv6Address, IPv6Network,
                       IPv6Interface))


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("wgbgp.render", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        finalize=_finalize,
        auto_reload=False,  # package templates never change under a running wgbgp
    )
    # A filter (`prefix | le(n)`), not a function: Jinja calls functions through
    # Context.call, several times slower, and this one runs for every prefix-list entry.
    env.filters["le"] = _le
    env.filters["frr_prefix_list"] = frr_prefix_list
    env.filters["bird_prefix_set"] = bird_prefix_set
    return env


def render_wireguard(plan: Plan, tunnel: Tunnel, private_key: str | None = None,
                     secrets: Secrets | None = None) -> RenderedFile:
    """The wg-quick config of one tunnel. With a private key it is inlined, else read at PostUp.
    Preshared keys (from `secrets`) are inlined: the file is 0600 root like a key file."""
    psks = {p.name: _lookup(secrets, p.preshared_key) for p in tunnel.peers if p.preshared_key}
    text = _env().get_template("wg-quick.conf.j2").render(
        plan=plan, tunnel=tunnel, private_key=private_key, psks=psks)
    # Always 0600: wg-quick warns on anything wider, and a key may be inlined.
    return RenderedFile(f"{WIREGUARD_DIR}/{tunnel.interface}.conf", text, 0o600, "wireguard",
                        holds_secret=bool(private_key or psks))


def render_frr(plan: Plan, secrets: Secrets | None = None) -> RenderedFile | None:
    """frr.conf for a machine that speaks BGP with FRR; None otherwise (a mesh hub, or a
    BIRD node). TCP-MD5 passwords (from `secrets`) are inlined: the file is 0640, group
    frr."""
    if plan.bgp is None or plan.bgp.daemon != "frr":
        return None
    bird_bfd_peers = (tuple(s for s in plan.bgp.sessions if s.bfd and s.multihop
                            and s.peer_daemon == "bird") if plan.bgp.bfd else ())
    text = _env().get_template("frr.conf.j2").render(
        plan=plan, bgp=plan.bgp, bird_bfd_peers=bird_bfd_peers, bird_ttl=BIRD_BFD_TTL,
        secret=lambda ref: _lookup(secrets, ref), max_prefix_restart=MAX_PREFIX_RESTART,
        families=_frr_families(plan))
    return RenderedFile(FRR_CONF, text, 0o640, "frr",
                        holds_secret=any(s.password for s in plan.bgp.sessions))


@dataclass(frozen=True)
class _Family:
    """One address family as FRR's config spells it, with its sessions."""

    version: int
    sessions: tuple[BgpSession, ...]
    base_group: str = "MESH"  # the speaker's peer-group name (IPv6: with a "6")

    @property
    def afi(self) -> str:
        return "ipv4" if self.version == 4 else "ipv6"

    @property
    def ip(self) -> str:  # prefix-list keyword
        return "ip" if self.version == 4 else "ipv6"

    @property
    def group(self) -> str:
        return self.base_group if self.version == 4 else f"{self.base_group}6"

    @property
    def own(self) -> str:
        return "OWN" if self.version == 4 else "OWN6"

    @property
    def never(self) -> str:
        return "NEVER" if self.version == 4 else "NEVER6"

    @property
    def import_map(self) -> str:
        return "IMPORT" if self.version == 4 else "IMPORT6"

    @property
    def planes(self) -> tuple[BgpSession, ...]:
        """Several hubs: one session per plane (interface) that sets a local-pref."""
        seen: dict[str, BgpSession] = {}
        for s in self.sessions:
            if s.local_pref is not None:
                seen.setdefault(s.interface, s)
        return tuple(seen.values())

    def plane_map(self, interface: str) -> str:
        """The import route-map of one plane: IMPORT-<interface> (IMPORT6-...)."""
        return f"{self.import_map}-{interface}"

    @property
    def import_lists(self) -> tuple[BgpSession, ...]:
        """One session per import prefix-list (sessions may share one)."""
        seen: dict[str, BgpSession] = {}
        for s in self.sessions:
            seen.setdefault(s.import_list, s)
        return tuple(seen.values())


def _frr_families(plan: Plan) -> list[_Family]:
    """The families this machine has sessions in (IPv4 first); IPv4 alone keeps the
    classic config unchanged."""
    assert plan.bgp is not None
    out: list[_Family] = []
    for version in (4, 6):
        sessions = tuple(s for s in plan.bgp.sessions if s.peer_address.version == version)
        has_overlay = any((t.address if version == 4 else t.address6) is not None
                          for t in plan.tunnels)
        if sessions or has_overlay:
            out.append(_Family(version, sessions, plan.bgp.group))
    return out


def render_bird(plan: Plan, secrets: Secrets | None = None) -> RenderedFile | None:
    """bird.conf for a machine whose BGP daemon is BIRD 2 (a node, or a hub-mode hub's
    route server); None otherwise. The same policy as frr.conf; TCP-MD5 passwords (from
    `secrets`) are inlined (0640, group bird)."""
    if plan.bgp is None or plan.bgp.daemon != "bird":
        return None
    # A hub's route server has its own template: shared settings in `template bgp`, a
    # client in three lines, so that 5,000 clients stay a small config.
    template = "bird-hub.conf.j2" if plan.bgp.route_server else "bird.conf.j2"
    text = _env().get_template(template).render(
        plan=plan, bgp=plan.bgp, multihop=plan.bgp.multihop, families=_frr_families(plan),
        secret=lambda ref: _lookup(secrets, ref), max_prefix_restart=MAX_PREFIX_RESTART,
        bird_net=_bird_net)
    return RenderedFile(BIRD_CONF, text, 0o640, "bird",
                        holds_secret=any(s.password for s in plan.bgp.sessions))


def _bird_net(prefix: Prefix, le: int | None) -> str:
    """A BIRD prefix-set entry: the prefix, or it and its more-specifics up to `le`."""
    return f"{prefix}{{{prefix.prefixlen},{le}}}" if le else str(prefix)


def render_sysctl(plan: Plan) -> RenderedFile:
    """The sysctl.d snippet (forwarding, redirects, reverse-path filter)."""
    return RenderedFile(SYSCTL_CONF, _env().get_template("sysctl.conf.j2").render(plan=plan),
                        0o644, "sysctl")


def _exit_families(plan: Plan) -> list[tuple[str, list[Prefix]]]:
    """Exit sources by nftables family keyword (`ip`, `ip6`): a set holds one family."""
    out: list[tuple[str, list[Prefix]]] = []
    for family, version in (("ip", 4), ("ip6", 6)):
        sources = [p for p in plan.exit_sources if p.version == version]
        if sources:
            out.append((family, sources))
    return out


def render_nftables(plan: Plan) -> RenderedFile | None:
    """The hub's forwarding ruleset (its own table only). A client that forwards (it
    announces a network beyond itself) gets a table that only clamps TCP's MSS on its
    tunnels; a client that forwards nothing needs none (its own TCP sizes itself from the
    route's MTU), so None."""
    if plan.role != "hub":
        if not plan.ip_forward:
            return None
        return RenderedFile(NFTABLES_CONF, _env().get_template(
            "nftables-client.nft.j2").render(plan=plan), 0o644, "nftables")
    return RenderedFile(NFTABLES_CONF, _env().get_template("nftables.nft.j2").render(
                            plan=plan, exit_families=_exit_families),
                        0o644, "nftables")


def render_machine(plan: Plan, private_key: str | None = None,
                   secrets: Secrets | None = None, *,
                   plans: Mapping[str, Plan] | None = None) -> list[RenderedFile]:
    """Every file one machine needs, in the order apply installs them.

    `secrets` holds the value of every secret in `secrets_needed(plan)`; SecretError names
    the first one missing or malformed (never its value). With `plans` (the whole
    topology's), the machine's intent file comes last (`render_intent`)."""
    files = [render_wireguard(plan, t, private_key, secrets) for t in plan.tunnels]
    frr = render_frr(plan) if secrets is None else render_frr(plan, secrets)
    bird = render_bird(plan) if secrets is None else render_bird(plan, secrets)
    files += [f for f in (frr, bird, render_sysctl(plan), render_nftables(plan)) if f]
    if plans is not None:
        files.append(render_intent(plans, plan.machine))
    return files


def render_intent(plans: Mapping[str, Plan], machine: str) -> RenderedFile:
    """/var/lib/wgbgp/intent.json: what should run on `machine`, for `wgbgp status` and
    `doctor` there without the topology (compile.intent). Public data only (public keys,
    addresses, ASNs, prefixes; secrets by name, never by value), so it is world-readable
    like the output of `ip addr`: a monitoring user may read it."""
    return RenderedFile(INTENT_PATH, intent_json(plans, machine), 0o644, "intent")
