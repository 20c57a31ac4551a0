from __future__ import annotations

from pathlib import Path

import pytest

from wgbgp.compile import compile_topology
from wgbgp.model import parse
from wgbgp.render import render_machine

ROOT = Path(__file__).resolve().parents[2]


def classic_files(text: str | None = None) -> dict[str, list]:
    text = text or (ROOT / "examples" / "classic.yaml").read_text()
    topology, _ = parse(text, "classic.yaml")
    return {name: render_machine(plan) for name, plan in compile_topology(topology).items()}


@pytest.fixture
def classic() -> dict[str, list]:
    return classic_files()
