"""What every command shares: reading a topology, reporting errors, exit codes.

Errors go through `fail` (or `read_topology`): human text on stderr always and, when the
command was given `--json`, also `{"ok": false, "errors": [...]}` on stdout, each error an
object with a "message" and the location fields it has (file, line, field, machine, step).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

# This typer vendors click as typer._click; typer itself exports none of these.
from typer._click.core import Context
from typer._click.exceptions import UsageError
from typer._click.globals import get_current_context
from typer.core import TyperGroup

from ..apply.localcheck import LocalChecks
from ..apply.lockfile import read_lock, write_lock
from ..model import Issue, Topology, TopologyError, parse
from ..words import plural as plural  # re-exported: commands import it from here

EXIT_OK, EXIT_UNHEALTHY, EXIT_BAD_INPUT = 0, 1, 2

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

JSON_PARAM = "as_json"  # every command's --json option is this parameter


def version() -> str:
    """The installed distribution's version, else the package's own."""
    try:
        return dist_version("wgbgp")
    except PackageNotFoundError:
        from .. import __version__
        return __version__


def json_mode() -> bool:
    """Was the running command (or a group above it) given --json?"""
    ctx = get_current_context(silent=True)
    while ctx is not None:
        if ctx.params.get(JSON_PARAM):
            return True
        ctx = ctx.parent
    return False


def error_json(message: str, fix: str = "", **where: Any) -> dict[str, Any]:
    """One error for --json output: its message, fix, and location fields that are set."""
    data: dict[str, Any] = {"message": message}
    if fix:
        data["fix"] = fix
    data.update({k: v for k, v in where.items() if v is not None and v != ""})
    return data


def issue_json(issue: Issue) -> dict[str, Any]:
    return {**issue.to_json(), "message": issue.message}


def emit_errors(errors: Sequence[dict[str, Any]], **extra: Any) -> None:
    """The --json failure document: `{"ok": false, "errors": [...], ...extra}`."""
    emit_json({"ok": False, "errors": list(errors), **extra})


def fail(message: str, fix: str = "", code: int = EXIT_BAD_INPUT, *,
         issues: Iterable[Issue] = (), **where: Any) -> NoReturn:
    """Report a user-facing error (no traceback) and exit with `code`.

    `issues`: located findings behind the error (printed first); `where`: location fields
    for --json (machine=, step=, file=...)."""
    issues = list(issues)
    print_issues(issues)
    err.print(f"[bold red]error:[/] {escape(message)}", markup=True)
    if fix:
        err.print(f"    fix: {fix}", markup=False)
    if json_mode():
        emit_errors([*(issue_json(i) for i in issues if i.level == "error"),
                     error_json(message, fix, **where)])
    raise typer.Exit(code)


def print_issues(issues: Iterable[Issue]) -> None:
    for issue in issues:
        colour = "red" if issue.level == "error" else "yellow"
        # Escaped: messages quote user input and fixes like "[laptop, friend]".
        err.print(f"[{colour}]{escape(issue.format())}[/]", markup=True, soft_wrap=True)


def read_topology(path: Path, *, as_json: bool | None = None
                  ) -> tuple[Topology, list[Issue]]:
    """Load a topology file, or report every error in it and exit 2.

    `as_json` (default: whether the command has --json) also puts the errors on stdout."""
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
        print_issues(exc.issues)
        errors = [i for i in exc.issues if i.level == "error"]
        err.print(f"{plural(len(errors), 'error')} in {path}", markup=False)
        if json_mode() if as_json is None else as_json:
            emit_errors([issue_json(i) for i in errors],
                        issues=[i.to_json() for i in exc.issues])
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


ARGV_KEY = "wgbgp.argv"


class JsonErrorsGroup(TyperGroup):
    """The root command group: a usage error (missing argument, bad option value) of a
    command given --json is also reported as JSON on stdout, like every other error."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        ctx.meta.setdefault(ARGV_KEY, list(args))
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            argv: list[str] = ctx.meta.get(ARGV_KEY, [])
            options = argv[:argv.index("--")] if "--" in argv else argv
            if "--json" in options:
                command = exc.ctx.command_path if exc.ctx is not None else None
                emit_errors([error_json(exc.format_message(), kind="usage",
                                        command=command)])
            raise  # typer prints the human message on stderr and exits 2


# Help as plain text: typer's rich panels print every option's type, flags included
# (`--json <bool>`), which reads as if the flag took a value. Plain help shows flags as
# flags (`--json`) and options with values as `--node <str>`.
HELP_MARKUP = None
