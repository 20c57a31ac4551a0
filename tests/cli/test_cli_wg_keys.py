"""Keys are byte-compatible with the real `wg genkey` / `wg pubkey`."""

from __future__ import annotations

import base64
import os
import subprocess

import pytest
from typer.testing import CliRunner

from wgbgp.cli.main import app

pytestmark = pytest.mark.real_tools("wg", root=False)


def wg(*args: str, input: bytes | None = None) -> bytes:
    return subprocess.run(["wg", *args], input=input, capture_output=True, check=True,
                          timeout=10).stdout


def wgbgp(*args: str, input: bytes | None = None):
    result = CliRunner().invoke(app, list(args), input=input)
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("attempt", range(5))
def test_pubkey_matches_wg_pubkey_for_wg_genkey(attempt):
    private = wg("genkey")
    assert wgbgp("pubkey", input=private).stdout_bytes == wg("pubkey", input=private)


@pytest.mark.parametrize("attempt", range(5))
def test_wg_pubkey_of_our_private_key_is_our_public_key(tmp_path, attempt):
    printed = wgbgp("keygen", "laptop", "--dir", str(tmp_path)).stdout_bytes
    key_file = tmp_path / "laptop.key"
    assert wg("pubkey", input=key_file.read_bytes()) == printed
    # Same text format as `wg genkey`: 44 base64 characters and a newline.
    assert len(key_file.read_bytes()) == len(wg("genkey")) == 45


@pytest.mark.parametrize("attempt", range(5))
def test_unclamped_private_keys_agree(attempt):
    # `wg pubkey` clamps what it reads; a key made elsewhere may not be clamped.
    raw = base64.b64encode(os.urandom(32)) + b"\n"
    assert wgbgp("pubkey", input=raw).stdout_bytes == wg("pubkey", input=raw)
