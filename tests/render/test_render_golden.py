"""Every example's rendered files, byte for byte, against tests/golden/EXAMPLE/MACHINE/...

A template or compile change shows up here as a reviewable diff of real config files.
After an intended change, refresh them and read the diff before committing:

    WGBGP_REFRESH_GOLDEN=1 scripts/test.sh tests/render/test_render_golden.py
    git diff tests/golden
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from wgbgp.compile import compile_topology
from wgbgp.model import parse
from wgbgp.render import render_machine

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
GOLDEN = ROOT / "tests" / "golden"
REFRESH = os.environ.get("WGBGP_REFRESH_GOLDEN") == "1"


def rendered(example: Path) -> dict[str, str]:
    """relative path (MACHINE/etc/...) -> text, for every machine of the example."""
    topo, _ = parse(example.read_text(), str(example))
    return {f"{machine}/{f.path.lstrip('/')}": f.text
            for machine, plan in compile_topology(topo).items()
            for f in render_machine(plan)}


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_rendered_files_match_golden(example: Path) -> None:
    files = rendered(example)
    golden = GOLDEN / example.stem
    if REFRESH:
        shutil.rmtree(golden, ignore_errors=True)
        for rel, text in files.items():
            (golden / rel).parent.mkdir(parents=True, exist_ok=True)
            (golden / rel).write_text(text)
    on_disk = {str(p.relative_to(golden)) for p in golden.rglob("*") if p.is_file()}
    assert on_disk == set(files), (
        f"golden files for {example.name} differ in which files exist: only rendered "
        f"{sorted(set(files) - on_disk)}, only golden {sorted(on_disk - set(files))}; "
        "refresh: WGBGP_REFRESH_GOLDEN=1 scripts/test.sh tests/render/test_render_golden.py")
    for rel, text in files.items():
        assert (golden / rel).read_text() == text, (
            f"{example.name}: {rel} differs from tests/golden/{example.stem}/{rel}; if the "
            "change is intended, refresh with WGBGP_REFRESH_GOLDEN=1 and review `git diff`")


def test_every_example_has_golden_files() -> None:
    assert {p.name for p in GOLDEN.iterdir() if p.is_dir()} == {e.stem for e in EXAMPLES}
