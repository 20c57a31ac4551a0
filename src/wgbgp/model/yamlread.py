"""Reading YAML fast: libyaml (PyYAML's C parser) where it reads a text exactly as the
pure-Python parser does, that parser everywhere else. Pure (text in, data out).

The topology of 2,000 hub-mode clients is 8,000 lines; the pure-Python parser spent
about a second on it, and as long again on its address lock. libyaml builds the same
tree with the same line numbers about ten times faster. Only the node tree comes from
C: resolving tags (which scalar is a bool, an int) and building the data stay in Python,
with the same resolvers, so values are the same too.

Where the two parsers could differ, the pure-Python one decides:
- a syntax error: libyaml's wording differs, and a user's error message must not change
  with the machine's PyYAML build, so the text is read again by the Python parser,
  whose error is raised;
- a character the Python reader refuses (it checks the whole text first): the Python
  parser reads the text, and raises its ReaderError.
A plain scalar's style is None from the Python parser and "" from libyaml: `plain()`
says "plain" for both.
"""

from __future__ import annotations

from typing import Any

import yaml

# Present when PyYAML was built with libyaml (the Debian and PyPI wheels are).
_CLoader: Any = getattr(yaml, "CSafeLoader", None)
_NON_PRINTABLE = yaml.reader.Reader.NON_PRINTABLE


def _c_twin(loader: type[yaml.SafeLoader]) -> Any:
    """A libyaml loader with `loader`'s implicit resolvers (None without libyaml)."""
    if _CLoader is None:
        return None
    twin = _TWINS.get(loader)
    if twin is None:
        twin = type(f"C{loader.__name__}", (_CLoader,),
                    {"yaml_implicit_resolvers": loader.yaml_implicit_resolvers,
                     "yaml_constructors": loader.yaml_constructors,
                     "yaml_multi_constructors": loader.yaml_multi_constructors})
        _TWINS[loader] = twin
    return twin


_TWINS: dict[type, Any] = {}


def compose(text: str, loader: type[yaml.SafeLoader]) -> tuple[yaml.Node | None, Any]:
    """The node tree of a one-document text, and the loader to build its data with
    (`construct_document`; call `dispose` after). Read by libyaml when it can, with
    `loader`'s resolvers and constructors; any YAML error is the one `loader` raises."""
    twin = _c_twin(loader)
    if twin is not None and not _NON_PRINTABLE.search(text):
        fast = twin(text)
        try:
            return fast.get_single_node(), fast
        except yaml.YAMLError:
            fast.dispose()  # the Python parser below says what is wrong, in its words
    slow = loader(text)
    try:
        return slow.get_single_node(), slow
    except BaseException:
        slow.dispose()
        raise


def plain(node: yaml.Node) -> bool:
    """Whether a scalar node was written plain (no quotes, no block style)."""
    return isinstance(node, yaml.ScalarNode) and node.style in (None, "")


def safe_load(text: str) -> Any:
    """yaml.safe_load, by libyaml when PyYAML has it."""
    return yaml.load(text, Loader=_CLoader or yaml.SafeLoader)


def safe_dump(data: Any, **options: Any) -> str:
    """yaml.safe_dump, by libyaml's emitter when PyYAML has it. For what the address
    lock holds (machine names, numbers, addresses) the text is the same as Python's
    emitter writes (tests/model/test_model_yamlread.py); for arbitrary strings (control
    characters, long lines) the two may quote or wrap differently."""
    dumper = getattr(yaml, "CSafeDumper", None) or yaml.SafeDumper
    text: str = yaml.dump(data, Dumper=dumper, **options)
    return text
