"""Load a topology file: YAML -> Topology, or every error located by file, line and field."""

from __future__ import annotations

import difflib
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from . import schema
from .issues import Issue, Loc, TopologyError
from .validate import check


class _LineMap:
    """Line numbers of every key and value in a YAML document, by path."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.keys: dict[Loc, int] = {}
        self.values: dict[Loc, int] = {}
        if root is not None:
            self._walk(root, ())

    def _walk(self, node: yaml.Node, path: Loc) -> None:
        self.values[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = (*path, key.value)
                self.keys[sub] = key.start_mark.line + 1
                self._walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, (*path, i))

    def line(self, loc: Loc, key: bool = False) -> int | None:
        # Fall back to the nearest located ancestor: "hubs.vps" for a missing field in it.
        for n in range(len(loc), -1, -1):
            sub = tuple(loc[:n])
            table = self.keys if key and n == len(loc) else self.values
            if sub in table:
                return table[sub]
            if sub in self.keys:
                return self.keys[sub]
        return None


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The schema class that owns the field at loc, to suggest known keys."""
    model: Any = schema.Topology
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        if field is None:
            # dict[str, Model] values: the name is a free key, step into the value type
            continue
        ann = field.annotation
        model = _inner_model(ann)
    return model if hasattr(model, "model_fields") else None


def _inner_model(ann: Any) -> Any:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in getattr(ann, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


_FRIENDLY = {
    "missing": ("required field is missing", "add it"),
    "ip_v4_address": ("is not a valid IPv4 address", "write it like 10.0.0.10"),
    "ip_v4_network": ("is not a valid IPv4 prefix", "write it like 192.0.2.0/24, host bits zero"),
    "int_parsing": ("is not a whole number", "write a number without quotes or units"),
    "int_type": ("is not a whole number", "write a number without quotes or units"),
    "literal_error": ("is not one of the allowed values", ""),
    "dict_type": ("must be a mapping of names to settings", "indent the entries under the key"),
    "list_type": ("must be a list", "write it as [a, b] or as '- item' lines"),
    "string_type": ("must be a string", "quote it"),
}


def _friendly(err: dict) -> tuple[str, str]:
    kind = err["type"]
    value = err.get("input")
    shown = f"{value!r} " if value is not None and not isinstance(value, dict | list) else ""
    if kind == "value_error":
        return err["msg"].removeprefix("Value error, "), ""
    if kind in ("ip_v4_network",) and isinstance(value, str) and "/" in value:
        import ipaddress

        try:
            fixed = ipaddress.ip_network(value, strict=False)
        except ValueError:
            pass
        else:
            if fixed.version == 4:
                return f"{value!r} has host bits set", f"did you mean {fixed}?"
    if kind in _FRIENDLY:
        msg, fix = _FRIENDLY[kind]
        if kind == "literal_error":
            fix = "allowed: " + err["ctx"]["expected"]
        return (f"{shown}{msg}".strip(), fix)
    if kind.startswith(("greater_than", "less_than")):
        return f"{shown}is out of range: {err['msg'].lower()}", ""
    return f"{shown}{err['msg'].lower()}".strip(), ""


def _schema_issues(exc: ValidationError, lines: _LineMap, file: str) -> list[Issue]:
    issues = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        if err["type"] == "extra_forbidden":
            model = _model_at(loc)
            known = list(model.model_fields) if model else []
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            fix = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
            issues.append(Issue("error", loc, f"unknown key '{loc[-1]}'", fix, file,
                                lines.line(loc, key=True)))
            continue
        message, fix = _friendly(err)
        issues.append(Issue("error", loc, message, fix, file, lines.line(loc)))
    return issues


def parse(text: str, file: str = "<topology>") -> tuple[schema.Topology, list[Issue]]:
    """Parse topology text; return it with its warnings, or raise TopologyError."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise TopologyError([Issue("error", (), f"YAML syntax error: {problem}",
                                   "check indentation and quoting around that line",
                                   file, line)]) from None
    if not isinstance(data, dict):
        raise TopologyError([Issue("error", (), "the file is not a YAML mapping",
                                   "start from `wgbgp init`", file, 1)])
    lines = _LineMap(root)
    try:
        topology = schema.Topology.model_validate(data)
    except ValidationError as exc:
        raise TopologyError(_schema_issues(exc, lines, file)) from None
    issues = [
        Issue(i.level, i.loc, i.message, i.fix, file, lines.line(i.loc))
        for i in check(topology)
    ]
    errors = [i for i in issues if i.level == "error"]
    if errors:
        raise TopologyError(errors)
    return topology, issues
