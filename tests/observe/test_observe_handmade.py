"""The intent apply leaves on a machine, and doctor on any WireGuard + FRR setup.

Fixtures in fixtures/handmade/ were captured (`wgbgp doctor --save`) in a classic lab:
- hub-down.json: the hub vps, wgbgp-made, with `ip link set wg-vps down`, and the
  intent apply left there (vps-intent.json);
- friend-live.json / friend-topology.json: friend configured by hand from the classic
  recipe (wg0.conf with AllowedIPs = the hub's /32 and no keepalive; FRR with an inbound
  route-map only, no ebgp-multihop, and a `network` with no route), judged without and
  with the topology (topology.yaml, the lab's keys).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from obsfix import mutate, scenario, stdout

from topogen import doc, load
from wgbgp.compile import compile_topology
from wgbgp.compile.intent import (
    INTENT_PATH,
    IntentError,
    intent_json,
    neighbourhood,
    parse_intent,
    to_data,
)
from wgbgp.model import parse
from wgbgp.observe.doctor import diagnose
from wgbgp.observe.gather import Observation
from wgbgp.render import render_machine, secrets_needed

HERE = Path(__file__).parent / "fixtures" / "handmade"
EXAMPLES = Path(__file__).parents[2] / "examples"
HUB_KEY = "60acCXlodUWH3An6C7afwq2+rzrpwZt2u4jJAbvdG1Y="


def observation(name: str) -> Observation:
    return Observation.from_json(json.loads((HERE / name).read_text()))


def plans_of(path: Path) -> dict:
    topo, _ = parse(path.read_text(), str(path))
    return compile_topology(topo)


# -- the intent file ----------------------------------------------------------------------

@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_intent_round_trips_every_machine_of_every_example(example: str) -> None:
    plans = plans_of(EXAMPLES / example)
    for m in plans:
        text = intent_json(plans, m)
        assert text == intent_json(plans, m)  # deterministic: no time stamp
        machine, back = parse_intent(text)
        assert machine == m and to_data(back) == to_data(neighbourhood(plans, m))
        # Closed: every machine a kept plan names is itself kept.
        named = {p.name for plan in back.values() for t in plan.tunnels for p in t.peers}
        named |= {s.peer for plan in back.values() for s in (plan.bgp.sessions
                                                              if plan.bgp else ())}
        assert named <= set(back), (example, m, named - set(back))


def test_intent_holds_no_secret_and_is_installed_with_the_other_files() -> None:
    d = doc(2)
    d["network"]["bgp_password"] = {"file": "/etc/wgbgp/md5-{pair}.secret"}
    d["network"]["preshared_key"] = {"env": "WGBGP_PSK_{pair}"}
    plans = compile_topology(load(d))
    psk = "1MnFNEfHs8EzV4rJSF1UN1V3EslXtsI8NjGqv7N2YJY="
    values = {ref: (psk if ref.kind == "env" else "s3cret-md5")
              for p in plans.values() for ref in secrets_needed(p)}
    private = "4EyiyuOiaq8TX/lS5hx9kEXk49MBKDdw6dD8/11R3mQ="
    files = render_machine(plans["n1"], private, values, plans=plans)
    intent = files[-1]
    assert (intent.path, intent.kind, intent.mode) == (INTENT_PATH, "intent", 0o644)
    assert not intent.holds_secret
    # The secrets went into the files that need them, never into the intent.
    assert any("s3cret-md5" in f.text for f in files) and any(psk in f.text for f in files)
    assert any(private in f.text for f in files)
    for secret in ("s3cret-md5", psk, private):
        assert secret not in intent.text
    # Without `plans`, render_machine renders what it always did (golden files).
    assert [f.path for f in render_machine(plans["n1"], private, values)] == \
        [f.path for f in files[:-1]]


def test_a_machine_keeps_only_its_neighbourhood() -> None:
    d = doc(3)
    d["peerings"] = [["n1", "n2"]]
    plans = compile_topology(load(d))
    n1 = neighbourhood(plans, "n1")
    assert set(n1) == {"n1", "n2", "vps"}
    # The hub's plan, as n1 keeps it, no longer mentions n3.
    assert "n3" not in json.dumps(to_data(n1))
    # So n3 leaving changes n1's intent not at all.
    d["nodes"].pop("n3")
    assert intent_json(compile_topology(load(d)), "n1") == intent_json(plans, "n1")


@pytest.mark.parametrize("text, message", [
    ("{", r"intent.json:1: not JSON"),
    ('{"schema": "other/1"}', r"schema 'other/1', expected 'wgbgp.intent/1'"),
    ('{"schema": "wgbgp.intent/1", "machine": "x", "plans": {}}', r"no plan for its machine"),
    ('{"schema": "wgbgp.intent/1", "machine": "x", "plans": {"x": {"machine": 1}}}',
     r"plans.x: "),
])
def test_a_broken_intent_says_where(text: str, message: str) -> None:
    with pytest.raises(IntentError, match=message):
        parse_intent(text, "/var/lib/wgbgp/intent.json")


# -- a wgbgp-made hub whose tunnel interface is down ----------------------------------------

def test_hub_interface_down_with_the_intent() -> None:
    machine, plans = parse_intent((HERE / "vps-intent.json").read_text())
    assert machine == "vps" and set(plans) == {"vps", "laptop", "friend"}
    report = diagnose(observation("hub-down.json"), plans)
    assert not report.healthy
    root = report.findings[0]
    assert (root.code, root.machine, root.verdict) == ("WG_INTERFACE_DOWN", "vps", "fail")
    assert "wg-quick down wg-vps && wg-quick up wg-vps" in root.fix
    # The clients' tunnels, seen from the hub, are skipped because of it, not reported.
    assert [c.code for c in report.findings] == ["WG_INTERFACE_DOWN"]
    assert report.unobserved == ("laptop", "friend")


def test_hub_interface_down_without_anything() -> None:
    obs = observation("hub-down.json")
    assert obs.statuses["vps"].links_up["wg-vps"] is False
    assert obs.statuses["vps"].to_json()["tunnels"][0]["up"] is False
    report = diagnose(obs)
    assert report.codes[:1] == ["WG_INTERFACE_DOWN"] and not report.healthy


# -- the hand recipe, without the topology ----------------------------------------------------

def test_hand_recipe_from_local_facts_alone() -> None:
    report = diagnose(observation("friend-live.json"))
    by_code = {c.code: c for c in report.findings}
    assert report.codes[0] == "NEIGHBOR_OUTSIDE_ALLOWEDIPS"
    assert set(report.codes) == {"NEIGHBOR_OUTSIDE_ALLOWEDIPS", "BGP_TTL", "POLICY_MISSING",
                                 "PREFIX_NOT_ORIGINATED", "WG_NO_KEEPALIVE"}
    outside = by_code["NEIGHBOR_OUTSIDE_ALLOWEDIPS"]
    assert "10.0.0.10" in outside.message and "wg0" in outside.message
    assert f"wg set wg0 peer {HUB_KEY} allowed-ips 10.0.0.0/24" in outside.fix
    assert "/etc/wireguard/wg0.conf" in outside.fix
    # Behind the carrier's NAT: the source towards the hub's endpoint is 100.64.0.3.
    keepalive = by_code["WG_NO_KEEPALIVE"]
    assert "100.64.0.3" in keepalive.message and keepalive.verdict == "warn"
    assert f"wg set wg0 peer {HUB_KEY} persistent-keepalive 25" in keepalive.fix
    assert "neighbor 10.0.0.10 ebgp-multihop 2" in by_code["BGP_TTL"].fix
    policy = by_code["POLICY_MISSING"]
    assert "route-map IN" in " ".join(policy.evidence)
    assert "neighbor 10.0.0.10 route-map OUT out" in policy.fix
    assert "ip route 100.100.102.0/24 blackhole" in by_code["PREFIX_NOT_ORIGINATED"].fix
    # The announced prefix that has its route (on lo) is not reported.
    assert "100.100.100.2" not in by_code["PREFIX_NOT_ORIGINATED"].message
    # The symptom (the session down) is a consequence. (The hub's handshake is recent in
    # this capture: an earlier doctor with the topology pinged the hub.)
    skipped = {c.code: c.because for c in report.checks if c.verdict == "skip"}
    assert skipped == {"BGP_SESSION_DOWN": "NEIGHBOR_OUTSIDE_ALLOWEDIPS@localhost"}


def test_no_handshake_is_a_consequence_when_nothing_may_be_sent() -> None:
    """WireGuard handshakes only when it has a packet for a peer: with no keepalive and
    the only neighbour outside AllowedIPs, it never has one."""
    obs = mutate(observation("friend-live.json"), "localhost", "wg", stdout(
        lambda t: "\n".join(re.sub(r"^(wg0\t\S+\t\S+\t\S+\t\S+\t)\d+\t\d+\t\d+",
                                    r"\g<1>0\t0\t0", line) for line in t.splitlines())))
    assert obs.statuses["localhost"].interfaces[0].peers[0].latest_handshake == 0
    report = diagnose(obs)
    skipped = {c.code: c.because for c in report.checks if c.verdict == "skip"}
    assert skipped["WG_NO_HANDSHAKE"] == "NEIGHBOR_OUTSIDE_ALLOWEDIPS@localhost"
    assert "WG_NO_HANDSHAKE" not in report.codes


def test_hand_recipe_fixed_is_quiet() -> None:
    """The same machine with the recipe's mistakes fixed in its captured outputs: the
    neighbour covered, keepalive on, multihop 2, an outbound policy, the route there."""
    obs = observation("friend-live.json")
    fixed = mutate(obs, "localhost", "wg", stdout(lambda t: t.replace(
        "10.0.0.1/32", "10.0.0.0/24").replace("\toff", "\t25")))
    fixed = mutate(fixed, "localhost", "bgp_neighbors", stdout(lambda t: re.sub(
        r'"outboundEbgpRequiresPolicy":"[^"]*",?', "", t).replace(
        '"externalBgpNbrMaxHopsAway":1', '"externalBgpNbrMaxHopsAway":2')))
    fixed = mutate(fixed, "localhost", "bgp_table", stdout(lambda t: t.replace(
        '{"pathFrom":"external","prefix":"100.100.102.0"',
        '{"valid":true,"pathFrom":"external","prefix":"100.100.102.0"')))
    codes = diagnose(fixed).codes
    for code in ("NEIGHBOR_OUTSIDE_ALLOWEDIPS", "BGP_TTL", "POLICY_MISSING",
                 "PREFIX_NOT_ORIGINATED", "WG_NO_KEEPALIVE"):
        assert code not in codes


# -- the hand recipe, with the topology -------------------------------------------------------

def test_hand_recipe_with_the_topology_finds_wg0_by_its_keys() -> None:
    plans = plans_of(HERE / "topology.yaml")
    report = diagnose(observation("friend-topology.json"), plans)
    text = json.dumps(report.to_json())
    assert "wg-vps is not up" not in text and "WG_INTERFACE_MISSING" not in report.codes
    # Every message names the interface as it is on the machine.
    assert "wg-vps" not in " ".join(c.message + c.fix + " ".join(c.evidence)
                                    for c in report.findings)
    assert report.codes[0] == "ALLOWEDIPS_NARROW"
    narrow = report.findings[0]
    assert f"wg set wg0 peer {HUB_KEY}" in narrow.fix and "Table = off" in narrow.fix
    assert "10.0.0.10/32" in narrow.message
    # The other mistakes are configuration facts to fix too, not consequences.
    assert {"BGP_TTL", "POLICY_MISSING", "PREFIX_NOT_ORIGINATED",
            "WG_NO_KEEPALIVE"} <= set(report.codes)
    recognised = [c for c in report.checks if c.verdict == "ok"
                  and "recognised by a peer's public key" in c.message]
    assert recognised and "wg0" in recognised[0].message


def test_a_renamed_interface_of_a_healthy_network_stays_healthy() -> None:
    obs, plans = scenario("healthy")
    renamed = mutate(obs, "laptop", "wg", stdout(lambda t: t.replace("wg-vps", "wg0")))
    renamed = mutate(renamed, "laptop", "addresses",
                     stdout(lambda t: t.replace('"wg-vps"', '"wg0"')))
    report = diagnose(renamed, plans)
    assert report.healthy and report.findings == [], report.codes
