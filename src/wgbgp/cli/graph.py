"""`wgbgp graph` and `wgbgp lab graph`: the topology (or a running lab) as a picture."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import typer

from ..graph import (
    Graph,
    StatusFileError,
    parse_statuses,
    to_dot,
    to_mermaid,
    topology_graph,
    with_status,
)
from .common import err, fail, read_topology

FORMATS = ("svg", "png", "dot", "mermaid")
SUFFIXES = {".svg": "svg", ".png": "png", ".dot": "dot", ".gv": "dot", ".mmd": "mermaid",
            ".mermaid": "mermaid"}
FORMAT_HELP = "svg, png (drawn by Graphviz), dot or mermaid (text). Default: from --out's " \
              "suffix, else svg."
OUT_HELP = "Write here (atomically) instead of standard output."


def _format(fmt: str | None, out: Path | None) -> str:
    if fmt is None:
        fmt = SUFFIXES.get(out.suffix.lower(), "svg") if out is not None else "svg"
    if fmt not in FORMATS:
        fail(f"unknown --format {fmt!r}", f"use one of {', '.join(FORMATS)}")
    return fmt


def render(graph: Graph, fmt: str) -> bytes:
    """The graph in one of FORMATS (svg/png run Graphviz)."""
    if fmt == "dot":
        return to_dot(graph).encode()
    if fmt == "mermaid":
        return to_mermaid(graph).encode()
    from ..web.draw import DrawError, draw
    try:
        return draw(graph, fmt)
    except DrawError as exc:
        fail(str(exc), "install graphviz, or use --format dot or mermaid", code=1)


def write(data: bytes, out: Path | None, fmt: str) -> None:
    """To --out, whole or not at all; else to standard output."""
    if out is None:
        if fmt == "png" and sys.stdout.isatty():
            fail("a PNG is not for a terminal", "pass --out FILE.png, or redirect the output")
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)  # a picture, no secret: readable like any document
        os.replace(tmp, out)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror}", "pick a writable --out path")
    err.print(f"wrote {out} ({fmt}, {len(data)} bytes)", markup=False)


def graph(
    topology: Path = typer.Argument(..., help="Topology file."),
    fmt: str | None = typer.Option(None, "--format", "-f", help=FORMAT_HELP),
    out: Path | None = typer.Option(None, "--out", "-o", help=OUT_HELP),
    live: bool = typer.Option(False, "--live", help="Colour tunnels and sessions by their "
                              "state, read now from this machine and every machine with "
                              "an `ssh:` target."),
    status: Path | None = typer.Option(None, "--status", help="Colour by a saved "
                                       "`wgbgp status --json` (or `lab status --json`)."),
) -> None:
    """Draw the topology: hubs, nodes (AS, prefixes), tunnels, BGP sessions; one colour
    per plane. With --live or --status: each tunnel and session coloured by its state.

    Exit 0 drawn, 1 Graphviz failed, 2 bad input.
    """
    fmt = _format(fmt, out)
    if live and status is not None:
        fail("--live and --status both say where the state comes from", "pass one of them")
    topo, _warnings = read_topology(topology)
    picture = topology_graph(topo)
    if status is not None:
        try:
            statuses = parse_statuses(status.read_text(encoding="utf-8"), str(status))
        except OSError as exc:
            fail(f"cannot read {status}: {exc.strerror}", "pass a file written by "
                 "`wgbgp status --json > FILE`")
        except StatusFileError as exc:
            fail(str(exc))
        unknown = sorted(set(statuses) - set(picture.machines()))
        if unknown or not set(statuses) & set(picture.machines()):
            err.print(f"warning: {status} has status of {', '.join(sorted(statuses))}; the "
                      f"topology's machines are {', '.join(picture.machines())}"
                      + (f" ({', '.join(unknown)} ignored)" if unknown else ""), markup=False)
        picture = with_status(picture, statuses)
    elif live:
        picture = with_status(picture, _live_statuses(topology))
    write(render(picture, fmt), out, fmt)


def _live_statuses(topology: Path) -> dict[str, dict[str, object]]:
    """Status of this machine (when it is one of the topology's) and of every machine
    with an `ssh:` target."""
    from ..web.collect import Source, statuses
    from .machines import reachable_machines

    topo, plans, executors = reachable_machines(
        topology, "run it on one of the machines, give machines `ssh:` targets, or pass "
        "--status FILE from `wgbgp status --json`")
    return dict(statuses(Source(topo.network.name, executors, plans, topo.network.mode)))


NAME_HELP = "Lab name (default: the only running lab)."


def lab_graph(
    name: str | None = typer.Option(None, "--name", help=NAME_HELP),
    fmt: str | None = typer.Option(None, "--format", "-f", help=FORMAT_HELP),
    out: Path | None = typer.Option(None, "--out", "-o", help=OUT_HELP),
    live: bool = typer.Option(True, "--live/--no-live", help="Colour by the machines' "
                              "state now (default), or draw the plan only."),
) -> None:
    """Draw the running lab: its Internet, carriers and NATs, hubs, nodes, tunnels and
    sessions, coloured by their state now."""
    from ..lab.runner import LabError, require_lab
    from ..web.collect import statuses
    from ..web.labsource import lab_source

    fmt = _format(fmt, out)
    if os.geteuid() != 0:
        fail("the lab needs root (its machines are namespaces)", "run it as root")
    try:
        source = lab_source(require_lab(name), probe=False)
    except (LabError, OSError) as exc:
        fail(str(exc))
    picture = source.graph()
    if live:
        picture = with_status(picture, statuses(source))
    write(render(picture, fmt), out, fmt)
