"""`wgbgp agent`: the reconciler that runs on a machine (apply starts it)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path

import typer

from ..agent import Agent, FileSource, GitSource, Options
from .common import fail


def _source(topology: Path | None, source: str | None, file: str) -> FileSource | GitSource:
    if source is None:
        if topology is None:
            fail("say what to run", "a topology file (wgbgp agent FILE --node NAME), or a "
                 "git repository holding one (--source PATH-or-URL)")
        return FileSource(topology)
    if topology is not None:
        fail("give either a topology file or --source, not both")
    path = Path(source)
    if path.is_file():  # a plain topology file given as the source
        return FileSource(path)
    if "://" not in source and not path.is_dir() and ":" not in source:
        fail(f"--source {source}: no such file, directory or repository URL",
             "a git repository (a path, file://, https://, ssh://) or a topology file")
    return GitSource(source if "://" in source or ":" in source else str(path.resolve()),
                     file)


def agent(
    topology: Path | None = typer.Argument(None, help="Topology file on this machine "
                                           "(apply leaves one in /etc/wgbgp/agent)."),
    node: str = typer.Option(..., "--node", "-n", help="This machine's name."),
    source: str | None = typer.Option(None, "--source", help="Follow a topology kept in a "
                                      "git repository (path or URL) instead of a file."),
    file: str = typer.Option("topology.yaml", "--file", help="The topology's path inside "
                             "the --source repository."),
    interval: float = typer.Option(10.0, "--interval", min=0.5,
                                   help="Seconds between two reconciles without an event."),
    pull_interval: float = typer.Option(30.0, "--pull-interval", min=1.0,
                                        help="Seconds between two pulls of the source."),
    no_kick: bool = typer.Option(False, "--no-kick", help="Do not start BGP sessions on a "
                                 "fresh handshake (wait for connect-retry)."),
    once: bool = typer.Option(False, "--once", help="Pull and reconcile once, then exit "
                              "(0 healthy or repaired, 1 an error)."),
) -> None:
    """Keep this machine running its part of the topology: repair drift, restart crashed
    daemons, follow DNS endpoints and a git source, start BGP on a fresh handshake."""
    if os.geteuid() != 0:
        fail("the agent changes this machine's network: it needs root", "run it as root")
    src = _source(topology, source, file)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format=f"%(asctime)s wgbgp-agent[{node}]: %(message)s",
                        datefmt="%Y-%m-%dT%H:%M:%S")
    the_agent = Agent(node, src, options=Options(interval=interval, pull_interval=pull_interval,
                                                 kick=not no_kick))
    if once:
        the_agent.pull()
        the_agent.reconcile("once")
        raise typer.Exit(1 if the_agent.state.last_error else 0)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    logging.getLogger("wgbgp.agent").info("started (pid %d), following %s", os.getpid(),
                                          src.description)
    the_agent.run(stop)
    logging.getLogger("wgbgp.agent").info("stopped")
