"""Secrets where they do not belong: a password in an SSH target, one secret shared by every
session, private key material anywhere in the file's text (comments included)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..fields import PAIR
from ..issues import Issue, error, warning
from ..keys import InvalidKey, public_key
from ..schema import Topology

# user:password@host: a password where only a login belongs (possessive: "ssh://" is
# a scheme, never a user "ssh" with password "//...").
_SSH_PASSWORD = re.compile(r"^(?:ssh://)?+[^@/\s]*:[^@]*@")


def check_secrets(t: Topology) -> Iterator[Issue]:
    """Secrets where they do not belong, and secrets shared wider than they should be."""
    for section, name, m in t.located():
        if m.ssh and _SSH_PASSWORD.match(m.ssh):
            yield error((section, name, "ssh"),
                        "the SSH target holds a password (user:password@host); passwords "
                        "never belong in the topology (it is not repeated here)",
                        "write user@host and log in with an SSH key; change that password")
    net = t.network
    for field, what in (("bgp_password", "BGP session"), ("preshared_key", "tunnel")):
        secret = getattr(net, field)
        if secret is None:
            continue
        named = secret.file if secret.file is not None else secret.env
        if named is not None and PAIR not in named and len(t.nodes) > 1:
            yield warning(("network", field), f"every {what} shares one secret, so every node "
                          f"knows the secret of every other {what}",
                          f"put {PAIR} in the name to give each {what} its own, e.g. "
                          f"/etc/wgbgp/{field.replace('_', '-')}-{PAIR}.secret")


# A WireGuard key anywhere in the text (values and comments): 32 bytes of base64.
_KEY_TOKEN = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=(?![A-Za-z0-9+/=])")
# Pasted private material: a PEM/OpenSSH private key, or a wg-quick secret line.
_PASTED = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----|\b(?:PrivateKey|PresharedKey)\s*=",
                     re.IGNORECASE)


def secrets_in_text(text: str, topology: Topology) -> Iterator[tuple[int, str, str]]:
    """(line, message, fix) for private material anywhere in the file, comments included:
    a private key whose public key the topology declares, a PEM/OpenSSH private key, a
    wg-quick PrivateKey/PresharedKey line. Never quotes what it found."""
    declared = {m.public_key: name for name, m in topology.machines.items() if m.public_key}
    for number, line in enumerate(text.splitlines(), 1):
        if _PASTED.search(line):
            yield (number, "private key material in the topology (a private key block, or a "
                   "PrivateKey/PresharedKey line); it is not repeated here",
                   "delete it; the topology holds public keys only, and since it was "
                   "exposed here, make a new key")
            continue
        for token in _KEY_TOKEN.findall(line):
            if token in declared:
                continue
            try:
                owner = declared.get(public_key(token))
            except InvalidKey:
                continue
            if owner is not None:
                yield (number, f"the PRIVATE key of {owner} (its public key is declared) is "
                       "in the topology; it is not repeated here",
                       f"delete it, and since it was exposed, `wgbgp keys rotate TOPOLOGY {owner}` "
                       "or make a new pair with `wgbgp keygen`")
