"""Schema errors -> messages: each pydantic error becomes an Issue that says what is wrong
in words, where (file:line, field) and how to fix it; and `salvage`, the topology without
the rejected values, so the semantic checks still find the other errors."""

from __future__ import annotations

import copy
import difflib
import ipaddress
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from . import schema
from .issues import Issue, Loc
from .source import LineMap
from .special import host_bits_fix


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The schema class that owns the field at loc, to suggest known keys."""
    model: Any = schema.Topology
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        if field is None:
            # dict[str, Model] values: the name is a free key, step into the value type
            continue
        ann = field.annotation
        model = _inner_model(ann)
    return model if hasattr(model, "model_fields") else None


def _inner_model(ann: Any) -> Any:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in getattr(ann, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


_FRIENDLY = {
    "missing": ("required field is missing", ""),
    "ip_v4_address": ("is not a valid IPv4 address", "write it like 10.0.0.10"),
    "ip_v4_network": ("is not a valid IPv4 prefix", "write it like 192.0.2.0/24, host bits zero"),
    "ip_v6_address": ("is not a valid IPv6 address", "write it like fd42:1:2::10"),
    "int_parsing": ("is not a whole number", "write a number without quotes or units"),
    "int_type": ("is not a whole number", "write a number without quotes or units"),
    "int_from_float": ("is not a whole number", "write a number without a fraction"),
    "literal_error": ("is not one of the allowed values", ""),
    "dict_type": ("must be a mapping of names to settings", "indent the entries under the key"),
    "model_type": ("must be a mapping of settings", "indent its settings under it, one per line"),
    "list_type": ("must be a list", "write it as [a, b] or as '- item' lines"),
    "string_type": ("must be a string", "quote it"),
}

# What to write instead, by field name: the fix when an error has no more specific one.
_HINTS = {
    "network": "write it as a mapping with name, overlay and/or overlay6, and optionally "
               "mode, mtu, keepalive",
    "name": "a short lowercase name, e.g. friends",
    "overlay": "write an IPv4 prefix for tunnel addresses, e.g. 10.0.0.0/24",
    "overlay6": "write an IPv6 prefix for tunnel addresses, e.g. fd42:1:2::/64, or 'auto'",
    "mode": "leave it out, or write mesh",
    "mtu": "leave it out for 1420, or write a number from 1280 to 9000",
    "keepalive": "leave it out for 25, or write seconds from 1 to 3600",
    "hubs": "declare one hub: hubs: {vps: {endpoint: 203.0.113.10:51820}}",
    "nodes": "declare nodes by name: nodes: {laptop: {asn: 65010}}",
    "endpoint": "write the hub's public address and port, e.g. 203.0.113.10:51820",
    "address": "write an IPv4 address inside the overlay, e.g. 10.0.0.10, or leave it out",
    "address6": "write an IPv6 address inside overlay6, e.g. fd42:1:2::10, or leave it out",
    "daemon": "leave it out for frr, or write bird",
    "public_key": "paste the public key printed by `wgbgp keygen NAME` on that machine",
    "ssh": "write the SSH target as user@host",
    "asn": "use a private ASN: 64512-65534 or 4200000000-4294967294",
    "announce": "list the prefixes this node owns, e.g. [192.168.50.0/24, 2001:db8:50::/48]",
    "peerings": "write each peering as a pair of node names, e.g. [laptop, friend]",
    "lab": "see the commented lab section of `wgbgp init`",
}


def _hint(loc: Loc) -> str:
    name = next((p for p in reversed(loc) if isinstance(p, str)), "")
    if loc and loc[0] == "peerings":
        name = "peerings"
    return _HINTS.get(name, "see the commented starter written by `wgbgp init`")


def _bounds_fix(loc: Loc) -> str:
    """'use a value from LO to HI' for a bounded number field, from the schema itself."""
    model = _model_at(loc)
    field = model.model_fields.get(loc[-1]) if model and loc and isinstance(loc[-1], str) \
        else None
    if field is None:
        return ""
    lo = next((getattr(m, "ge", None) for m in field.metadata if hasattr(m, "ge")), None)
    hi = next((getattr(m, "le", None) for m in field.metadata if hasattr(m, "le")), None)
    if lo is None or hi is None:
        return ""
    fix = f"use a value from {lo} to {hi}"
    if field.default is not None and not callable(field.default):
        fix += f", or leave it out for {field.default}"
    return fix


def _friendly(err: ErrorDetails, loc: Loc) -> tuple[str, str]:
    message, fix = _describe(err, loc)
    return message, fix or _hint(loc)


def _describe(err: ErrorDetails, loc: Loc) -> tuple[str, str]:
    kind = err["type"]
    value = err.get("input")
    shown = f"{value!r} " if value is not None and not isinstance(value, dict | list) else ""
    if kind == "wgbgp":
        return err["ctx"]["message"], err["ctx"]["fix"]
    if kind == "value_error":
        return err["msg"].removeprefix("Value error, "), ""
    if loc and loc[0] == "peerings" and (
            kind == "missing" or kind.startswith(("too_long", "too_short", "tuple"))):
        return f"{shown}is not a pair of node names".strip(), ""
    if kind == "missing":
        return f"required field '{loc[-1]}' is missing" if loc else "required field missing", ""
    if kind in ("ip_v4_network",) and isinstance(value, str) and "/" in value:
        try:
            fixed = ipaddress.ip_network(value, strict=False)
        except ValueError:
            pass
        else:
            if fixed.version == 4:
                return f"{value!r} has host bits set", host_bits_fix(value) or ""
    if kind in ("int_from_float", "int_type") and loc and loc[-1] == "asn" and \
            isinstance(value, float):
        return (f"{shown}is not a whole number".strip(),
                "write the ASN as a number, or in asdot (RFC 5396) as HIGH.LOW with both "
                "parts at most 65535: 1.10 is 65546")
    if kind in _FRIENDLY:
        msg, fix = _FRIENDLY[kind]
        if kind == "literal_error":
            fix = "allowed: " + err["ctx"]["expected"]
        return (f"{shown}{msg}".strip(), fix)
    if kind.startswith(("greater_than", "less_than")):
        return f"{shown}is out of range: {err['msg'].lower()}", _bounds_fix(loc)
    return f"{shown}{err['msg'].lower()}".strip(), ""


def _error_loc(err: ErrorDetails, data: Any) -> Loc:
    """The error's path in the document, without pydantic's markers such as '[key]'.

    A part is kept when it names a key or index that exists in the data (a user's key
    may itself hold '['), or when it is the last part (a missing field)."""
    loc: list[str | int] = []
    parts = err["loc"]
    for i, part in enumerate(parts):
        known = part in data if isinstance(data, dict) else (
            isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data))
        if known:
            data = data[part]
        elif (isinstance(part, str) and part.startswith(("[", "function-"))) or i < len(parts) - 1:
            continue
        loc.append(part)
    return tuple(loc)


def schema_issues(exc: ValidationError, data: dict[str, Any], lines: LineMap, file: str
                  ) -> list[Issue]:
    """Every schema error in `data`, located by `lines`."""
    issues = []
    for err in exc.errors():
        loc = _error_loc(err, data)
        if err["type"] == "extra_forbidden":
            model = _model_at(loc)
            known = list(model.model_fields) if model else []
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            fix = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
            issues.append(Issue("error", loc, f"unknown key '{loc[-1]}'", fix, file,
                                lines.line(loc, key=True)))
            continue
        message, fix = _friendly(err, loc)
        if loc in lines.asdot:
            high, low = lines.asdot[loc].split(".")
            message += f" (written {lines.asdot[loc]}, asdot for {int(high) << 16 | int(low)})"
        issues.append(Issue("error", loc, message, fix, file, lines.line(loc)))
    return issues


# Required fields with a bad value are replaced by a neutral valid one, so the rest of
# the file can still be checked (a whole machine cannot be dropped without false errors).
_STAND_INS: dict[str, Callable[[int], object]] = {
    "asn": lambda n: 4200000000 + n,
    "endpoint": lambda n: "192.0.2.1:51820",
    "name": lambda n: "network",
}


def salvage(data: dict[str, Any], exc: ValidationError
            ) -> tuple[schema.Topology, Callable[[Loc], Loc]] | None:
    """The topology without the values the schema rejected, to find the other errors too.

    Drops each rejected value (an unknown key, a bad address, a bad list item) so the
    semantic checks can run over the rest. Returns the reduced topology and a function
    mapping its locations back to the file's (list items shift when one is dropped), or
    None when nothing sound is left (a required field or a whole machine is bad).
    """
    source, data = data, copy.deepcopy(data)
    drop_items: dict[Loc, set[int]] = {}
    stand_ins = 0
    try:
        for err in exc.errors():
            loc = _error_loc(err, source)
            if loc and loc[0] == "peerings" and len(loc) > 2:
                loc = loc[:2]  # a bad name inside a pair: drop the pair
            if len(loc) < 2 or (len(loc) == 2 and loc[0] in ("hubs", "nodes")):
                return None
            parent: Any = data
            for part in loc[:-1]:
                parent = parent[part]
            if loc[-1] in _STAND_INS and err["type"] not in ("missing", "extra_forbidden"):
                stand_ins += 1
                parent[loc[-1]] = _STAND_INS[loc[-1]](stand_ins)
            elif isinstance(parent, list) and isinstance(loc[-1], int):
                drop_items.setdefault(loc[:-1], set()).add(loc[-1])
            else:
                parent.pop(loc[-1], None)
        kept: dict[Loc, list[int]] = {}
        for path, indices in drop_items.items():
            parent = data
            for part in path:
                parent = parent[part]
            kept[path] = [i for i in range(len(parent)) if i not in indices]
            parent[:] = [parent[i] for i in kept[path]]
        topology = schema.Topology.model_validate(data)
    except (KeyError, IndexError, TypeError, ValidationError):
        return None

    def original(loc: Loc) -> Loc:
        out: list[str | int] = []
        for part in loc:
            path = tuple(out)
            if isinstance(part, int) and path in kept and part < len(kept[path]):
                part = kept[path][part]
            out.append(part)
        return tuple(out)

    return topology, original
