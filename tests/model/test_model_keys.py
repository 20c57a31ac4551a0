"""WireGuard keys: generation, derivation and checks (the real `wg` is compared in tests/cli)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wgbgp.model.keys import (
    InvalidKey,
    clamp,
    decode_key,
    generate_private_key,
    looks_clamped,
    public_key,
)


def test_generated_key_is_clamped_base64_of_32_bytes():
    key = generate_private_key()
    raw = decode_key(key)
    assert len(key) == 44 and len(raw) == 32
    assert clamp(raw) == raw
    assert looks_clamped(key)


def test_generated_keys_differ():
    assert len({generate_private_key() for _ in range(20)}) == 20


def test_known_vector():
    # RFC 7748 section 6.1, Alice's key pair.
    private = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    expected = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    assert public_key(base64.b64encode(private).decode()) == base64.b64encode(expected).decode()


@given(st.binary(min_size=32, max_size=32))
def test_public_key_ignores_clamping_like_wg(raw):
    # `wg pubkey` clamps whatever it is given; so must we.
    plain = base64.b64encode(raw).decode()
    clamped = base64.b64encode(clamp(raw)).decode()
    assert public_key(plain) == public_key(clamped)
    assert len(decode_key(public_key(plain))) == 32


def test_surrounding_whitespace_is_ignored():
    key = generate_private_key()
    assert public_key(f"  {key}\n") == public_key(key)


@pytest.mark.parametrize(("text", "reason"), [
    ("", "44 base64 characters"),
    ("abc", "got 3 characters"),
    ("A" * 44, "ending in '='"),
    ("!" * 43 + "=", "not valid base64"),
    ("A" * 42 + "==", "31 bytes"),
])
def test_invalid_keys(text, reason):
    with pytest.raises(InvalidKey, match=reason):
        decode_key(text)
    with pytest.raises(InvalidKey):
        public_key(text)


def test_looks_clamped_is_a_bit_pattern_test():
    assert looks_clamped(base64.b64encode(bytes([8]) + bytes(30) + bytes([64])).decode())
    assert not looks_clamped(base64.b64encode(bytes([1]) + bytes(30) + bytes([64])).decode())
    assert not looks_clamped(base64.b64encode(bytes([8]) + bytes(30) + bytes([128])).decode())
