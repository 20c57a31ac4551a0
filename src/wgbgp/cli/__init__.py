"""The `wgbgp` command (`wgbgp.cli.main:app`): one module per command group, each thin
wiring from arguments to the layers. Nothing here is an API for other code."""

__all__ = ["app"]


def __getattr__(name: str) -> object:
    # `wgbgp.cli.app` without importing every command group when one module is wanted.
    if name == "app":
        from .main import app
        return app
    raise AttributeError(name)
