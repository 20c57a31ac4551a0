"""`wgbgp render TOPOLOGY --cloud-init HUB`: user-data cloud-init's own schema check
accepts, carrying the hub's configs byte for byte and never a secret; the first-boot key
command makes a key `wgbgp keygen --ssh --fetch` then reads back."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from wgbgp.apply.keys import KeygenError, remote_keygen
from wgbgp.cli.main import app
from wgbgp.compile import compile_topology
from wgbgp.model import parse
from wgbgp.model.keys import public_key
from wgbgp.render import render_machine
from wgbgp.render.cloudinit import block, render_cloud_init
from wgbgp.transport import LocalExecutor

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HUBS = [(e.name, hub) for e in sorted(EXAMPLES.glob("*.yaml"))
        for hub in yaml.safe_load(e.read_text())["hubs"]]
needs_cloud_init = pytest.mark.real_tools("cloud-init", root=False)


def user_data(tmp_path: Path, example: str, hub: str, code: int = 0) -> str:
    path = tmp_path / example
    shutil.copy(EXAMPLES / example, path)
    result = CliRunner().invoke(app, ["render", str(path), "--cloud-init", hub])
    assert result.exit_code == code, result.output
    return result.stdout if code == 0 else result.output


def schema_check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["cloud-init", "schema", "--config-file", str(path)],
                          capture_output=True, text=True, timeout=60)


@needs_cloud_init
@pytest.mark.parametrize("example, hub", HUBS)
def test_cloud_init_accepts_it(tmp_path, example, hub):
    text = user_data(tmp_path, example, hub)
    (tmp_path / "user-data").write_text(text)
    check = schema_check(tmp_path / "user-data")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "Valid cloud-config" in check.stdout


@needs_cloud_init
def test_the_schema_check_can_fail(tmp_path):
    """Negative controls: the same check rejects a broken entry and a missing header."""
    data = yaml.safe_load(user_data(tmp_path, "classic.yaml", "vps"))
    del data["write_files"][0]["path"]
    (tmp_path / "broken").write_text("#cloud-config\n" + yaml.safe_dump(data))
    assert schema_check(tmp_path / "broken").returncode != 0
    (tmp_path / "headless").write_text(yaml.safe_dump(data))
    assert schema_check(tmp_path / "headless").returncode != 0


@pytest.mark.parametrize("example, hub", HUBS)
def test_it_carries_the_hubs_configs_and_no_secret(tmp_path, example, hub):
    text = user_data(tmp_path, example, hub)
    data = yaml.safe_load(text)
    topo = parse((tmp_path / example).read_text())[0]
    plan = compile_topology(topo)[hub]
    files = render_machine(plan)
    written = {f["path"]: f for f in data["write_files"]}
    for f in files:  # byte for byte, with the mode apply would give it
        assert written[f.path]["content"] == f.text
        assert written[f.path]["permissions"] == f"{f.mode:04o}"
        assert written[f.path]["defer"] is True
    assert "PrivateKey" not in text and "PresharedKey" not in text
    # The key is made on the VM, where the rendered config reads it.
    keygen = data["runcmd"][0]
    assert keygen[:2] == ["sh", "-c"] and f"wg genkey > {plan.key_file}" in keygen[2]
    assert all(f"PostUp = wg set %i private-key {plan.key_file}" in written[
        f"/etc/wireguard/{t.interface}.conf"]["content"] for t in plan.tunnels)
    enabled = [c[3] for c in data["runcmd"] if c[:3] == ["systemctl", "enable", "--now"]]
    assert enabled == ["wgbgp-nftables.service",
                       *(f"wg-quick@{t.interface}" for t in plan.tunnels)]
    assert {"wireguard-tools", "nftables"} <= set(data["packages"])
    if plan.bgp is not None:  # a route server
        assert ["systemctl", "enable", plan.bgp.daemon] in data["runcmd"]
        assert "frr" in data["packages"] or "bird2" in data["packages"]
    assert any("public key" in c[-1] for c in data["runcmd"] if c[0] == "sh")


def test_refuses_nodes_and_secrets(tmp_path):
    assert "is a node" in user_data(tmp_path, "classic.yaml", "laptop", code=2)
    path = tmp_path / "psk.yaml"
    path.write_text((EXAMPLES / "classic.yaml").read_text().replace(
        "  # preshared_key:            # a WireGuard preshared key per tunnel, named the same way\n"
        "  #   file: /etc/wgbgp/psk-{pair}.secret",
        "  preshared_key: {file: \"/nonexistent/psk-{pair}.secret\"}"))
    result = CliRunner().invoke(app, ["render", str(path), "--cloud-init", "vps"])
    assert result.exit_code == 2 and "metadata service" in result.output, result.output


@pytest.mark.parametrize("text", ["a\n", "a\n\tb\n\n  c\n", "a", "a\n\n", " a\n",
                                  "\na\n", "a\r\nb\n", 'x: "y"\n#z\n'])
def test_block_reads_back_byte_for_byte(text):
    doc = yaml.safe_load("content: " + block(text, 2) + "\n")
    assert doc["content"] == text


def test_render_cloud_init_is_pure_and_stable():
    topo = parse((EXAMPLES / "classic.yaml").read_text())[0]
    plan = compile_topology(topo)["vps"]
    assert render_cloud_init(plan, render_machine(plan)) == render_cloud_init(
        plan, render_machine(plan))


@pytest.mark.real_tools("wg", root=False)
def test_first_boot_key_then_fetch(tmp_path):
    """The user-data's key command, run as cloud-init runs it (sh -c), then fetched the
    way `wgbgp keygen HUB --ssh ... --fetch` does (the same script, here locally)."""
    topo = parse((EXAMPLES / "classic.yaml").read_text())[0]
    plan = compile_topology(topo)["vps"]
    command = yaml.safe_load(render_cloud_init(plan, render_machine(plan)))["runcmd"][0]
    keys = tmp_path / "keys"
    x = LocalExecutor("vps")
    with pytest.raises(KeygenError, match="no key"):
        remote_keygen(x, "vps", directory=str(keys), fetch=True)
    assert not keys.exists()  # fetch never makes one
    script = command[2].replace("/etc/wgbgp/keys", str(keys))
    subprocess.run([*command[:2], script], check=True, timeout=30)
    private = (keys / "vps.key").read_text()
    assert (keys / "vps.key").stat().st_mode & 0o077 == 0
    fetched = remote_keygen(x, "vps", directory=str(keys), fetch=True)
    assert fetched.public_key == public_key(private) and not fetched.created
    subprocess.run([*command[:2], script], check=True, timeout=30)  # a rerun keeps it
    assert (keys / "vps.key").read_text() == private
