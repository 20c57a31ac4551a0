"""The built-in classic example, shipped with the package."""

from __future__ import annotations

import re
from importlib.resources import files

CLASSIC_NAME = "classic.yaml"


def classic_text() -> str:
    """The classic two-laptop topology, with example public keys."""
    return files("wgbgp.model").joinpath(CLASSIC_NAME).read_text(encoding="utf-8")


def starter_text() -> str:
    """The classic topology as a starter: key lines left for the user to fill in."""
    return re.sub(
        r"^(\s*)public_key: \S+\s*#\s*(.*)$|^(\s*)public_key: \S+\s*$",
        lambda m: (f"{m.group(1) or m.group(3)}# public_key: "
                   f"paste it here ({m.group(2) or 'run `wgbgp keygen NAME` there'})"),
        classic_text(),
        flags=re.M,
    )
