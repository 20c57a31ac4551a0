"""Golden error files: tests/model/errors/NAME.yaml in, NAME.log (every message check
prints, in order) out, compared exactly.

Refresh after a deliberate change of wording:
    WGBGP_REFRESH_GOLDEN=1 pytest tests/model/test_errors_golden.py
then read the diff before committing it. DNS names resolve through a fixed table here
(vps.example.net -> 198.51.100.7), and no secret file exists.
"""

from __future__ import annotations

import os
from ipaddress import ip_address
from pathlib import Path

import pytest

from wgbgp.apply.localcheck import LocalChecks
from wgbgp.model import TopologyError, parse

HERE = Path(__file__).parent / "errors"
CASES = sorted(HERE.glob("*.yaml"))
DNS = {"vps.example.net": [ip_address("198.51.100.7")]}


def messages(path: Path) -> str:
    local = LocalChecks(Path("/nonexistent"), resolve=DNS.get, exists=lambda p: False)
    try:
        _, issues = parse(path.read_text(), path.name, local=local)
    except TopologyError as exc:
        issues = exc.issues
    return "".join(i.format() + "\n" for i in issues)


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_golden(case: Path):
    got = messages(case)
    log = case.with_suffix(".log")
    if os.environ.get("WGBGP_REFRESH_GOLDEN"):
        log.write_text(got)
    assert got == log.read_text()
