"""Load a topology file: YAML -> Topology, or every error located by file, line and field.

The YAML source and its line map are source.py; schema errors become messages in
schema_errors.py; the semantic checks are validate.py."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pydantic import ValidationError

from . import schema
from .addressing import with_recorded
from .issues import Issue, TopologyError
from .schema_errors import salvage, schema_issues
from .source import read_yaml
from .validate import check, secrets_in_text

LocalStep = Callable[[schema.Topology], Iterable[Issue]]


def parse(text: str, file: str = "<topology>", *, local: LocalStep | None = None,
          recorded: dict[int, dict[str, int]] | None = None
          ) -> tuple[schema.Topology, list[Issue]]:
    """Parse topology text; return it with its warnings, or raise TopologyError.

    The error lists every problem found, sorted by line: schema errors, and the semantic
    errors in the parts of the file the schema accepted. `local`: more checks over a
    schema-valid topology that look at this machine (DNS, files: apply.localcheck); their
    findings are located here like every other. `recorded`: host numbers given to its
    machines before (the address lock, model/lock.py), kept by allocation.
    """
    try:
        return _parse(text, file, local, recorded)
    except RecursionError:
        # PyYAML and pydantic recurse per level: thousands of nested brackets exhaust it.
        raise TopologyError([Issue("error", (), "the file nests too deeply to be read",
                                   "a topology is a few levels deep: flatten it", file, 1)]
                            ) from None


def _parse(text: str, file: str, local: LocalStep | None = None,
           recorded: dict[int, dict[str, int]] | None = None
           ) -> tuple[schema.Topology, list[Issue]]:
    data, lines, errors = read_yaml(text, file)
    try:
        topology = schema.Topology.model_validate(data)
    except ValidationError as exc:
        errors += schema_issues(exc, data, lines, file)
        salvaged = salvage(data, exc)
        if salvaged is not None:
            reduced, original = salvaged
            located = {e.loc for e in errors}
            for i in check(reduced):
                loc = original(i.loc)
                if i.level == "error" and loc not in located:
                    errors.append(Issue("error", loc, i.message, i.fix, file, lines.line(loc)))
        raise TopologyError(_by_line(errors)) from None
    if recorded:
        topology = with_recorded(topology, recorded)
    found = check(topology)
    if local is not None:
        found = [*found, *local(topology)]
    issues = [Issue(i.level, i.loc, i.message, i.fix, file, lines.line(i.loc)) for i in found]
    errors += [i for i in issues if i.level == "error"]
    errors += [Issue("error", (), message, fix, file, line)
               for line, message, fix in secrets_in_text(text, topology)]
    if errors:
        raise TopologyError(_by_line(errors))
    return topology, issues


def _by_line(issues: list[Issue]) -> list[Issue]:
    return sorted(issues, key=lambda i: (i.line or 0, [(isinstance(p, str), p) for p in i.loc]))
