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
