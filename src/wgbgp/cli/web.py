"""`wgbgp web` and `wgbgp lab web`: the live page of the network, served locally."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from ..observe.exporter import parse_listen
from .common import fail

LISTEN_HELP = "ADDRESS:PORT to serve on (port 0: any free one). Off loopback a token is " \
              "required."
TOKEN_HELP = "File holding the token the page asks for (else $WGBGP_WEB_TOKEN). Required " \
             "when --listen is not a loopback address."
DEFAULT_LISTEN = "127.0.0.1:8586"


def _token(token_file: Path | None) -> str | None:
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            fail(f"cannot read --token-file {token_file}: {exc.strerror}",
                 "write the token into a file only you can read (chmod 600)")
        if not token:
            fail(f"--token-file {token_file} is empty", "write a long random token into it")
        return token
    return os.environ.get("WGBGP_WEB_TOKEN") or None


def _listen(listen: str, token_file: Path | None) -> tuple[str, int, str | None]:
    """(host, port, token) from the options, refusing a bad or unsafe address first."""
    from ..web.app import ListenError, check_listen

    any_port = listen.endswith(":0")
    try:
        host, port = parse_listen(listen[:-2] + ":1" if any_port else listen)
    except ValueError:
        fail(f"--listen {listen!r} is not ADDRESS:PORT", f"e.g. {DEFAULT_LISTEN}, or "
             "127.0.0.1:0 for any free port")
    token = _token(token_file)
    try:
        check_listen(host, token)
    except ListenError as exc:
        fail(str(exc), "e.g. WGBGP_WEB_TOKEN=$(openssl rand -hex 16) wgbgp web ... "
             f"--listen {listen}")
    return host, 0 if any_port else port, token


def _serve(source: object, where: tuple[str, int, str | None], interval: float) -> None:
    from ..web.collect import Source
    from ..web.serve import serve

    assert isinstance(source, Source)
    host, port, token = where

    def announce(url: str) -> None:
        # The first line of output, so scripts and browsers can find the page.
        print(url, flush=True)
        if token:
            typer.echo("a token is required: open the address once with ?token=YOUR_TOKEN",
                       err=True)

    try:
        serve(source, host, port, token=token, announce=announce, interval=interval)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror}",
             "pick another --listen address")
    except KeyboardInterrupt:
        return


def web(
    topology: Path = typer.Argument(..., help="Topology file."),
    listen: str = typer.Option(DEFAULT_LISTEN, "--listen", help=LISTEN_HELP),
    token_file: Path | None = typer.Option(None, "--token-file", help=TOKEN_HELP),
    interval: float = typer.Option(2.0, "--interval", min=0.2, help="Seconds between readings."),
    probe: bool = typer.Option(True, "--probe/--no-probe", help="Let doctor send pings and "
                               "TCP probes through the tunnels."),
) -> None:
    """A live page of the network: per machine its tunnels, BGP sessions, routes, doctor's
    findings, and the graph. Reads this machine and every machine with an `ssh:` target.

    Prints the URL first, then serves until Ctrl-C.
    """
    from ..web.collect import Source
    from .machines import reachable_machines

    where = _listen(listen, token_file)
    topo, plans, executors = reachable_machines(
        topology, "run it on one of the machines, or give machines `ssh:` targets")
    _serve(Source(topo.network.name, executors, plans, topo.network.mode, probe=probe),
           where, interval)


def lab_web(
    name: str | None = typer.Option(None, "--name", help="Lab name (default: the only "
                                    "running lab)."),
    listen: str = typer.Option(DEFAULT_LISTEN, "--listen", help=LISTEN_HELP),
    token_file: Path | None = typer.Option(None, "--token-file", help=TOKEN_HELP),
    interval: float = typer.Option(1.0, "--interval", min=0.2, help="Seconds between readings."),
) -> None:
    """The live page of the running lab (`wgbgp web` over every lab machine), with its
    carriers and NATs in the graph. Prints the URL first."""
    from ..lab.runner import LabError, require_lab
    from ..web.labsource import lab_source

    where = _listen(listen, token_file)
    if os.geteuid() != 0:
        fail("the lab needs root (its machines are namespaces)", "run it as root")
    try:
        source = lab_source(require_lab(name))
    except (LabError, OSError) as exc:
        fail(str(exc))
    _serve(source, where, interval)
