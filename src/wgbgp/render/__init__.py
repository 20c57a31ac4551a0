"""Plan -> config file text (wg-quick, FRR, sysctl, nftables). Pure; templates live here."""

from .files import (
    RenderedFile,
    render_frr,
    render_machine,
    render_nftables,
    render_sysctl,
    render_wireguard,
)

__all__ = ["RenderedFile", "render_frr", "render_machine", "render_nftables", "render_sysctl",
           "render_wireguard"]
