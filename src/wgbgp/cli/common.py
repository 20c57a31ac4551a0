"""What every command shares: reading a topology, reporting errors, exit codes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from ..apply.localcheck import LocalChecks
from ..apply.lockfile import read_lock, write_lock
from ..model import Issue, Topology, TopologyError, parse

EXIT_OK, EXIT_UNHEALTHY, EXIT_BAD_INPUT = 0, 1, 2

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, fix: str = "", code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print a user-facing error (no traceback) and exit."""
    err.print(f"[bold red]error:[/] {escape(message)}", markup=True)
    if fix:
        err.print(f"    fix: {fix}", markup=False)
    raise typer.Exit(code)


def print_issues(issues: list[Issue]) -> None:
    for issue in issues:
        colour = "red" if issue.level == "error" else "yellow"
        # Escaped: messages quote user input and fixes like "[laptop, friend]".
        err.print(f"[{colour}]{escape(issue.format())}[/]", markup=True, soft_wrap=True)


def read_topology(path: Path, *, as_json: bool = False) -> tuple[Topology, list[Issue]]:
    """Load a topology file, or report every error in it and exit 2."""
    try:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise TopologyError([Issue("error", (), f"cannot read topology: {exc.strerror}",
                                       "check the path", str(path))]) from None
        except UnicodeDecodeError as exc:
            raise TopologyError([Issue("error", (), f"not a UTF-8 text file ({exc.reason} at "
                                       f"byte {exc.start})", "save the topology as UTF-8 text",
                                       str(path))]) from None
        lock, problem = read_lock(path)
        if problem:
            err.print(f"warning: {problem}", markup=False)
        topology, issues = parse(text, str(path), local=LocalChecks(path.parent, lock=lock),
                                 recorded=lock.numbers if lock else None)
        problem = write_lock(path, topology, lock)
        if problem:
            err.print(f"warning: {problem}", markup=False)
        return topology, issues
    except TopologyError as exc:
        if as_json:
            print(json.dumps({"ok": False, "issues": [i.to_json() for i in exc.issues]}, indent=2))
        else:
            print_issues(exc.issues)
            n = len(exc.issues)
            err.print(f"{n} error{'s' if n > 1 else ''} in {path}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None


def record_deployed(path: Path, topology: Topology, machines: list[str]) -> None:
    """Note in the address lock the addresses these machines' configs now carry (after
    render or apply), so a later edit that would renumber them is reported loudly."""
    lock, _ = read_lock(path)
    problem = write_lock(path, topology, lock, deployed=machines)
    if problem:
        err.print(f"warning: {problem}", markup=False)


def emit_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
