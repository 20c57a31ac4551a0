"""The intent a machine keeps: its plan and its neighbours', as JSON. Pure.

`wgbgp apply` leaves this on the machine (render.render_intent, /var/lib/wgbgp/intent.json)
so that `wgbgp status` and `wgbgp doctor` run there without the topology know what should
be there. It holds public data only: the plans name secrets (`SecretRef`: where wgbgp read
a BGP password or a preshared key), never their values, and no plan holds a private key.

A machine's judgement needs more than its own plan (its own public key, for instance, is
written only in its peers' plans; its hub's tunnel address only in the hub's), so the
intent holds the plans of the machine and of every machine it has a tunnel or a session
with, each neighbour's cut down to the peers and sessions inside that set. That keeps the
set closed (every name it mentions is in it) and the file stable when a machine the
neighbours talk to, but this one does not, joins or leaves.
"""

from __future__ import annotations

import dataclasses
import json
import types
from collections.abc import Mapping
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from .plan import Plan

INTENT_PATH = "/var/lib/wgbgp/intent.json"
INTENT_SCHEMA = "wgbgp.intent/1"
_IP_TYPES = (IPv4Address, IPv6Address, IPv4Interface, IPv6Interface, IPv4Network, IPv6Network)


class IntentError(ValueError):
    """An intent file that is not what `intent_json` writes."""


def neighbourhood(plans: Mapping[str, Plan], machine: str) -> dict[str, Plan]:
    """The plans `machine`'s judgement needs: its own and its neighbours' (see module doc),
    in the topology's order."""
    names = neighbour_names(plans[machine])
    return {n: p if n == machine else _trim(p, names) for n, p in plans.items() if n in names}


def neighbour_names(me: Plan) -> set[str]:
    """`me`'s machine and every machine its intent holds: its hubs, tunnel peers and BGP
    neighbours (what `render --node` must compile besides the machine itself)."""
    return {me.machine, *(t.hub for t in me.tunnels),
            *(p.name for t in me.tunnels for p in t.peers),
            *(s.peer for s in (me.bgp.sessions if me.bgp else ()))}


def _trim(plan: Plan, names: set[str]) -> Plan:
    tunnels = tuple(dataclasses.replace(t, peers=tuple(p for p in t.peers if p.name in names))
                    for t in plan.tunnels)
    bgp = plan.bgp and dataclasses.replace(
        plan.bgp, sessions=tuple(s for s in plan.bgp.sessions if s.peer in names))
    return dataclasses.replace(plan, tunnels=tunnels, bgp=bgp)


def intent_json(plans: Mapping[str, Plan], machine: str) -> str:
    """The intent file's text for `machine`. Deterministic (no time stamp): an apply with
    nothing changed leaves it unchanged."""
    data = {"schema": INTENT_SCHEMA, "machine": machine,
            "network": plans[machine].network,
            "plans": {n: to_data(p) for n, p in neighbourhood(plans, machine).items()}}
    return json.dumps(data, indent=1) + "\n"


def parse_intent(text: str, where: str = INTENT_PATH) -> tuple[str, dict[str, Plan]]:
    """(this machine's name, the plans) from an intent file; IntentError says what is wrong."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IntentError(f"{where}:{exc.lineno}: not JSON ({exc.msg})") from None
    if not isinstance(data, dict) or data.get("schema") != INTENT_SCHEMA:
        got = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise IntentError(f"{where}: schema {got!r}, expected {INTENT_SCHEMA!r}")
    machine = data.get("machine")
    raw = data.get("plans")
    if not isinstance(machine, str) or not isinstance(raw, dict) or machine not in raw:
        raise IntentError(f"{where}: no plan for its machine {machine!r}")
    plans = {}
    for name, value in raw.items():
        try:
            plans[name] = from_data(Plan, value)
        except (ValueError, TypeError, KeyError) as exc:
            raise IntentError(f"{where}: plans.{name}: {exc}") from None
    return machine, plans


def to_data(value: Any) -> Any:
    """A plan (or any part of one) as JSON data: dataclasses as objects, tuples as lists,
    addresses as text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [to_data(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_data(v) for k, v in value.items()}
    if isinstance(value, _IP_TYPES):
        return str(value)
    return value


def from_data(cls: type, data: Any) -> Any:
    """The inverse of `to_data` for dataclass `cls`, led by its type annotations."""
    if not isinstance(data, dict):
        raise TypeError(f"expected an object for {cls.__name__}, got {type(data).__name__}")
    hints = get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name], f.name)
    return cls(**kwargs)


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in get_args(tp):
            return None
        for arg in get_args(tp):
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, where)
            except (ValueError, TypeError):
                continue
        raise ValueError(f"{where}: {value!r} is not a {tp}")
    if origin is tuple:
        if not isinstance(value, list):
            raise TypeError(f"{where}: expected a list")
        return tuple(_convert(get_args(tp)[0], v, where) for v in value)
    if origin is Literal:
        if value not in get_args(tp):
            raise ValueError(f"{where}: {value!r} is not one of {get_args(tp)}")
        return value
    if origin is dict:
        return dict(value)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return from_data(tp, value)
    if tp in _IP_TYPES:
        if not isinstance(value, str):
            raise TypeError(f"{where}: expected an address, got {value!r}")
        return tp(value)
    if tp is bool or tp is str or tp is float:
        if not isinstance(value, tp) and not (tp is float and isinstance(value, int)):
            raise TypeError(f"{where}: expected {tp.__name__}, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{where}: expected an integer, got {value!r}")
        return value
    return value
