"""The layering holds: a module imports only from layers to its left (ARCHITECTURE.md),
and the pure layers never import a module that runs processes or touches files."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "wgbgp"
# Left to right; a layer may import its own package and any layer with a lower rank.
# graph is pure (topology -> DOT text) and sits after render; web serves observe's and the
# lab's results, so it sits after lab and before the cli that starts it. The agent runs
# apply and observe on its machine; the lab starts it.
RANK = {"programs": 0, "words": 0, "model": 1, "compile": 2, "render": 3, "graph": 3.5,
        "transport": 4, "apply": 5, "observe": 6, "agent": 7, "lab": 8, "web": 8.5,
        "cli": 9, "__main__": 10}
PURE = {"model", "compile", "render", "graph"}
IMPURE_STDLIB = {"subprocess", "socket", "asyncssh", "shutil"}


def imports(path: Path) -> list[tuple[str, int]]:
    """(absolute module imported, line) for every import in one module, lazy ones too."""
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    here = list(rel.parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.append((module, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
    return found


def layer(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def test_every_package_has_a_rank() -> None:
    layers = {layer(p) for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert layers <= set(RANK), f"give {sorted(layers - set(RANK))} a place in RANK"


def test_imports_only_go_left() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent == PACKAGE and path.name == "__init__.py":
            continue
        mine = layer(path)
        for module, line in imports(path):
            parts = module.split(".")
            if parts[0] != "wgbgp" or len(parts) < 2:
                continue
            if RANK[parts[1]] > RANK[mine]:
                wrong.append(f"{path.relative_to(PACKAGE)}:{line} ({mine}) imports {module}")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_pure_layers_do_no_io() -> None:
    wrong = [f"{p.relative_to(PACKAGE)}:{line} imports {m}"
             for p in sorted(PACKAGE.rglob("*.py")) if layer(p) in PURE
             for m, line in imports(p) if m.split(".")[0] in IMPURE_STDLIB]
    assert not wrong, "pure layers must not run processes or open sockets:\n" + "\n".join(wrong)
