"""Join requests: what a friend's machine sends the topology's owner, as one line. Pure.

`wgbgp join` (on the friend's machine) makes the key there and prints a request; `wgbgp
node add TOPOLOGY REQUEST` (on the owner's) reads it back. The line is

    wgbgp-join1.<payload>.<check>

- `wgbgp-join1`: the format and its version; a later format gets a new number, so an
  old wgbgp says "newer format" instead of misreading it.
- `<payload>`: compact JSON (name, asn, announce, public_key, optional daemon and ssh),
  base64url without padding: no spaces, quotes or line breaks for a chat client or a
  terminal to mangle, and a double click selects all of it.
- `<check>`: the first 8 bytes of SHA-256 over `wgbgp-join1.<payload>`, base64url. It
  catches a truncated paste or a changed character (1 chance in 2^64 to miss one). It is
  no signature: whoever can change the request can recompute it, and a WireGuard key
  cannot sign. So the owner compares the fingerprint (`fingerprint`) with the friend
  over another channel (a call) before adding the node; both commands print it.

No secret is ever in a request: the private key stays in the friend's key file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any

from .fields import NAME_RE, NODE_NAME_MAX, asn_problem
from .keys import InvalidKey, decode_key

PREFIX = "wgbgp-join"
VERSION = 1
CHECK_BYTES = 8
# A request is a few hundred characters; anything far longer is not one (and is not
# decoded: a pasted file must not cost memory).
MAX_LEN = 4096
DAEMONS = ("frr", "bird")


class JoinRequestError(ValueError):
    """A request that cannot be used: what is wrong with it, and what to do."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.fix = fix


@dataclass(frozen=True)
class JoinRequest:
    """A node's declaration: who it is, what it announces, its public key."""

    name: str
    asn: int
    announce: tuple[IPv4Network | IPv6Network, ...]
    public_key: str
    daemon: str = "frr"
    ssh: str | None = None

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "asn": self.asn,
                                "announce": [str(p) for p in self.announce],
                                "public_key": self.public_key}
        if self.daemon != "frr":
            data["daemon"] = self.daemon
        if self.ssh:
            data["ssh"] = self.ssh
        return data

    def node_fields(self) -> dict[str, Any]:
        """The node's entry in the topology, as the file would hold it."""
        fields: dict[str, Any] = {"asn": self.asn, "public_key": self.public_key,
                                  "announce": [str(p) for p in self.announce]}
        if self.daemon != "frr":
            fields["daemon"] = self.daemon
        if self.ssh:
            fields["ssh"] = self.ssh
        return fields


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _check(head: str) -> str:
    return _b64(hashlib.sha256(head.encode()).digest()[:CHECK_BYTES])


def fingerprint(public_key: str) -> str:
    """A short form of a public key to read aloud: its first 8 characters, in two groups."""
    return f"{public_key[:4]}-{public_key[4:8]}"


def encode(request: JoinRequest) -> str:
    """The one-line request (validated first: a request wgbgp would refuse is never made)."""
    validate(request.payload())
    body = json.dumps(request.payload(), separators=(",", ":"), sort_keys=True)
    head = f"{PREFIX}{VERSION}.{_b64(body.encode())}"
    return f"{head}.{_check(head)}"


PASTE_FIX = ("paste the whole line `wgbgp join` printed, from 'wgbgp-join' to its last "
             "character, in quotes; or ask for it again")


def decode(line: str) -> JoinRequest:
    """The request in `line`, or JoinRequestError saying what is wrong (never guessing)."""
    text = "".join(line.split())  # a paste wrapped over lines is still the same request
    if len(text) > MAX_LEN:
        raise JoinRequestError(f"this is {len(text)} characters; a join request is a few "
                               "hundred", PASTE_FIX)
    if not text.startswith(PREFIX):
        raise JoinRequestError("this is not a join request: it does not start with "
                               f"'{PREFIX}'", PASTE_FIX)
    parts = text.split(".")
    version = parts[0][len(PREFIX):]
    if not version.isdigit():
        raise JoinRequestError(f"'{parts[0]}' is not a join request format", PASTE_FIX)
    if int(version) != VERSION:
        newer = int(version) > VERSION
        raise JoinRequestError(
            f"join request format {version} is {'newer' if newer else 'older'} than this "
            f"wgbgp reads (format {VERSION})",
            "upgrade wgbgp here" if newer else "ask for a new request from a current wgbgp")
    if len(parts) != 3 or not parts[1] or not parts[2]:
        raise JoinRequestError("the request is cut short: it has "
                               f"{len(parts)} of its 3 dot-separated parts", PASTE_FIX)
    head, check = f"{parts[0]}.{parts[1]}", parts[2]
    if check != _check(head):
        raise JoinRequestError(
            "the request's checksum does not match: it was truncated or changed on the way",
            PASTE_FIX + "; if it was pasted whole, someone changed it: ask again over "
            "another channel")
    try:
        data = json.loads(_unb64(parts[1]).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise JoinRequestError("the request's body is not readable (its checksum matched, "
                               "so it was made this way)", "make it with `wgbgp join`") from None
    return validate(data)


def _bad(message: str) -> JoinRequestError:
    return JoinRequestError(message, "make the request with `wgbgp join --name NAME --asn "
                            "ASN --announce PREFIX` (fix the value given there)")


def validate(data: object) -> JoinRequest:
    """A JoinRequest from a decoded payload; JoinRequestError naming the bad field."""
    if not isinstance(data, dict):
        raise _bad("the request's body is not a mapping")
    known = {"name", "asn", "announce", "public_key", "daemon", "ssh"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise _bad(f"unknown field {unknown[0]!r} in the request")
    missing = [k for k in ("name", "asn", "announce", "public_key") if k not in data]
    if missing:
        raise _bad(f"the request has no {missing[0]!r}")
    name = data["name"]
    if not isinstance(name, str) or not NAME_RE.match(name) or len(name) > NODE_NAME_MAX:
        raise _bad(f"name {name!r} is not a machine name (lowercase letters, digits and '-', "
                   f"starting with a letter, at most {NODE_NAME_MAX} characters)")
    asn = data["asn"]
    if not isinstance(asn, int) or isinstance(asn, bool):
        raise _bad(f"asn {asn!r} is not a number")
    problem = asn_problem(asn)
    if problem:
        raise _bad(f"asn: {problem}; use a private ASN: 64512-65534 or "
                   "4200000000-4294967294")
    announce = data["announce"]
    if not isinstance(announce, list) or not announce:
        raise _bad("announce must list at least one prefix")
    prefixes = []
    for p in announce:
        try:
            prefixes.append(ip_network(p, strict=True) if isinstance(p, str) else None)
        except ValueError:
            prefixes.append(None)
        if prefixes[-1] is None:
            raise _bad(f"announce: {p!r} is not an IP prefix (like 100.100.100.2/32)")
    key = data["public_key"]
    try:
        if not isinstance(key, str):
            raise InvalidKey("not text")
        decode_key(key)
    except InvalidKey as exc:
        raise _bad(f"public_key is not a WireGuard public key: {exc}") from None
    daemon = data.get("daemon", "frr")
    if daemon not in DAEMONS:
        raise _bad(f"daemon {daemon!r} is not one of {', '.join(DAEMONS)}")
    ssh = data.get("ssh")
    if ssh is not None and (not isinstance(ssh, str) or not ssh or any(c.isspace() for c in ssh)):
        raise _bad(f"ssh {ssh!r} is not an ssh target ([user@]host[:port])")
    return JoinRequest(name, asn, tuple(p for p in prefixes if p is not None), key.strip(),
                       daemon, ssh)
