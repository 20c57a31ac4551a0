"""Draw DOT text with Graphviz (`dot`, Debian package graphviz): SVG or PNG bytes."""

from __future__ import annotations

import shutil
import subprocess

from ..graph import Graph, engine_args, to_dot
from ..programs import install_hint

FORMATS = ("svg", "png")


class DrawError(RuntimeError):
    """Graphviz is missing or refused the DOT text."""


def draw(graph: Graph, fmt: str = "svg", *, timeout: float = 120) -> bytes:
    """The graph drawn by Graphviz in `fmt` ("svg" or "png")."""
    return run_dot(to_dot(graph), fmt, engine_args(graph), timeout=timeout)


def run_dot(text: str, fmt: str, engine: list[str], *, timeout: float = 120) -> bytes:
    """Run `dot ENGINE -TFMT` on DOT text; DrawError with the reason when it fails."""
    if fmt not in (*FORMATS, "json"):
        raise DrawError(f"unknown format {fmt!r}: Graphviz draws {', '.join(FORMATS)}")
    if shutil.which("dot") is None:
        raise DrawError(f"Graphviz's `dot` is not installed: {install_hint(['dot'])}")
    try:
        res = subprocess.run(["dot", *engine, f"-T{fmt}"], input=text.encode(),
                             capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DrawError(f"Graphviz took longer than {timeout:.0f} s") from None
    if res.returncode != 0:
        why = res.stderr.decode(errors="replace").strip().splitlines()
        raise DrawError("Graphviz refused the graph: " + (why[-1] if why else
                                                         f"exit {res.returncode}"))
    return res.stdout
