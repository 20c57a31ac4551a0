"""`keygen --into TOPOLOGY` writes the new public key into the file (nothing else
changes); `--fetch` only reads a key made elsewhere, over SSH."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from wgbgp.cli.main import app
from wgbgp.model import parse

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_into_sets_only_that_key(tmp_path):
    topology = tmp_path / "classic.yaml"
    shutil.copy(EXAMPLES / "classic.yaml", topology)
    before = topology.read_text()
    result = CliRunner().invoke(app, ["keygen", "vps", "--dir", str(tmp_path / "k"),
                                      "--into", str(topology)])
    assert result.exit_code == 0, result.output
    new = result.stdout.strip()
    old = parse(before)[0].hubs["vps"].public_key
    assert topology.read_text() == before.replace(old, new)
    assert (tmp_path / "k" / "vps.key").read_text().strip() not in result.output


def test_into_unknown_machine_makes_no_key(tmp_path):
    topology = tmp_path / "classic.yaml"
    shutil.copy(EXAMPLES / "classic.yaml", topology)
    result = CliRunner().invoke(app, ["keygen", "nobody", "--dir", str(tmp_path / "k"),
                                      "--into", str(topology)])
    assert result.exit_code == 2 and "not a machine of" in result.output
    assert not (tmp_path / "k").exists()


def test_fetch_needs_ssh_and_never_forces(tmp_path):
    for extra in ([], ["--ssh", "root@192.0.2.1", "--force"]):
        result = CliRunner().invoke(app, ["keygen", "vps", "--fetch", "--dir",
                                          str(tmp_path / "k"), *extra])
        assert result.exit_code == 2 and "--fetch" in result.output
    assert not (tmp_path / "k").exists()
