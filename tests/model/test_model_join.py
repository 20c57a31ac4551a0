"""Join requests: one copy-pasteable line that survives a round trip and refuses any
change, truncation or foreign format; adding the node keeps the file's every other byte."""

from __future__ import annotations

import base64
import json
from ipaddress import ip_network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from topogen import pub
from wgbgp.model import parse
from wgbgp.model.edit import EditError, add_machine
from wgbgp.model.join import JoinRequest, JoinRequestError, decode, encode, validate

REQ = JoinRequest("friend", 65020, (ip_network("100.100.100.2/32"),), pub("friend"))


def test_round_trip_and_shape():
    line = encode(REQ)
    assert decode(line) == REQ
    assert line.startswith("wgbgp-join1.") and line.count(".") == 2
    # Copy-pasteable: one word of URL-safe characters, nothing a shell or chat mangles.
    assert all(c.isalnum() or c in "-_." for c in line)
    assert len(line) < 300
    bird = JoinRequest("b", 65030, (ip_network("2001:db8:5::/48"),), pub("b"), "bird",
                       "root@198.51.100.7")
    assert decode(encode(bird)) == bird


def test_wrapped_paste_is_the_same_request():
    line = encode(REQ)
    assert decode(f"  {line[:40]}\n{line[40:]}\n") == REQ


@given(st.data())
def test_any_changed_character_is_caught(data):
    line = encode(REQ)
    i = data.draw(st.integers(0, len(line) - 1))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
    c = data.draw(st.sampled_from([a for a in alphabet if a != line[i]]))
    with pytest.raises(JoinRequestError):
        decode(line[:i] + c + line[i + 1:])


@pytest.mark.parametrize("cut", [1, 5, 11, 12, 40, -12, -11, -1])
def test_truncation_is_caught(cut):
    line = encode(REQ)
    with pytest.raises(JoinRequestError):
        decode(line[:cut])


def test_other_versions_and_garbage():
    line = encode(REQ)
    with pytest.raises(JoinRequestError, match="newer"):
        decode(line.replace("join1.", "join2.", 1))
    with pytest.raises(JoinRequestError, match="not a join request"):
        decode("hello")
    with pytest.raises(JoinRequestError, match="characters"):
        decode("wgbgp-join1." + "A" * 10000)


def _forged(payload: dict) -> str:
    """A request with a consistent checksum around any payload: what a hand-made (or
    maliciously made) request looks like; the fields are still checked."""
    from wgbgp.model.join import _check
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    head = f"wgbgp-join1.{body}"
    return f"{head}.{_check(head)}"


@pytest.mark.parametrize("change, match", [
    ({"name": "Friend!"}, "machine name"),
    ({"asn": "65020"}, "not a number"),
    ({"asn": 64500}, "documentation"),
    ({"announce": []}, "at least one"),
    ({"announce": ["100.100.100.2/24"]}, "not an IP prefix"),
    ({"public_key": "secret"}, "WireGuard public key"),
    ({"daemon": "quagga"}, "daemon"),
    ({"private_key": "x"}, "unknown field"),
])
def test_bad_fields_are_named(change, match):
    payload = {**REQ.payload(), **change}
    with pytest.raises(JoinRequestError, match=match):
        decode(_forged(payload))
    with pytest.raises(JoinRequestError):
        validate(payload)


FILE = """\
# our network
network: {name: friends, overlay: 10.0.0.0/24}   # keep me
hubs:
  vps: {endpoint: 203.0.113.10:51820}
nodes:
  laptop:
      asn: 65010            # mine
      announce: [100.100.100.1/32]
      # max_prefixes: 5     (its commented-out option stays with it)

# peerings: []
"""


def test_add_machine_keeps_every_other_byte():
    out = add_machine(FILE, "nodes", "friend", REQ.node_fields())
    head, tail = FILE.split("\n# peerings")
    assert out.startswith(head) and out.endswith("\n# peerings" + tail)
    added = out[len(head):-len("\n# peerings" + tail)]
    # The indentation of the file's own machines (6 here), one field a line.
    assert added == ("  friend:\n      asn: 65020\n      public_key: " + pub("friend")
                     + "\n      announce: [100.100.100.2/32]\n")
    assert parse(out)[0].nodes["friend"].asn == 65020


def test_add_machine_flow_and_empty_sections():
    flow = "network: {name: n, overlay: 10.0.0.0/24}\nhubs: {vps: {endpoint: 192.0.2.1:1}}\n"
    for nodes in ("nodes: {}\n", "nodes: {a: {asn: 65001}}\n", "nodes:\n"):
        out = add_machine(flow + nodes, "nodes", "friend", REQ.node_fields())
        topo = parse(out)[0]
        assert topo.nodes["friend"].public_key == pub("friend"), out
    with pytest.raises(EditError, match="already"):
        add_machine(FILE, "nodes", "laptop", {"asn": 1})
    with pytest.raises(EditError, match="no 'nodes:'"):
        add_machine(flow, "nodes", "friend", {"asn": 1})


def test_values_that_need_quotes_are_quoted():
    out = add_machine(FILE, "nodes", "friend", {"asn": 65020, "ssh": "root@[2001:db8::1]:22"})
    assert '"root@[2001:db8::1]:22"' in out
    assert parse(out)[0].nodes["friend"].ssh == "root@[2001:db8::1]:22"
