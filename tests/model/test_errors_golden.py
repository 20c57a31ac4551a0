"""Golden error files: tests/model/errors/NAME.yaml in, NAME.log (every message check
prints, in order) out, compared exactly.

A line marked `# <-` in a case is the line an error must name (the table of bad inputs
issue 2 listed became these files). Every error has a line and a fix.

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
from wgbgp.model import Issue, TopologyError, parse

HERE = Path(__file__).parent / "errors"
CASES = sorted(HERE.glob("*.yaml"))
DNS = {"vps.example.net": [ip_address("198.51.100.7")]}


def issues(path: Path) -> list[Issue]:
    local = LocalChecks(Path("/nonexistent"), resolve=DNS.get, exists=lambda p: False)
    try:
        return parse(path.read_text(), path.name, local=local)[1]
    except TopologyError as exc:
        return exc.issues


def messages(path: Path) -> str:
    return "".join(i.format() + "\n" for i in issues(path))


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_golden(case: Path):
    got = messages(case)
    log = case.with_suffix(".log")
    if os.environ.get("WGBGP_REFRESH_GOLDEN"):
        log.write_text(got)
    assert got == log.read_text()


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_errors_are_located_and_fixable(case: Path):
    found = issues(case)
    errors = [i for i in found if i.level == "error"]
    for issue in errors:
        assert issue.line and issue.fix, issue.format()
    marked = [n for n, t in enumerate(case.read_text().splitlines(), 1) if "# <-" in t]
    if marked:
        assert errors, f"{case.name}: no error"
        assert any(i.line == marked[0] for i in errors), "\n".join(i.format() for i in found)
