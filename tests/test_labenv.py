"""The one check behind the `lab` marker (tests/labenv.py, tests/conftest.py)."""

from __future__ import annotations

import os

import labenv


def test_missing_names_groups_and_programs_not_installed() -> None:
    assert labenv.missing("no-such-program-wgbgp", "/no/such/path") == [
        "no-such-program-wgbgp", "/no/such/path"]
    assert labenv.missing("sh") == []  # on PATH
    assert set(labenv.missing("sshd")) <= {"/usr/sbin/sshd"}  # a group is expanded


def test_skip_reason_says_what_is_missing() -> None:
    reason = labenv.skip_reason("no-such-program-wgbgp")
    assert reason is not None
    assert ("root" in reason) if os.geteuid() != 0 else ("no-such-program-wgbgp" in reason)

