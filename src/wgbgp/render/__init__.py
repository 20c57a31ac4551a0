"""Plan -> config file text (wg-quick, FRR, BIRD, sysctl, nftables). Pure; templates live here."""

from .files import (
    BIRD_CONF,
    FRR_CONF,
    RenderedFile,
    SecretError,
    Secrets,
    check_secret,
    render_bird,
    render_frr,
    render_intent,
    render_machine,
    render_nftables,
    render_sysctl,
    render_wireguard,
    secrets_needed,
)

__all__ = ["BIRD_CONF", "FRR_CONF", "RenderedFile", "SecretError", "Secrets", "check_secret",
           "render_bird", "render_frr", "render_intent", "render_machine", "render_nftables",
           "render_sysctl", "render_wireguard", "secrets_needed"]
