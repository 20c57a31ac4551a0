"""The CLI with secrets named in the topology: read where wgbgp runs, written only to
restricted files, never printed; `keys rotate` refusing what it cannot do safely."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from topogen import doc, text
from wgbgp.cli.main import app

MD5 = "Md5-s3cret.value"
PSK = "E4v5wX0kqN1v3gQ2pS6nYt8rU9iO0pA1sD2fG3hJ4kM="


def run(*args, env=None):
    result = CliRunner().invoke(app, [str(a) for a in args], env=env)
    assert "Traceback" not in result.output + result.stderr
    return result


@pytest.fixture
def topo(tmp_path: Path) -> Path:
    d = doc(2)
    d["network"]["bgp_password"] = {"file": "md5-{pair}.secret".replace("md5", "./md5")}
    d["network"]["preshared_key"] = {"env": "T_PSK"}
    (tmp_path / "md5-n1-n2.secret").write_text(MD5 + "\n")
    (tmp_path / "md5-n1-n2.secret").chmod(0o600)
    path = tmp_path / "t.yaml"
    path.write_text(text(d))
    return path


def test_render_reads_secrets_and_writes_them_only_to_restricted_files(tmp_path, topo):
    out = tmp_path / "out"
    result = run("render", topo, "--out", out, env={"T_PSK": PSK})
    assert result.exit_code == 0, result.output
    assert MD5 not in result.output + result.stderr and PSK not in result.output + result.stderr
    frr = out / "n1/etc/frr/frr.conf"
    wg = out / "n1/etc/wireguard/wg-vps.conf"
    assert f"password {MD5}\n" in frr.read_text() and f"PresharedKey = {PSK}\n" in wg.read_text()
    assert stat.S_IMODE(frr.stat().st_mode) == 0o640
    assert stat.S_IMODE(wg.stat().st_mode) == 0o600
    hub = (out / "vps/etc/wireguard/wg-vps.conf").read_text()
    assert hub.count(f"PresharedKey = {PSK}") == 2 and MD5 not in hub


def test_render_refuses_to_print_secrets(topo):
    result = run("render", topo, "-n", "n1", env={"T_PSK": PSK})
    assert result.exit_code == 2 and "refusing to print" in result.stderr
    assert MD5 not in result.output + result.stderr and PSK not in result.output + result.stderr
    # The hub holds only preshared keys, and is refused too.
    assert run("render", topo, "-n", "vps", env={"T_PSK": PSK}).exit_code == 2


def test_missing_or_unsafe_secret_is_named_not_shown(tmp_path, topo):
    result = run("render", topo, "--out", tmp_path / "o", env={})
    assert result.exit_code == 2 and "T_PSK is not set" in result.stderr
    result = run("render", topo, "--out", tmp_path / "o", env={"T_PSK": "hunter2-not-a-key"})
    assert result.exit_code == 2 and "hunter2" not in result.stderr
    (tmp_path / "md5-n1-n2.secret").chmod(0o644)
    result = run("render", topo, "--out", tmp_path / "o", env={"T_PSK": PSK})
    assert result.exit_code == 2 and "readable by everyone" in result.stderr
    assert MD5 not in result.stderr and not (tmp_path / "o").exists()


def test_check_refuses_a_literal_secret(tmp_path):
    d = doc(2)
    d["network"]["bgp_password"] = "hunter2-literal"
    path = tmp_path / "t.yaml"
    path.write_text(text(d))
    result = run("check", path)
    assert result.exit_code == 2 and "network.bgp_password" in result.stderr
    assert "hunter2" not in result.output + result.stderr
    result = run("check", path, "--json")
    assert result.exit_code == 2 and "hunter2" not in result.output


def test_rotate_refuses_a_hub_and_unknown_nodes(tmp_path, topo):
    result = run("keys", "rotate", "nobody", topo)
    assert result.exit_code == 2 and "not a node" in result.stderr
    result = run("keys", "rotate", "vps", topo)
    assert result.exit_code == 2 and "not a node" in result.stderr
    # Two machines to reach, none with an ssh target: said so, nothing changed.
    before = topo.read_text()
    result = run("keys", "rotate", "n1", topo)
    assert result.exit_code == 2 and "ssh" in result.stderr
    assert topo.read_text() == before
