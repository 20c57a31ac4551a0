"""Load a topology file: YAML -> Topology, or every error located by file, line and field."""

from __future__ import annotations

import copy
import difflib
import ipaddress
import re
from collections.abc import Callable, Iterable
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from . import schema
from .addressing import with_recorded
from .issues import Issue, Loc, TopologyError
from .special import host_bits_fix
from .validate import check, secrets_in_text
from .yamlread import compose, plain


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans (true/false only).

    YAML 1.1 also reads yes/no/on/off as booleans, which turns a node named `on` or `no`
    into `True`/`False`.
    """


_BOOL = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


def _last_path(text: str) -> Loc:
    """The field the YAML parser was in when it failed: where a syntax error sits."""
    stack: list[list[Any]] = []  # [key or index, expecting a key (mappings only)]
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.CollectionEndEvent):
                stack.pop()
                continue
            if not isinstance(event, yaml.NodeEvent):
                continue
            if stack:
                top = stack[-1]
                if top[1] is True:  # this node is a mapping key
                    top[0], top[1] = getattr(event, "value", "?"), False
                    if isinstance(event, yaml.CollectionStartEvent):
                        stack.append([None, None])  # a complex key: ignored
                    continue
                if top[1] is False:  # a mapping value: a key comes next
                    top[1] = True
                else:
                    top[0] = 0 if top[0] is None else top[0] + 1
            if isinstance(event, yaml.MappingStartEvent):
                stack.append([None, True])
            elif isinstance(event, yaml.SequenceStartEvent):
                stack.append([None, None])
    except yaml.YAMLError:
        return tuple(p for p, _ in stack if p is not None)
    return ()


class _LineMap:
    """Line numbers of every key and value in a YAML document, by path."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.keys: dict[Loc, int] = {}
        self.values: dict[Loc, int] = {}
        # (path, line, first line) of keys a mapping holds twice: YAML keeps the last.
        self.duplicates: list[tuple[Loc, int, int]] = []
        self._seen: set[int] = set()
        # ASNs written in asdot (RFC 5396: "1.10" = 65546), by path: YAML would read 1.10
        # as the float 1.1, so the raw text is read here and the node made an int.
        self.asdot: dict[Loc, str] = {}
        if root is not None:
            self._walk(root, ())

    def _walk(self, node: yaml.Node, path: Loc) -> None:
        self.values[path] = node.start_mark.line + 1
        # An alias is the same node again: walk it once (a self-referencing alias would
        # never end, and nested ones would multiply); paths through it use its first lines.
        if id(node) in self._seen:
            return
        self._seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                # A complex key (`? {a: b}`) is not hashable: name it by its kind.
                name = key.value if isinstance(key, yaml.ScalarNode) else f"<{key.id} key>"
                sub = (*path, name)
                if sub in self.keys:
                    self.duplicates.append((sub, key.start_mark.line + 1, self.keys[sub]))
                self.keys[sub] = key.start_mark.line + 1
                if name == "asn":
                    self._asdot(value, sub)
                self._walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, (*path, i))

    def _asdot(self, node: yaml.Node, path: Loc) -> None:
        if not plain(node):
            return
        m = re.fullmatch(r"(\d+)\.(\d+)", node.value)
        if m and int(m[1]) <= 65535 and int(m[2]) <= 65535:
            self.asdot[path] = node.value
            node.tag, node.value = "tag:yaml.org,2002:int", str(int(m[1]) << 16 | int(m[2]))

    def line(self, loc: Loc, key: bool = False) -> int | None:
        """The line naming loc: its key's line (a block mapping's value starts a line
        later), a list item's own line, or the nearest located ancestor's ("hubs.vps" for
        a field missing in it)."""
        for n in range(len(loc), -1, -1):
            sub = tuple(loc[:n])
            if sub in self.keys:
                return self.keys[sub]
            if sub in self.values:
                return self.values[sub]
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
    "missing": ("required field is missing", ""),
    "ip_v4_address": ("is not a valid IPv4 address", "write it like 10.0.0.10"),
    "ip_v4_network": ("is not a valid IPv4 prefix", "write it like 192.0.2.0/24, host bits zero"),
    "ip_v6_address": ("is not a valid IPv6 address", "write it like fd42:1:2::10"),
    "int_parsing": ("is not a whole number", "write a number without quotes or units"),
    "int_type": ("is not a whole number", "write a number without quotes or units"),
    "int_from_float": ("is not a whole number", "write a number without a fraction"),
    "literal_error": ("is not one of the allowed values", ""),
    "dict_type": ("must be a mapping of names to settings", "indent the entries under the key"),
    "model_type": ("must be a mapping of settings", "indent its settings under it, one per line"),
    "list_type": ("must be a list", "write it as [a, b] or as '- item' lines"),
    "string_type": ("must be a string", "quote it"),
}

# What to write instead, by field name: the fix when an error has no more specific one.
_HINTS = {
    "network": "write it as a mapping with name, overlay and/or overlay6, and optionally "
               "mode, mtu, keepalive",
    "name": "a short lowercase name, e.g. friends",
    "overlay": "write an IPv4 prefix for tunnel addresses, e.g. 10.0.0.0/24",
    "overlay6": "write an IPv6 prefix for tunnel addresses, e.g. fd42:1:2::/64, or 'auto'",
    "mode": "leave it out, or write mesh",
    "mtu": "leave it out for 1420, or write a number from 1280 to 9000",
    "keepalive": "leave it out for 25, or write seconds from 1 to 3600",
    "hubs": "declare one hub: hubs: {vps: {endpoint: 203.0.113.10:51820}}",
    "nodes": "declare nodes by name: nodes: {laptop: {asn: 65010}}",
    "endpoint": "write the hub's public address and port, e.g. 203.0.113.10:51820",
    "address": "write an IPv4 address inside the overlay, e.g. 10.0.0.10, or leave it out",
    "address6": "write an IPv6 address inside overlay6, e.g. fd42:1:2::10, or leave it out",
    "daemon": "leave it out for frr, or write bird",
    "public_key": "paste the public key printed by `wgbgp keygen NAME` on that machine",
    "ssh": "write the SSH target as user@host",
    "asn": "use a private ASN: 64512-65534 or 4200000000-4294967294",
    "announce": "list the prefixes this node owns, e.g. [192.168.50.0/24, 2001:db8:50::/48]",
    "peerings": "write each peering as a pair of node names, e.g. [laptop, friend]",
    "lab": "see the commented lab section of `wgbgp init`",
}


def _hint(loc: Loc) -> str:
    name = next((p for p in reversed(loc) if isinstance(p, str)), "")
    if loc and loc[0] == "peerings":
        name = "peerings"
    return _HINTS.get(name, "see the commented starter written by `wgbgp init`")


def _bounds_fix(loc: Loc) -> str:
    """'use a value from LO to HI' for a bounded number field, from the schema itself."""
    model = _model_at(loc)
    field = model.model_fields.get(loc[-1]) if model and loc and isinstance(loc[-1], str) \
        else None
    if field is None:
        return ""
    lo = next((getattr(m, "ge", None) for m in field.metadata if hasattr(m, "ge")), None)
    hi = next((getattr(m, "le", None) for m in field.metadata if hasattr(m, "le")), None)
    if lo is None or hi is None:
        return ""
    fix = f"use a value from {lo} to {hi}"
    if field.default is not None and not callable(field.default):
        fix += f", or leave it out for {field.default}"
    return fix


def _friendly(err: ErrorDetails, loc: Loc) -> tuple[str, str]:
    message, fix = _describe(err, loc)
    return message, fix or _hint(loc)


def _describe(err: ErrorDetails, loc: Loc) -> tuple[str, str]:
    kind = err["type"]
    value = err.get("input")
    shown = f"{value!r} " if value is not None and not isinstance(value, dict | list) else ""
    if kind == "wgbgp":
        return err["ctx"]["message"], err["ctx"]["fix"]
    if kind == "value_error":
        return err["msg"].removeprefix("Value error, "), ""
    if loc and loc[0] == "peerings" and (
            kind == "missing" or kind.startswith(("too_long", "too_short", "tuple"))):
        return f"{shown}is not a pair of node names".strip(), ""
    if kind == "missing":
        return f"required field '{loc[-1]}' is missing" if loc else "required field missing", ""
    if kind in ("ip_v4_network",) and isinstance(value, str) and "/" in value:
        try:
            fixed = ipaddress.ip_network(value, strict=False)
        except ValueError:
            pass
        else:
            if fixed.version == 4:
                return f"{value!r} has host bits set", host_bits_fix(value) or ""
    if kind in ("int_from_float", "int_type") and loc and loc[-1] == "asn" and \
            isinstance(value, float):
        return (f"{shown}is not a whole number".strip(),
                "write the ASN as a number, or in asdot (RFC 5396) as HIGH.LOW with both "
                "parts at most 65535: 1.10 is 65546")
    if kind in _FRIENDLY:
        msg, fix = _FRIENDLY[kind]
        if kind == "literal_error":
            fix = "allowed: " + err["ctx"]["expected"]
        return (f"{shown}{msg}".strip(), fix)
    if kind.startswith(("greater_than", "less_than")):
        return f"{shown}is out of range: {err['msg'].lower()}", _bounds_fix(loc)
    return f"{shown}{err['msg'].lower()}".strip(), ""


def _error_loc(err: ErrorDetails, data: Any) -> Loc:
    """The error's path in the document, without pydantic's markers such as '[key]'.

    A part is kept when it names a key or index that exists in the data (a user's key
    may itself hold '['), or when it is the last part (a missing field)."""
    loc: list[str | int] = []
    parts = err["loc"]
    for i, part in enumerate(parts):
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        elif isinstance(part, str) and part.startswith(("[", "function-")) or i < len(parts) - 1:
            continue
        loc.append(part)
    return tuple(loc)


def _schema_issues(exc: ValidationError, data: dict, lines: _LineMap, file: str) -> list[Issue]:
    issues = []
    for err in exc.errors():
        loc = _error_loc(err, data)
        if err["type"] == "extra_forbidden":
            model = _model_at(loc)
            known = list(model.model_fields) if model else []
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            fix = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
            issues.append(Issue("error", loc, f"unknown key '{loc[-1]}'", fix, file,
                                lines.line(loc, key=True)))
            continue
        message, fix = _friendly(err, loc)
        if loc in lines.asdot:
            high, low = lines.asdot[loc].split(".")
            message += f" (written {lines.asdot[loc]}, asdot for {int(high) << 16 | int(low)})"
        issues.append(Issue("error", loc, message, fix, file, lines.line(loc)))
    return issues


# Required fields with a bad value are replaced by a neutral valid one, so the rest of
# the file can still be checked (a whole machine cannot be dropped without false errors).
_STAND_INS = {
    "asn": lambda n: 4200000000 + n,
    "endpoint": lambda n: "192.0.2.1:51820",
    "name": lambda n: "network",
}


def _salvage(data: dict, exc: ValidationError) -> tuple[schema.Topology, Any] | None:
    """The topology without the values the schema rejected, to find the other errors too.

    Drops each rejected value (an unknown key, a bad address, a bad list item) so the
    semantic checks can run over the rest. Returns the reduced topology and a function
    mapping its locations back to the file's (list items shift when one is dropped), or
    None when nothing sound is left (a required field or a whole machine is bad).
    """
    source, data = data, copy.deepcopy(data)
    drop_items: dict[Loc, set[int]] = {}
    stand_ins = 0
    try:
        for err in exc.errors():
            loc = _error_loc(err, source)
            if loc and loc[0] == "peerings" and len(loc) > 2:
                loc = loc[:2]  # a bad name inside a pair: drop the pair
            if len(loc) < 2 or (len(loc) == 2 and loc[0] in ("hubs", "nodes")):
                return None
            parent = data
            for part in loc[:-1]:
                parent = parent[part]
            if loc[-1] in _STAND_INS and err["type"] not in ("missing", "extra_forbidden"):
                stand_ins += 1
                parent[loc[-1]] = _STAND_INS[loc[-1]](stand_ins)
            elif isinstance(parent, list):
                drop_items.setdefault(loc[:-1], set()).add(loc[-1])
            else:
                parent.pop(loc[-1], None)
        kept: dict[Loc, list[int]] = {}
        for path, indices in drop_items.items():
            parent = data
            for part in path:
                parent = parent[part]
            kept[path] = [i for i in range(len(parent)) if i not in indices]
            parent[:] = [parent[i] for i in kept[path]]
        topology = schema.Topology.model_validate(data)
    except (KeyError, IndexError, TypeError, ValidationError):
        return None

    def original(loc: Loc) -> Loc:
        out: list[str | int] = []
        for part in loc:
            path = tuple(out)
            if isinstance(part, int) and path in kept and part < len(kept[path]):
                part = kept[path][part]
            out.append(part)
        return tuple(out)

    return topology, original


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
    try:
        # One pass: compose the node tree, map its line numbers, then build the data (in
        # that order: building merges `<<` keys into the tree, which would look repeated).
        root, loader = compose(text, _Loader)  # libyaml's speed, _Loader's errors
        try:
            lines = _LineMap(root)
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise TopologyError([Issue(
            "error", (), f"character {exc.character!r} is not allowed in YAML",
            "delete it; save the file as plain UTF-8 text", file, line)]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        at = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise TopologyError([Issue("error", _last_path(text), f"YAML syntax error: {problem}",
                                   _quote_fix(text, at, problem), file, at)]) from None
    if data is None:
        raise TopologyError([Issue("error", (), "the file is empty" if not text.strip() else
                                   "the file holds no YAML, only comments or blank lines",
                                   "write the topology in it: start from `wgbgp init FILE`",
                                   file, 1)])
    if not isinstance(data, dict):
        raise TopologyError([Issue("error", (), "the file is not a YAML mapping",
                                   "start from `wgbgp init`", file, 1)])
    errors = [
        Issue("error", loc, f"'{loc[-1]}' is declared twice (first on line {first}); "
              "YAML silently keeps only the last one",
              "give every machine a distinct name" if len(loc) == 2 and loc[0] in
              ("hubs", "nodes") else "remove one of them", file, line)
        for loc, line, first in lines.duplicates
    ]
    try:
        topology = schema.Topology.model_validate(data)
    except ValidationError as exc:
        errors += _schema_issues(exc, data, lines, file)
        salvaged = _salvage(data, exc)
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


def _quote_fix(text: str, line: int | None, problem: str) -> str:
    """The fix for a YAML syntax error: "quote the value" when a '{' inside a flow
    mapping (`{file: /etc/bgp-{pair}.secret}`) began another mapping."""
    fix = "check indentation and quoting around that line"
    if line is None or "'{'" not in problem:
        return fix
    source = text.splitlines()[line - 1] if line <= len(text.splitlines()) else ""
    m = re.search(r"([\w-]+):\s*([^\s\"'{},]+\{[^\s,}]*\}[^\s,}]*)", source)
    if m is None:
        return "quote the value that holds '{': inside {...} an unquoted '{' starts a mapping"
    return (f"quote the value: {m[1]}: \"{m[2]}\" (inside {{...}} an unquoted '{{' starts "
            "a mapping)")


def _by_line(issues: list[Issue]) -> list[Issue]:
    return sorted(issues, key=lambda i: (i.line or 0, [(isinstance(p, str), p) for p in i.loc]))
