"""Issue 13, point 2: no edit of the file moves another machine's tunnel address.

With the address lock (model/lock.py) carried from one version of the file to the next,
as every command does (cli/common.read_topology), deleting, inserting, reordering or
pinning machines moves no machine that was not itself edited.
"""

from __future__ import annotations

import copy
from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from topogen import doc, text, topology_docs
from wgbgp.model import TopologyError, allocate, parse
from wgbgp.model.lock import Lock, current, lock_text, parse_lock, renumbered


def step(d: dict, lock: Lock | None) -> tuple[dict[str, IPv4Address], Lock]:
    """What a command does: parse with the lock, allocate, record the lock anew. The lock
    goes through its text, as it does through the file."""
    t, _ = parse(text(d), "t.yaml", recorded=lock.numbers if lock else None)
    new = parse_lock(lock_text(current(t, lock), "t.yaml"))
    return allocate(t), new


def delete(d: dict, name: str) -> None:
    del d["nodes"][name]
    if "peerings" in d:
        d["peerings"] = [p for p in d["peerings"] if name not in p]


@st.composite
def edits(draw, d: dict) -> tuple[dict, set[str]]:
    """An edited copy of d and the machines the edit itself touched."""
    d = copy.deepcopy(d)
    kind = draw(st.sampled_from(["delete", "insert", "reorder", "pin", "unpin"]))
    names = list(d["nodes"])
    if kind == "delete" and len(names) > 1:
        victim = draw(st.sampled_from(names))
        delete(d, victim)
        return d, {victim}
    if kind == "insert":
        new = f"new{draw(st.integers(0, 10**6))}"
        assume(new not in d["nodes"])
        used = {n["asn"] for n in d["nodes"].values()}
        asn = next(a for a in range(4200000000, 4200001000) if a not in used)
        at = draw(st.integers(0, len(names)))
        items = list(d["nodes"].items())
        items.insert(at, (new, {"asn": asn}))
        d["nodes"] = dict(items)
        return d, {new}
    if kind == "reorder":
        order = draw(st.permutations(names))
        d["nodes"] = {n: d["nodes"][n] for n in order}
        return d, set()
    machines = {**{h: d["hubs"][h] for h in d["hubs"]}, **d["nodes"]}
    name = draw(st.sampled_from(sorted(machines)))
    if kind == "unpin":
        machines[name].pop("address", None)
        return d, set()  # an unpinned machine keeps its number too
    overlay = IPv4Network(d["network"]["overlay"])
    address = draw(st.sampled_from(list(overlay.hosts())))
    machines[name]["address"] = str(address)
    return d, {name}


@settings(max_examples=300)
@given(st.data(), topology_docs())
def test_no_edit_moves_a_machine_it_did_not_touch(data, d):
    before, lock = step(d, None)
    for _ in range(data.draw(st.integers(1, 4))):
        edited, touched = data.draw(edits(d))
        try:
            after, new_lock = step(edited, lock)
        except TopologyError as exc:
            # Only a pin onto an address some machine holds, or a full overlay.
            assert all("pinning it here would renumber" in i.message or "already used" in
                       i.message or "same host number" in i.message or "too small" in i.message
                       for i in exc.issues), exc
            continue
        for name, address in before.items():
            if name in after and name not in touched:
                assert after[name] == address, (name, touched)
        d, before, lock = edited, after, new_lock


def names_doc(*names: str, pins: dict[str, str] | None = None) -> dict:
    d = doc(0)
    for i, name in enumerate(names):
        d["nodes"][name] = {"asn": 65001 + i}
    for name, address in (pins or {}).items():
        machine = d["hubs"].get(name) or d["nodes"][name]
        machine["address"] = address
    return d


def test_the_issues_three_cases():
    d = names_doc("alice", "bob")
    first, lock = step(d, None)
    assert [str(a) for a in first.values()] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    # Delete alice: bob stays .3.
    gone = copy.deepcopy(d)
    delete(gone, "alice")
    after, _ = step(gone, lock)
    assert str(after["bob"]) == "10.0.0.3"
    # Insert aaron above her: alice and bob stay, aaron takes a free number.
    more = names_doc("aaron", "alice", "bob")
    after, _ = step(more, lock)
    assert {n: str(a) for n, a in after.items()} == {
        "vps": "10.0.0.1", "aaron": "10.0.0.4", "alice": "10.0.0.2", "bob": "10.0.0.3"}
    # Pin bob to .1: the hub would move, so it is refused, saying whose it is.
    with pytest.raises(TopologyError) as exc:
        step(names_doc("alice", "bob", pins={"bob": "10.0.0.1"}), lock)
    (issue,) = exc.value.issues
    assert issue.field == "nodes.bob.address"
    assert "vps's (recorded in the address lock)" in issue.message
    assert "pinning it here would renumber vps" in issue.message and "10.0.0.4" in issue.fix


def test_without_a_lock_the_examples_keep_their_addresses():
    d = names_doc("laptop", "friend", pins={"vps": "10.0.0.1", "laptop": "10.0.0.10"})
    got, _ = step(d, None)
    assert {n: str(a) for n, a in got.items()} == {
        "vps": "10.0.0.1", "laptop": "10.0.0.10", "friend": "10.0.0.2"}


def test_unpinning_keeps_the_address():
    d = names_doc("laptop", "friend", pins={"laptop": "10.0.0.10"})
    _, lock = step(d, None)
    del d["nodes"]["laptop"]["address"]
    got, _ = step(d, lock)
    assert str(got["laptop"]) == "10.0.0.10"


def test_ipv6_numbers_are_kept_too():
    d = names_doc("alice", "bob")
    d["network"] = {"name": "test", "overlay6": "fd42:1:2::/64"}
    t, _ = parse(text(d), "t.yaml")
    lock = current(t, None)
    assert lock.numbers == {6: {"vps": 1, "alice": 2, "bob": 3}}
    delete(d, "alice")
    t, _ = parse(text(d), "t.yaml", recorded=lock.numbers)
    from wgbgp.model.addressing import allocate6
    assert str(allocate6(t)["bob"]) == "fd42:1:2::3"


def test_a_deployed_machine_that_would_move_is_reported_loudly():
    d = names_doc("alice", "bob")
    t, _ = parse(text(d), "t.yaml")
    lock = current(t, None, deployed=["bob"])
    assert lock.deployed == {"bob": ["10.0.0.3"]}
    assert list(renumbered(t, lock)) == []
    d["nodes"]["bob"]["address"] = "10.0.0.9"  # bob's own edit: still loud, bob is live
    t, _ = parse(text(d), "t.yaml", recorded=lock.numbers)
    (w,) = renumbered(t, lock)
    assert w.level == "warning" and w.loc == ("nodes", "bob")
    assert w.message.startswith("RENUMBERING bob: its tunnel address changes "
                                "(10.0.0.3 -> 10.0.0.9)")
    assert "pin 'address: 10.0.0.3' on bob" in w.fix
    # alice was never rendered or applied: her moves are nobody's business yet.
    assert "alice" not in lock.deployed


def test_a_lock_that_cannot_be_read_is_said_so():
    from wgbgp.model.lock import LockError
    for bad in ("[1, 2]", "ipv4: {a: x}", "deployed: 3", "ipv4: [\n"):
        with pytest.raises(LockError):
            parse_lock(bad)
    assert parse_lock("") == Lock()
