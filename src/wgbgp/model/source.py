"""The YAML source of a topology: a loader with YAML 1.2 booleans, the line of every key and
value (`LineMap`), and the YAML-level errors (unreadable characters, syntax, an empty file,
a repeated key) located by line."""

from __future__ import annotations

import re
from typing import Any

import yaml

from .issues import Issue, Loc, TopologyError
from .yamlread import compose, plain


class Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans (true/false only).

    YAML 1.1 also reads yes/no/on/off as booleans, which turns a node named `on` or `no`
    into `True`/`False`.
    """


_BOOL = "tag:yaml.org,2002:bool"
Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


def _last_path(text: str) -> Loc:
    """The field the YAML parser was in when it failed: where a syntax error sits."""
    stack: list[list[Any]] = []  # [key or index, expecting a key (mappings only)]
    try:
        for event in yaml.parse(text, Loader=Loader):
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


class LineMap:
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


def read_yaml(text: str, file: str) -> tuple[dict[str, Any], LineMap, list[Issue]]:
    """The document's data and line map, and the keys it repeats as errors (the rest of the
    file is still checked). Raises TopologyError when there is no mapping to check."""
    try:
        # One pass: compose the node tree, map its line numbers, then build the data (in
        # that order: building merges `<<` keys into the tree, which would look repeated).
        root, loader = compose(text, Loader)  # libyaml's speed, Loader's errors
        try:
            lines = LineMap(root)
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
    repeated = [
        Issue("error", loc, f"'{loc[-1]}' is declared twice (first on line {first}); "
              "YAML silently keeps only the last one",
              "give every machine a distinct name" if len(loc) == 2 and loc[0] in
              ("hubs", "nodes") else "remove one of them", file, line)
        for loc, line, first in lines.duplicates
    ]
    return data, lines, repeated


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
