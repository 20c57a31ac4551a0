"""Secrets named by the topology: read where wgbgp runs, checked, and never shown.

Covers reading (file relative to the topology, environment, permissions), and every place
a rendered secret could surface in output: diffs, frr-reload deltas, tool errors.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from topogen import doc, load
from wgbgp.apply.changes import mask_output, mask_secrets, parse_frr_reload_test
from wgbgp.apply.scripts import SANITISE
from wgbgp.apply.secrets import read_secret, read_secrets
from wgbgp.compile import compile_topology
from wgbgp.compile.plan import SecretRef
from wgbgp.render import SecretError, render_machine, secrets_needed

PSK = "E4v5wX0kqN1v3gQ2pS6nYt8rU9iO0pA1sD2fG3hJ4kM="
MD5 = "v3ry-s3cret.md5"


def topo():
    d = doc(2)
    d["network"]["bgp_password"] = {"file": "secrets/md5-{pair}"}
    d["network"]["preshared_key"] = {"env": "T_PSK_{pair}"}
    return load(d)


def test_read_from_file_relative_to_the_topology_and_from_environment(tmp_path):
    (tmp_path / "secrets").mkdir()
    f = tmp_path / "secrets" / "md5-n1-n2"
    f.write_text(MD5 + "\n")
    f.chmod(0o600)
    env = {"T_PSK_N1_VPS": PSK, "T_PSK_N2_VPS": PSK}
    plans = compile_topology(topo())
    got = read_secrets(plans.values(), tmp_path, env)
    assert got == {SecretRef("env", "T_PSK_N1_VPS"): PSK, SecretRef("env", "T_PSK_N2_VPS"): PSK,
                   SecretRef("file", "secrets/md5-n1-n2"): MD5}
    files = render_machine(plans["n1"], secrets=got)
    assert any(MD5 in x.text for x in files) and any(PSK in x.text for x in files)


@pytest.mark.parametrize("setup,expect", [
    (lambda f: None, "does not exist"),
    (lambda f: (f.write_text(MD5), f.chmod(0o644)), "readable by everyone"),
    (lambda f: (f.write_text(MD5 + "\nsecond\n"), f.chmod(0o600)), "more than one line"),
    (lambda f: (f.write_text("has a space " + MD5), f.chmod(0o600)), "1 to 80 characters"),
    (lambda f: f.mkdir(), "not a regular file"),
])
def test_unusable_files_are_named_not_shown(tmp_path, setup, expect):
    f = tmp_path / "md5"
    setup(f)
    ref = SecretRef("file", "md5", "BGP password of session a-b")
    with pytest.raises(SecretError) as exc:
        read_secret(ref, tmp_path)
    assert expect in str(exc.value) and "session a-b" in str(exc.value)
    assert MD5 not in str(exc.value) and "second" not in str(exc.value)


def test_missing_or_bad_environment_variable():
    ref = SecretRef("env", "T_PSK", "preshared key of tunnel a-vps")
    with pytest.raises(SecretError, match="T_PSK is not set"):
        read_secret(ref, environ={})
    with pytest.raises(SecretError) as exc:
        read_secret(ref, environ={"T_PSK": "plain-password-not-a-key"})
    assert "plain-password-not-a-key" not in str(exc.value)


# --- never shown ------------------------------------------------------------------------

FRR_RELOAD_TEST = f"""\
Lines To Delete
===============
router bgp 65010
 no neighbor 10.0.0.3 password {MD5}

Lines To Add
============
router bgp 65010
 neighbor 10.0.0.3 password other-{MD5}
"""


def test_frr_reload_delta_masks_passwords():
    delta = parse_frr_reload_test(FRR_RELOAD_TEST)
    assert MD5 not in delta.text() and MD5 not in repr(delta)
    assert delta.delete[1] == " no neighbor 10.0.0.3 password (hidden)"
    assert delta.add[1] == " neighbor 10.0.0.3 password (hidden)"


def test_masks_cover_rendered_files():
    plans = compile_topology(topo())
    secrets = {r: (PSK if r.kind == "env" else MD5) for p in plans.values()
               for r in secrets_needed(p)}
    for plan in plans.values():
        for f in render_machine(plan, secrets=secrets):
            assert PSK not in mask_secrets(f.text) and MD5 not in mask_output(f.text)


@pytest.mark.skipif(not os.path.exists("/bin/sh"), reason="needs sh and sed")
def test_tool_errors_are_sanitised_on_the_machine():
    text = (f"line 7: % Unknown command[4]:  neighbor 10.0.0.3 password {MD5} extra\n"
            f"PresharedKey = {PSK}\n")
    out = subprocess.run(["sh", "-c", f"{SANITISE}"], input=text, capture_output=True,
                         text=True, check=True).stdout
    assert MD5 not in out and PSK not in out and "password (hidden)" in out
