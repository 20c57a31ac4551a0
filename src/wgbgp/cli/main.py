"""The `wgbgp` command: thin wiring from arguments to the layers."""

from __future__ import annotations

import typer

from . import (
    adopt,
    agent,
    apply,
    bootstrap,
    graph,
    join,
    keys,
    lab,
    observe,
    rotate,
    topology,
    web,
)
from .common import HELP_MARKUP, JsonErrorsGroup, version

app = typer.Typer(
    name="wgbgp",
    help="BGP between machines behind CG-NAT, over WireGuard through one public hub.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=HELP_MARKUP,
    cls=JsonErrorsGroup,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"wgbgp {version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    show_version: bool = typer.Option(False, "--version", is_eager=True,
                                      callback=_print_version,
                                      help="Print wgbgp's version and exit."),
) -> None:
    """BGP between machines behind CG-NAT, over WireGuard through one public hub."""


app.command()(topology.init)
app.command()(topology.check)
app.command()(topology.render)
app.command()(keys.keygen)
app.command()(keys.pubkey)
app.add_typer(rotate.app, name="keys")
app.command()(join.join)
app.add_typer(join.app, name="node")
app.command("adopt")(adopt.adopt_command)
app.command("bootstrap")(bootstrap.bootstrap_command)
app.command()(apply.plan)
app.command()(apply.apply)
app.command()(apply.down)
app.add_typer(lab.app, name="lab")
app.command()(observe.status)
app.command()(observe.doctor)
app.command()(observe.exporter)
app.command()(graph.graph)
lab.app.command("graph")(graph.lab_graph)
app.command()(web.web)
lab.app.command("web")(web.lab_web)
app.command()(agent.agent)


def main() -> None:
    app(prog_name="wgbgp")
