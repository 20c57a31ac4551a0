"""Issue 13, the smaller traps: each gets the message a user needs (what, where, fix)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from topogen import doc, keypair, text
from wgbgp.cli.main import app


def run(*args: str | Path):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output + result.stderr
    return result


def test_render_keys_dir_that_does_not_exist_is_an_error(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(text(doc(2)))
    result = run("render", path, "--keys", tmp_path / "nope", "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "--keys" in result.stderr and "no such directory" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_private_key_file_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(text(doc(2)))
    keys = tmp_path / "keys"
    keys.mkdir()
    key = keys / "n1.key"
    key.write_text(keypair("n1")[0] + "\n")
    key.chmod(0o644)
    result = run("render", path, "--keys", keys, "--out", tmp_path / "out")
    assert result.exit_code == 2 and "readable by everyone" in result.stderr
    assert "chmod 600" in result.stderr
    assert keypair("n1")[0] not in result.output + result.stderr
    key.chmod(0o600)
    assert run("render", path, "--keys", keys, "--out", tmp_path / "out").exit_code == 0


def test_init_on_a_directory_says_so(tmp_path):
    result = run("init", tmp_path, "--force")
    assert result.exit_code == 2
    assert f"{tmp_path} is a directory" in result.stderr and "topology.yaml" in result.stderr


def test_an_empty_file_is_called_empty(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("")
    result = run("check", path)
    assert result.exit_code == 2 and "the file is empty" in result.stderr
    path.write_text("# nothing yet\n\n")
    assert "only comments" in run("check", path).stderr


def test_keys_rotate_takes_the_topology_first_and_still_the_old_order(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(text(doc(2)))
    new = run("keys", "rotate", path, "nobody")
    assert new.exit_code == 2 and "nobody is not a node" in new.stderr
    assert "old order" not in new.stderr
    old = run("keys", "rotate", "nobody", path)
    assert old.exit_code == 2 and "nobody is not a node" in old.stderr
    assert f"write `wgbgp keys rotate {path} nobody`" in old.stderr


# --- stable addressing through the commands ---------------------------------------------

def neighbours(out: Path, machine: str) -> set[str]:
    frr = (out / machine / "etc/frr/frr.conf").read_text()
    return {line.split()[1] for line in frr.splitlines()
            if line.strip().startswith("neighbor ") and " remote-as " in line}


def test_check_and_render_alone_keep_addresses_across_edits(tmp_path):
    d = doc(3)
    path = tmp_path / "t.yaml"
    path.write_text(text(d))
    assert run("check", path).exit_code == 0
    lock = (tmp_path / "t.yaml.lock").read_text()
    assert "ipv4:\n  vps: 1\n  n1: 2\n  n2: 3\n  n3: 4\n" in lock
    # Delete n1: n2 and n3 keep .3 and .4 in what render writes.
    del d["nodes"]["n1"]
    path.write_text(text(d))
    assert run("render", path, "--out", tmp_path / "out").exit_code == 0
    assert neighbours(tmp_path / "out", "n2") == {"10.0.0.4"}
    assert "deployed:\n  vps:\n  - 10.0.0.1\n  n2:\n  - 10.0.0.3\n" in \
        (tmp_path / "t.yaml.lock").read_text()
    # Pinning n3 elsewhere moves n3, whose configs were rendered: check says so loudly.
    d["nodes"]["n3"]["address"] = "10.0.0.30"
    path.write_text(text(d))
    result = run("check", path)
    assert result.exit_code == 0
    assert "RENUMBERING n3: its tunnel address changes (10.0.0.4 -> 10.0.0.30)" in result.stderr
    # Render again (the new address is now what is deployed): quiet.
    assert run("render", path, "--out", tmp_path / "out").exit_code == 0
    assert "RENUMBERING" not in run("check", path).stderr


def test_the_lock_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("WGBGP_LOCK", "off")
    path = tmp_path / "t.yaml"
    path.write_text(text(doc(2)))
    assert run("check", path).exit_code == 0
    assert not (tmp_path / "t.yaml.lock").exists()


def test_an_unwritable_lock_is_a_warning_not_a_failure(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(text(doc(2)))
    (tmp_path / "t.yaml.lock").mkdir()  # cannot be replaced by a file
    result = run("check", path)
    assert result.exit_code == 0 and "cannot" in result.stderr and "t.yaml.lock" in result.stderr
