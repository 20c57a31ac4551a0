"""WireGuard (X25519) keys: generation and checks, byte-compatible with `wg genkey`/`wg pubkey`."""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

KEY_LEN = 32


class InvalidKey(ValueError):
    """A string that is not a WireGuard key."""


def decode_key(text: str) -> bytes:
    """Decode a base64 WireGuard key, raising InvalidKey with a reason when it is not one."""
    text = text.strip()
    if len(text) != 44 or not text.endswith("="):
        raise InvalidKey(
            f"a WireGuard key is 44 base64 characters ending in '=', got {len(text)} characters"
        )
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise InvalidKey("not valid base64") from exc
    if len(raw) != KEY_LEN:
        raise InvalidKey(f"decodes to {len(raw)} bytes, a WireGuard key has 32")
    return raw


def generate_private_key() -> str:
    """A new private key, clamped exactly as `wg genkey` prints it."""
    raw = X25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return base64.b64encode(clamp(raw)).decode()


def clamp(raw: bytes) -> bytes:
    """Curve25519 clamping, as wg(8) applies it to generated keys."""
    b = bytearray(raw)
    b[0] &= 248
    b[31] = (b[31] & 127) | 64
    return bytes(b)


def public_key(private: str) -> str:
    """The public key for a base64 private key (what `wg pubkey` prints)."""
    raw = decode_key(private)
    pub = X25519PrivateKey.from_private_bytes(raw).public_key()
    return base64.b64encode(pub.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def looks_clamped(key: str) -> bool:
    """True when a key has the bit pattern of a clamped private key.

    A genuine public key matches by chance 1 time in 32, so this is a hint, not proof.
    """
    raw = decode_key(key)
    return raw[0] & 7 == 0 and raw[31] & 192 == 64
