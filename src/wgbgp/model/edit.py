"""Edit a topology file's text in place: change one value or add one machine, keep
everything else (comments, order, quoting, blank lines) byte for byte. Pure."""

from __future__ import annotations

import json
import re

import yaml

from .source import Loader


class EditError(ValueError):
    """The file does not have the shape the edit needs."""


def _mapping_value(node: yaml.Node, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k, v
    return None


def _section(text: str, section: str) -> tuple[yaml.Node, yaml.Node] | None:
    """The (key, value) nodes of the top-level `section` of the YAML `text`."""
    loader = Loader(text)
    try:
        root = loader.get_single_node()
    finally:
        loader.dispose()
    return _mapping_value(root, section) if root is not None else None


def set_public_key(text: str, section: str, name: str, key: str) -> str:
    """`text` with `<section>.<name>.public_key` set to `key`: the old value's characters
    replaced where they stand, or a `public_key:` line added under the machine."""
    sec = _section(text, section)
    machine = _mapping_value(sec[1], name) if sec else None
    if machine is None or not isinstance(machine[1], yaml.MappingNode):
        raise EditError(f"{section}.{name} is not a mapping in the file")
    found = _mapping_value(machine[1], "public_key")
    if found is not None:
        value = found[1]
        if not isinstance(value, yaml.ScalarNode):
            raise EditError(f"{section}.{name}.public_key is not a single value")
        start, end = value.start_mark.index, value.end_mark.index
        return text[:start] + key + text[end:]
    body = machine[1]
    if body.flow_style:
        # `laptop: {asn: 1}` -> `laptop: {asn: 1, public_key: KEY}`
        end = body.end_mark.index - 1  # the closing brace
        return text[:end].rstrip() + f", public_key: {key}" + text[end:]
    first_key = body.value[0][0] if body.value else None
    if first_key is None:
        raise EditError(f"{section}.{name} is empty")
    indent = " " * first_key.start_mark.column
    line_start = text.rfind("\n", 0, first_key.start_mark.index) + 1
    return text[:line_start] + f"{indent}public_key: {key}\n" + text[line_start:]


def _scalar(value: object) -> str:
    """A value as YAML flow text: plain when it reads back as itself, else JSON-quoted
    (JSON strings are YAML double-quoted strings)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise EditError(f"cannot write {value!r} into the file")
    if isinstance(value, int):
        return str(value)
    if re.fullmatch(r"[A-Za-z0-9+/=.:@_-]+", value) and yaml.safe_load(value) == value:
        return value
    return json.dumps(value)


def _flow(value: object) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    return _scalar(value)


def _subtree_end(node: yaml.Node) -> int:
    """Where the last character of a node's content ends (its deepest last scalar), so
    that comments and blank lines after it stay where they are."""
    if isinstance(node, yaml.MappingNode) and node.value and not node.flow_style:
        return max(_subtree_end(node.value[-1][0]), _subtree_end(node.value[-1][1]))
    if isinstance(node, yaml.SequenceNode) and node.value and not node.flow_style:
        return _subtree_end(node.value[-1])
    return node.end_mark.index


def add_machine(text: str, section: str, name: str, fields: dict[str, object]) -> str:
    """`text` with a new machine `name` under `section` (after the last one there), its
    `fields` one per line in the style of the file; every other byte unchanged."""
    sec = _section(text, section)
    if sec is None:
        raise EditError(f"the file has no '{section}:' section")
    body = sec[1]
    if _mapping_value(body, name) is not None:
        raise EditError(f"{section}.{name} is already in the file")
    if isinstance(body, yaml.ScalarNode) and body.value in ("", "~", "null"):
        # `nodes:` with nothing under it yet.
        entry = "".join(f"\n    {k}: {_flow(v)}" for k, v in fields.items())
        start = body.start_mark.index if body.value else sec[0].end_mark.index + 1
        end = body.end_mark.index if body.value else start
        return text[:start].rstrip(" ") + f"\n  {name}:{entry}" + text[end:]
    if not isinstance(body, yaml.MappingNode):
        raise EditError(f"'{section}' is not a mapping in the file")
    inline = "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in fields.items()) + "}"
    if body.flow_style:
        # `nodes: {a: {...}}` -> `nodes: {a: {...}, friend: {...}}`; `{}` -> `{friend: ...}`
        end = body.end_mark.index - 1  # the closing brace
        sep = ", " if body.value else ""
        return text[:end].rstrip() + f"{sep}{name}: {inline}" + text[end:]
    first_key = body.value[0][0]
    indent = " " * first_key.start_mark.column
    inner = "  "
    for _, value in body.value:
        if isinstance(value, yaml.MappingNode) and not value.flow_style and value.value:
            inner = " " * (value.value[0][0].start_mark.column - first_key.start_mark.column)
            break
    lines = [f"{indent}{name}:"] + [f"{indent}{inner}{k}: {_flow(v)}" for k, v in fields.items()]
    at = _line_end(text, _subtree_end(body))
    # Comment lines indented under the last machine are its own (commented-out options):
    # they stay with it, above the new one.
    while at < len(text):
        nxt = _line_end(text, at)
        line = text[at:nxt].rstrip("\n")
        stripped = line.lstrip(" ")
        if not stripped.startswith("#") or len(line) - len(stripped) <= len(indent):
            break
        at = nxt
    if at and text[at - 1] != "\n":
        text, at = text + "\n", at + 1
    return text[:at] + "\n".join(lines) + "\n" + text[at:]


def _line_end(text: str, index: int) -> int:
    """The index just past the newline ending the line `index` is on (or the text's end)."""
    newline = text.find("\n", index)
    return len(text) if newline == -1 else newline + 1
