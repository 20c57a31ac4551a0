"""wgbgp: BGP between machines behind CG-NAT, over WireGuard through one public hub."""

__version__ = "0.1.0"

__all__ = ["__version__"]
