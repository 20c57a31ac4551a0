"""`wgbgp join` then `wgbgp node add`: a friend joins without hand-editing YAML; refused
requests leave the topology byte for byte as it was."""

from __future__ import annotations

import shutil
import stat
from ipaddress import ip_network
from pathlib import Path

import pytest
from typer.testing import CliRunner

from topogen import keypair, pub
from wgbgp.cli.main import app
from wgbgp.model import allocate, parse
from wgbgp.model.join import JoinRequest, encode

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(*args: str, code: int = 0):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result


@pytest.fixture
def topology(tmp_path: Path) -> Path:
    path = tmp_path / "classic.yaml"
    shutil.copy(EXAMPLES / "classic.yaml", path)
    run("check", str(path))  # the lock records everyone's number, as in real use
    return path


def test_join_makes_the_key_here_and_prints_one_line(tmp_path):
    keys = tmp_path / "keys"
    first = run("join", "--name", "newbie", "--asn", "65030", "--announce",
                "100.100.100.3/32", "--dir", str(keys))
    line = first.stdout.strip()
    assert "\n" not in line and line.startswith("wgbgp-join1.")
    key_file = keys / "newbie.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    private = key_file.read_text().strip()
    assert private not in first.output  # stdout and stderr
    # Again: the key is kept and the same request printed.
    again = run("join", "--name", "newbie", "--asn", "65030", "--announce",
                "100.100.100.3/32", "--dir", str(keys))
    assert again.stdout.strip() == line and key_file.read_text().strip() == private


def test_join_refuses_bad_options_before_making_a_key(tmp_path):
    result = run("join", "--name", "Bad Name", "--asn", "65030", "--announce", "10.9.0.0/24",
                 "--dir", str(tmp_path / "k"), code=2)
    assert "machine name" in result.output
    run("join", "--name", "ok", "--asn", "65030", "--announce", "10.9.0.1/24",
        "--dir", str(tmp_path / "k"), code=2)
    assert not (tmp_path / "k").exists()


def test_node_add_round_trip_moves_no_one(topology, tmp_path):
    before_text = topology.read_text()
    before = allocate(parse(before_text)[0])
    line = run("join", "--name", "newbie", "--asn", "65030", "--announce", "100.100.100.3/32",
               "--dir", str(tmp_path / "k")).stdout.strip()
    added = run("node", "add", str(topology), line)
    assert "added node newbie" in added.stdout
    text = topology.read_text()
    # Appended after the last node; every byte of the user's file is still there, in order.
    assert text.replace("  newbie:\n    asn: 65030\n    address: 10.0.0.3\n    public_key: "
                        + (tmp_path / "k" / "newbie.pub").read_text().strip()
                        + "\n    announce: [100.100.100.3/32]\n", "") == before_text
    topo = parse(text)[0]
    after = allocate(topo)
    assert {m: after[m] for m in before} == before
    assert str(topo.nodes["newbie"].address) == "10.0.0.3"  # pinned in the file
    assert "newbie: 3" in (topology.parent / "classic.yaml.lock").read_text()
    run("check", str(topology))


def _request(name: str, asn: int, prefix: str, key: str) -> str:
    return encode(JoinRequest(name, asn, (ip_network(prefix),), key))


@pytest.mark.parametrize("name, asn, prefix, key, match", [
    ("newbie", 65030, "100.100.100.3/32", "LAPTOP", "public key is already nodes.laptop's"),
    ("newbie", 65030, "100.100.100.0/24", "", "overlaps 100.100.100.1/32"),
    ("friend", 65030, "100.100.100.3/32", "", "already in the topology"),
    ("newbie", 65010, "100.100.100.3/32", "", "ASN 65010"),
    ("newbie", 65030, "10.0.0.128/25", "", "overlaps the overlay"),
])
def test_colliding_requests_are_refused_file_untouched(topology, name, asn, prefix, key,
                                                        match):
    lock = topology.parent / "classic.yaml.lock"
    before, before_lock = topology.read_bytes(), lock.read_bytes()
    if key == "LAPTOP":
        key = parse(before.decode())[0].nodes["laptop"].public_key
    result = run("node", "add", str(topology), _request(name, asn, prefix, key or pub(name)),
                 code=2)
    assert match in result.output
    assert topology.read_bytes() == before and lock.read_bytes() == before_lock


@pytest.mark.parametrize("damage", ["truncate", "flip", "version", "empty"])
def test_tampered_requests_are_refused(topology, damage):
    line = _request("newbie", 65030, "100.100.100.3/32", keypair("n")[1])
    bad = {"truncate": line[:-3], "flip": line[:20] + ("A" if line[20] != "A" else "B")
           + line[21:], "version": line.replace("join1", "join7"), "empty": ""}[damage]
    before = topology.read_bytes()
    result = run("node", "add", str(topology), bad, code=2)
    assert "join request is not usable" in result.output and "fix:" in result.output
    assert topology.read_bytes() == before
