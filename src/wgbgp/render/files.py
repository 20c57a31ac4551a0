"""Plan -> the text of every file a machine needs. Pure: no file is read or written here."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import jinja2

from ..compile.mesh import MESH_MULTIHOP
from ..compile.plan import Plan, Tunnel

WIREGUARD_DIR = "/etc/wireguard"
FRR_CONF = "/etc/frr/frr.conf"
SYSCTL_CONF = "/etc/sysctl.d/90-wgbgp.conf"
NFTABLES_CONF = "/etc/wgbgp/nftables.nft"


@dataclass(frozen=True)
class RenderedFile:
    """A file for one machine: where it goes there, what it holds, who may read it."""

    path: str
    text: str
    mode: int = 0o644
    kind: str = ""  # wireguard, frr, sysctl, nftables

    @property
    def secret(self) -> bool:
        return self.mode & 0o077 == 0


@cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("wgbgp.render", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render_wireguard(plan: Plan, tunnel: Tunnel, private_key: str | None = None) -> RenderedFile:
    """The wg-quick config of one tunnel. With a private key it is inlined, else read at PostUp."""
    text = _env().get_template("wg-quick.conf.j2").render(
        plan=plan, tunnel=tunnel, private_key=private_key)
    # Always 0600: wg-quick warns on anything wider, and a key may be inlined.
    return RenderedFile(f"{WIREGUARD_DIR}/{tunnel.interface}.conf", text, 0o600, "wireguard")


def render_frr(plan: Plan) -> RenderedFile | None:
    """frr.conf for a machine that speaks BGP; None for one that does not (a mesh hub)."""
    if plan.bgp is None:
        return None
    text = _env().get_template("frr.conf.j2").render(
        plan=plan, bgp=plan.bgp, multihop=MESH_MULTIHOP)
    return RenderedFile(FRR_CONF, text, 0o640, "frr")


def render_sysctl(plan: Plan) -> RenderedFile:
    """The sysctl.d snippet (forwarding, redirects, reverse-path filter)."""
    return RenderedFile(SYSCTL_CONF, _env().get_template("sysctl.conf.j2").render(plan=plan),
                        0o644, "sysctl")


def render_nftables(plan: Plan) -> RenderedFile | None:
    """The hub's forwarding ruleset (its own table only); None on clients."""
    if plan.role != "hub":
        return None
    return RenderedFile(NFTABLES_CONF, _env().get_template("nftables.nft.j2").render(plan=plan),
                        0o644, "nftables")


def render_machine(plan: Plan, private_key: str | None = None) -> list[RenderedFile]:
    """Every file one machine needs, in the order apply installs them."""
    files = [render_wireguard(plan, t, private_key) for t in plan.tunnels]
    files += [f for f in (render_frr(plan), render_sysctl(plan), render_nftables(plan)) if f]
    return files
