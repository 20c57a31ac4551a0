"""`wgbgp adopt` on files: the entries on stdout, the report on stderr, the key copied
0600 where wgbgp reads it and never printed; --into leaves the file as it was on refusal."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from topogen import keypair, pub
from wgbgp.cli.main import app

PRIVATE, PUBLIC = keypair("laptop")
WG0 = f"""[Interface]
Address = 10.0.0.10/24
PrivateKey = {PRIVATE}

[Peer]
# vps
PublicKey = {pub("vps")}
Endpoint = 203.0.113.10:51820
AllowedIPs = 10.0.0.1/32
"""
FRR = """router bgp 65010
 neighbor 10.0.0.2 remote-as 65020
 address-family ipv4 unicast
  network 100.100.100.1/32
  neighbor 10.0.0.2 route-map FROM-FRIEND in
 exit-address-family
ip prefix-list F seq 5 permit 100.100.100.2/32
route-map FROM-FRIEND permit 10
 match ip address prefix-list F
"""


@pytest.fixture
def machine(tmp_path: Path) -> list[str]:
    (tmp_path / "wg").mkdir()
    (tmp_path / "wg" / "wg0.conf").write_text(WG0)
    (tmp_path / "frr.conf").write_text(FRR)
    return ["--wg-dir", str(tmp_path / "wg"), "--frr", str(tmp_path / "frr.conf"),
            "--bird", str(tmp_path / "none"), "--key-dir", str(tmp_path / "keys"),
            "--name", "laptop"]


def test_prints_entries_and_keeps_the_key(machine, tmp_path):
    result = CliRunner().invoke(app, ["adopt", *machine])
    assert result.exit_code == 0, result.output
    assert PRIVATE not in result.output
    doc = yaml.safe_load(result.stdout)
    assert doc["nodes"]["laptop"]["public_key"] == PUBLIC
    assert doc["nodes"]["friend"] == {"asn": 65020, "address": "10.0.0.2",
                                      "announce": ["100.100.100.2/32"]}
    key = tmp_path / "keys" / "laptop.key"
    assert key.read_text().strip() == PRIVATE and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "what changes when wgbgp takes over" in result.stderr
    # Again: the same key is there, nothing changes.
    assert CliRunner().invoke(app, ["adopt", *machine]).exit_code == 0


def test_refuses_another_key_in_place(machine, tmp_path):
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "laptop.key").write_text(keypair("other")[0] + "\n")
    result = CliRunner().invoke(app, ["adopt", *machine])
    assert result.exit_code == 2 and "holds another key" in result.output


def test_into_merges_or_leaves_the_file(machine, tmp_path):
    topology = tmp_path / "t.yaml"
    topology.write_text("# ours\nnetwork: {name: friends, overlay: 10.0.0.0/24}\nhubs:\n"
                        f"  vps: {{endpoint: 203.0.113.10:51820, public_key: {pub('vps')}}}\n"
                        "nodes:\n  friend: {asn: 65020, announce: [100.100.100.2/32]}\n")
    result = CliRunner().invoke(app, ["adopt", *machine, "--into", str(topology)])
    assert result.exit_code == 0, result.output
    text = topology.read_text()
    assert text.startswith("# ours\n") and "  laptop:\n    asn: 65010\n" in text
    before = topology.read_bytes()
    again = CliRunner().invoke(app, ["adopt", *machine, "--into", str(topology)])
    assert again.exit_code == 2 and "already in the topology" in again.output
    assert topology.read_bytes() == before
