"""Edit a topology file's text in place: change one value, keep everything else (comments,
order, quoting, blank lines) byte for byte. Pure."""

from __future__ import annotations

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


def set_public_key(text: str, section: str, name: str, key: str) -> str:
    """`text` with `<section>.<name>.public_key` set to `key`: the old value's characters
    replaced where they stand, or a `public_key:` line added under the machine."""
    loader = Loader(text)
    try:
        root = loader.get_single_node()
    finally:
        loader.dispose()
    sec = _mapping_value(root, section) if root is not None else None
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
