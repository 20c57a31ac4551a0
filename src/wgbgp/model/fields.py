"""The value types a topology is written in (machine names, public keys, endpoints, ASNs,
prefixes, secrets) and their validators: each refusal is a located message with a fix
(`invalid`). model/schema.py builds the sections from them."""

from __future__ import annotations

import re
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Strict
from pydantic_core import PydanticCustomError

from .keys import InvalidKey, decode_key
from .special import host_bits_fix

NAME_RE = re.compile(r"^[a-z][a-z0-9-]*$")
# A hub's name becomes the tunnel interface name "wg-<hub>", and Linux caps those at 15.
HUB_NAME_MAX = 12
NODE_NAME_MAX = 32


def invalid(message: str, fix: str) -> PydanticCustomError:
    """A validation error that carries its fix; load.py reports the two apart."""
    return PydanticCustomError("wgbgp", "{message}", {"message": message, "fix": fix})


def _check_name(value: str, max_len: int) -> str:
    if not NAME_RE.match(value):
        suggestion = re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-")
        raise invalid(
            f"name {value!r} must start with a lowercase letter and hold only "
            "lowercase letters, digits and '-'",
            f"rename it, e.g. {suggestion!r}" if NAME_RE.match(suggestion)
            else "rename it, e.g. 'laptop-2'")
    if len(value) > max_len and max_len == HUB_NAME_MAX:
        raise invalid(f"hub name {value!r} is longer than {max_len} characters: it names the "
                      f"WireGuard interface 'wg-{value}' on every machine, and Linux limits "
                      "interface names to 15 characters (IFNAMSIZ)",
                      f"shorten it to at most {max_len} characters, e.g. {value[:max_len]!r}")
    if len(value) > max_len:
        raise invalid(f"name {value!r} is longer than {max_len} characters",
                      f"shorten it to at most {max_len} characters")
    return value


def _check_public_key(value: str) -> str:
    try:
        raw = decode_key(value)
    except InvalidKey as exc:
        raise invalid(f"invalid public key: {exc}",
                      "paste the public key printed by `wgbgp keygen NAME` (or `wg pubkey`) "
                      "on that machine") from None
    if raw == bytes(len(raw)):
        # Well-formed, but no handshake can ever complete with the all-zero point.
        raise invalid("the all-zero public key can never complete a handshake",
                      "paste the public key printed by `wgbgp keygen NAME` on that machine")
    return value.strip()


def _check_endpoint(value: str) -> str:
    try:
        split_endpoint(value)
    except ValueError as exc:
        raise invalid(str(exc), "write the hub's public address and WireGuard port, e.g. "
                      "203.0.113.10:51820, vps.example.net:51820 or [2001:db8::1]:51820"
                      ) from None
    return value


def split_endpoint(value: str) -> tuple[str, int]:
    """Split 'host:port' or '[v6]:port', raising ValueError with a fix when malformed."""
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)|([^\s:\[\]]+):(\d+)", value.strip())
    if not m:
        raise ValueError(
            f"endpoint {value!r} is not host:port (e.g. 203.0.113.10:51820 or [2001:db8::1]:51820)"
        )
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4))
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} in endpoint {value!r} is out of range 1-65535")
    return host, port


def asn_problem(asn: int) -> str | None:
    """Why an ASN cannot be used, or None when it can."""
    if asn == 0:
        return "ASN 0 is reserved (RFC 7607)"
    if asn == 23456:
        return "ASN 23456 is AS_TRANS, reserved for 4-byte ASN transition (RFC 6793)"
    if 64496 <= asn <= 64511 or 65536 <= asn <= 65551:
        return f"ASN {asn} is reserved for documentation (RFC 5398)"
    if asn == 65535 or asn == 4294967295:
        return f"ASN {asn} is reserved (RFC 7300)"
    if 65552 <= asn <= 131071:
        return f"ASN {asn} is reserved by IANA"
    if asn < 0 or asn > 4294967295:
        return f"ASN {asn} is out of range 1-4294967294"
    return None


def _check_asn(value: int) -> int:
    problem = asn_problem(value)
    if problem:
        raise invalid(problem, "use a private ASN: 64512-65534 or 4200000000-4294967294")
    return value


def _parse_prefix(value: Any) -> Any:
    """An IPv4 or IPv6 prefix from its text, with a fix when it is malformed."""
    if isinstance(value, IPv4Network | IPv6Network):
        return value
    if not isinstance(value, str):
        raise invalid(f"{value!r} is not an IP prefix",
                      "write it like 192.0.2.0/24 or 2001:db8:50::/48")
    try:
        return ip_network(value.strip(), strict=True)
    except ValueError:
        try:
            fixed = ip_network(value.strip(), strict=False)
        except ValueError:
            raise invalid(f"{value!r} is not a valid IPv4 or IPv6 prefix",
                          "write it like 192.0.2.0/24 or 2001:db8:50::/48") from None
        raise invalid(f"{value!r} has host bits set",
                      host_bits_fix(value) or f"did you mean {fixed}?") from None


def _check_announce(value: IPv4Network | IPv6Network) -> IPv4Network | IPv6Network:
    if value.prefixlen == 0:
        raise invalid(f"announcing a default route ({value}) is not allowed",
                      "announce only the prefixes this node owns")
    return value


# A secret is named, never written: `{file: PATH}` or `{env: NAME}`, read by wgbgp on the
# machine that runs it (render/apply/lab), at render time. "{pair}" in either stands for the
# two machines of a session or tunnel, sorted and joined by '-' ("friend-laptop"; in an
# environment variable name upper-cased with '_': "FRIEND_LAPTOP"), so each pair can have
# its own secret from one declaration.
PAIR = "{pair}"
ENV_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
SECRET_FIX = ("keep the secret in a file (mode 0600) or an environment variable and name it "
              "here, e.g. {file: \"/etc/wgbgp/bgp-{pair}.secret\"} or {env: WGBGP_BGP_PASSWORD}")


def secret_problem(value: object) -> tuple[str, str] | None:
    """Why `value` cannot name a secret, or None. Never quotes the value: it may be one."""
    if not isinstance(value, dict):
        return ("a secret itself does not belong in the topology file (its value is not "
                "repeated here)",
                SECRET_FIX + "; and since it was written here, change it")
    unknown = [str(k) for k in value if k not in ("file", "env")]
    if unknown:
        return (f"unknown key {unknown[0]!r}: a secret is named by 'file' or 'env'",
                SECRET_FIX)
    given = [k for k in ("file", "env") if value.get(k) is not None]
    if len(given) != 1:
        return ("name exactly one of 'file' or 'env'", SECRET_FIX)
    (kind,) = given
    name = value[kind]
    if not isinstance(name, str) or not name.strip():
        return (f"'{kind}' must be a {'path' if kind == 'file' else 'variable name'}",
                SECRET_FIX)
    if kind == "file" and ("/" not in name or any(c.isspace() for c in name)):
        return ("'file' must be a path such as /etc/wgbgp/bgp.secret or ./bgp.secret; "
                "this looks like the secret itself",
                SECRET_FIX + "; and since it was written here, change it")
    if kind == "env" and not ENV_NAME_RE.match(name.replace(PAIR, "PAIR")):
        return ("'env' must be an environment variable name (A-Z, 0-9, '_', optionally "
                "{pair}); this looks like the secret itself",
                SECRET_FIX + "; and since it was written here, change it")
    return None


def _parse_overlay6(value: Any) -> Any:
    if value == "auto" or isinstance(value, IPv6Network):
        return value
    prefix = _parse_prefix(value)
    if prefix.version != 6:
        raise invalid(f"overlay6 {prefix} is not an IPv6 prefix",
                      "write an IPv6 prefix such as fd42:1:2::/64 (or 'auto'), and put "
                      "IPv4 prefixes under 'overlay'")
    return prefix


NodeName = Annotated[str, AfterValidator(lambda v: _check_name(v, NODE_NAME_MAX))]
HubName = Annotated[str, AfterValidator(lambda v: _check_name(v, HUB_NAME_MAX))]
PublicKey = Annotated[str, AfterValidator(_check_public_key)]
Endpoint = Annotated[str, AfterValidator(_check_endpoint)]
# Strict: YAML `true` or "65010" is a mistake, not ASN 1 or a number.
Asn = Annotated[int, Strict(), AfterValidator(_check_asn)]
Announce = Annotated[IPv4Network | IPv6Network, BeforeValidator(_parse_prefix),
                     AfterValidator(_check_announce)]
# An IPv6 overlay prefix, or "auto": a ULA /64 derived from the network name
# (addressing.ula_overlay).
Overlay6 = Annotated[IPv6Network | Literal["auto"], BeforeValidator(_parse_overlay6)]
