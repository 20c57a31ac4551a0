"""BIRD 2 as the hub's route server (issue 19), end to end on real namespaces with
wireguard-go, FRR 8.4 and BIRD 2.

One lab for the module, hub mode: hub `vps` runs BIRD; FRR clients `alice` and `mallory`
(who misbehaves), BIRD client `builder`; TCP-MD5 on every session. What stops each attack
is the BIRD hub's rendered policy: issue 6's hostile cases (a hijack, a more-specific, a
default route, an overlay route, a flood past the import limit, a wrong MD5 password)
aimed at the route server. Then: a client added to and removed from the hub through
apply (`birdc configure`) resets no other session; status, doctor and the exporter read
the BIRD hub; the hub switched to FRR and back keeps the network working.

Tests run in file order against one lab; each leaves it converged. The lab's handle and
attack helpers are issue 6's and issue 8's (test_hostile.py, test_bird_node.py).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from hostilenet import flood, wgbgp, write_secret
from test_bird_node import BirdNet
from test_hostile import announce, sent, withdraw

from labwait import stays
from wgbgp.apply.secrets import read_secrets
from wgbgp.compile import compile_topology
from wgbgp.lab.build import open_lab
from wgbgp.lab.runner import kernel_routes
from wgbgp.lab.state import lab_dir
from wgbgp.model import parse
from wgbgp.model.keys import generate_private_key, public_key
from wgbgp.observe.bird import parse_protocols
from wgbgp.observe.exporter import metric_families, peer_names
from wgbgp.observe.status import collect

pytestmark = pytest.mark.lab("wireguard", "frr", "bird")

TOPOLOGY = """\
network:
  name: birdhub
  overlay: 10.0.0.0/24
  mode: hub
  bgp_password: {file: "./secrets/md5-{pair}"}
hubs:
  vps: {endpoint: 203.0.113.10:51820, address: 10.0.0.1, asn: 64600, daemon: bird}
nodes:
  alice: {asn: 65010, announce: [100.100.1.0/24]}
  mallory: {asn: 65030, announce: [100.100.64.0/18], more_specifics: 32}
  builder: {asn: 65040, announce: [100.100.3.0/24], daemon: bird}
"""
CLIENTS = ("alice", "builder", "mallory")
SINCE_JITTER = 0.5  # s


class HubNet(BirdNet):
    """The lab handle, reading the BIRD hub (BirdNet reads `builder`)."""

    def hub(self) -> dict:
        """The hub's BGP protocols by client name."""
        out = self.x("vps").run(["birdc", "show", "protocols", "all"], check=False).stdout
        return {p.fields.get("Description", p.name): p for p in parse_protocols(out)
                if p.proto == "BGP"}

    def hub_states(self) -> dict[str, str]:
        return {n: p.fields.get("BGP state", p.state) for n, p in self.hub().items()}

    def since(self) -> dict[str, float]:
        """Seconds since midnight each session has been in its state (BIRD shows
        monotonic times through the current real-time offset: they jitter by a
        millisecond from one `birdc` call to the next)."""
        out = {}
        for n, p in self.hub().items():
            h, m, sec = re.search(r"(\d\d):(\d\d):(\d\d(?:\.\d+)?)$", p.since).groups()
            out[n] = int(h) * 3600 + int(m) * 60 + float(sec)
        return out

    def reset(self, before: dict[str, float], *clients: str) -> list[str]:
        """Clients whose session changed state since `before` (a reset moves its
        since-time by seconds: a restarted session waits at least a connect retry)."""
        after = self.since()
        return [c for c in clients or before if c not in after
                or abs(after[c] - before[c]) > SINCE_JITTER]

    def hub_has(self, prefix: str) -> bool:
        """The hub's BIRD holds a route for exactly `prefix`."""
        out = self.x("vps").run(["birdc", "show", "route", prefix], check=False).stdout
        return prefix in out

    def as_paths(self, machine: str, prefix: str) -> list[str]:
        """The AS paths of an FRR client's BGP paths for `prefix`."""
        data = json.loads(self.vtysh(machine, f"show ip bgp {prefix} json") or "{}")
        return [p.get("aspath", {}).get("string", "") for p in data.get("paths", [])]

    def edited(self, edit: Callable[[dict], None]) -> str:
        """The lab's topology with `edit` applied to its document."""
        d = yaml.safe_load(self.topology_file.read_text())
        edit(d)
        return yaml.safe_dump(d, sort_keys=False)

    def filtered(self, client: str) -> int:
        """Updates from `client` the hub's import filter refused (BIRD's channel stats:
        received, rejected, filtered, ignored, accepted)."""
        stats = self.hub()[client].channels["ipv4"]["Import updates"].split()
        return int(stats[2])


@pytest.fixture(scope="module")
def net(tmp_path_factory) -> Iterator[HubNet]:
    root = tmp_path_factory.mktemp("birdhub")
    (root / "secrets").mkdir(mode=0o700)
    secrets = []
    for client in CLIENTS:
        secrets.append(base64.b64encode(os.urandom(12)).decode().rstrip("=")
                       .replace("/", "_").replace("+", "-"))
        write_secret(root / "secrets" / f"md5-{client}-vps", secrets[-1])
    (root / "topology.yaml").write_text(TOPOLOGY)
    name = f"birdhub{os.getpid() % 100000}"
    placeholder = HubNet(name, None, root / "lab.yaml", {}, secrets)  # type: ignore[arg-type]
    try:
        # No agent: these tests put faults in place on purpose, and an agent would repair them.
        wgbgp(placeholder, "lab", "up", str(root / "topology.yaml"), "--name", name, "--no-agent")
        lab = open_lab(name)
        assert lab is not None
        shutil.copy(lab_dir(name) / "topology.yaml", root / "lab.yaml")
        plans = compile_topology(parse((root / "lab.yaml").read_text())[0])
        yield HubNet(name, lab, root / "lab.yaml",
                     {n: str(p.tunnels[0].address.ip) for n, p in plans.items()}, secrets,
                     placeholder.transcript)
    finally:
        wgbgp(None, "lab", "down", "--name", name, check=False)


def test_mixed_clients_through_a_bird_hub_pass_lab_test(net: HubNet) -> None:
    report = json.loads(wgbgp(net, "lab", "test", "--name", net.name, "--json").stdout)
    assert report["ok"], report
    assert net.hub_states() == dict.fromkeys(CLIENTS, "Established")
    ss = net.sh("vps", "ss -tniH state established '( sport = :179 or dport = :179 )'")
    assert ss.count("md5keys:") == 3  # every client's session has TCP-MD5
    assert not net.x("vps").run(["vtysh", "-c", "show version"],
                                check=False).ok  # no FRR on the hub
    # The route server passes routes on unchanged: AS path [origin], next hop the origin's
    # tunnel address, on both kinds of client.
    bird_route = net.x("builder").run(["birdc", "show", "route", "100.100.1.0/24", "all"]).stdout
    assert "BGP.as_path: 65010\n" in bird_route and f"via {net.addr['alice']} " in bird_route
    frr_route = json.loads(net.vtysh("alice", "show ip bgp 100.100.3.0/24 json"))
    (path,) = frr_route["paths"]
    assert path["aspath"]["string"] == "65040"
    assert path["nexthops"][0]["ip"] == net.addr["builder"]
    assert kernel_routes(net.x("vps"), "bird") == {
        "100.100.1.0/24", "100.100.3.0/24", "100.100.64.0/18"}


def test_status_doctor_and_exporter_read_the_bird_hub(net: HubNet) -> None:
    status = json.loads(wgbgp(net, "lab", "status", "--name", net.name, "--json").stdout)
    hub = status["machines"]["vps"]["bgp"]
    assert hub["asn"] == 64600
    assert {n["name"]: n["state"] for n in hub["neighbors"]} == dict.fromkeys(
        CLIENTS, "Established")
    assert all(n["prefixes_received"] == 1 and n["prefixes_sent"] == 2
               for n in hub["neighbors"]), hub["neighbors"]
    out = wgbgp(net, "lab", "doctor", "--name", net.name, "--json", check=False)
    assert out.returncode == 0 and json.loads(out.stdout)["healthy"], out.stdout
    plans = net.plans()
    families = {f.name: f for f in metric_families(collect(net.x("vps"), plans["vps"]),
                                                   peer_names(plans))}
    up = {s.labels["name"]: s.value for s in families["wgbgp_bgp_session_up"].samples}
    assert up == dict.fromkeys(CLIENTS, 1.0), up


@pytest.mark.parametrize("kind,prefix", [
    ("hijack of builder's prefix", "100.100.3.0/24"),
    ("more-specific of alice's prefix", "100.100.1.128/25"),
    ("default route", "0.0.0.0/0"),
    ("route into the overlay", "10.0.0.128/25"),
    ("undeclared bogon", "172.16.99.0/24"),
])
def test_hostile_announcements_refused_by_the_bird_hub(net: HubNet, kind: str,
                                                       prefix: str) -> None:
    """mallory announces what is not its own: it leaves mallory for the hub, whose import
    filter refuses it; no client sees it, every session stays up."""
    since, refused = net.since(), net.filtered("mallory")
    announce(net, "mallory", prefix)
    try:
        net.wait(f"mallory sending the {kind}", lambda: prefix in sent(net, "mallory", "vps"))
        net.wait("the hub's filter refusing it", lambda: net.filtered("mallory") > refused)
        assert not net.hub_has(prefix) or prefix == "100.100.3.0/24"
        if prefix == "100.100.3.0/24":  # the hub keeps builder's route, and only it
            route = net.x("vps").run(["birdc", "show", "route", prefix, "all"]).stdout
            assert "builder_v4" in route and "mallory_v4" not in route, route
        stays("no client learning it from mallory through the hub", lambda: (
            "65030" not in net.as_paths("alice", prefix)
            and "BGP.as_path: 65030" not in net.x("builder").run(
                ["birdc", "show", "route", prefix, "all"], check=False).stdout), 2)
        assert not net.reset(since) and net.hub_states() == dict.fromkeys(
            CLIENTS, "Established")
    finally:
        withdraw(net, "mallory", prefix)
    net.converged()


def test_flood_past_the_import_limit_closes_that_session_only(net: HubNet) -> None:
    """mallory sends 10,000 more-specifics of its /18 (its more_specifics: 32 lets them
    through the filter): past its limit (1 declared + 10) the hub closes mallory's session.
    alice's and builder's sessions are untouched, and the flood reaches neither."""
    since = net.since()
    flood(net, "100.100.65.0/24", "add")  # 100.100.65.0 - 100.100.104.15, inside the /18
    net.conf("mallory", "router bgp 65030", "address-family ipv4 unicast", "redistribute kernel")
    try:
        net.wait("the hub closing mallory's session", lambda: "limit" in (
            net.hub()["mallory"].fields.get("Last error", "")).lower(), timeout=90)
        assert net.hub()["mallory"].fields["Last error"].endswith("Route limit exceeded")
        assert not net.reset(since, "alice", "builder")
        # Routes the hub took before the limit tripped reached alice, and leave with
        # mallory's session: none stays.
        net.wait("no flood route at alice", lambda: not [
            r for r in net.installed("alice")
            if r.startswith("100.100.6") and r != "100.100.64.0/18"], timeout=30)
        assert kernel_routes(net.x("builder"), "bird") <= {"100.100.1.0/24", "100.100.64.0/18"}
        assert net.ping("alice", "100.100.3.1", source="100.100.1.1")
    finally:
        net.conf("mallory", "router bgp 65030", "address-family ipv4 unicast",
                 "no redistribute kernel")
        flood(net, "100.100.65.0/24", "del")
        net.x("vps").run(["birdc", "restart", "mallory_v4"], check=False)
    net.wait("mallory back at the hub", lambda: net.hub_states()["mallory"] == "Established",
             timeout=60)
    net.converged()


def test_wrong_md5_password_is_refused_by_the_bird_hub(net: HubNet) -> None:
    """mallory gets a wrong password for its session with the hub (through apply): the hub
    refuses it; with the right one it is Established again. Nobody else notices."""
    plans = net.plans()
    secrets = read_secrets(plans.values())
    wrong_value = "wrong-" + os.urandom(6).hex()
    net.secrets.append(wrong_value)
    wrong = {r: (wrong_value if r.name.endswith("md5-mallory-vps") else v)
             for r, v in secrets.items()}
    since = net.since()
    net.apply("mallory", plans, wrong)
    try:
        net.wait("mallory's session going down",
                 lambda: net.hub_states()["mallory"] != "Established", timeout=40)
        stays("the wrong password refused (connect retries)",
              lambda: net.hub_states()["mallory"] != "Established"
              and net.states("mallory")["vps"] != "Established", 6)
    finally:
        net.apply("mallory", plans, secrets)
    net.wait("mallory with the right password",
             lambda: net.hub_states()["mallory"] == "Established", timeout=40)
    assert not net.reset(since, "alice", "builder")
    net.converged()


def test_adding_and_removing_a_client_resets_no_other_session(net: HubNet) -> None:
    """The hub gets a client more (dave, whose machine does not exist yet), then loses it:
    each time apply reloads BIRD (`birdc configure`), and every other session keeps its
    Established-since time."""
    since = net.since()
    plans = net.plans(net.edited(lambda d: d["nodes"].update(dave={
        "asn": 65050, "announce": ["100.100.5.0/24"], "address": "10.0.0.50",
        "public_key": public_key(generate_private_key())})))
    for name in CLIENTS:  # the others keep their addresses: only the hub is applied
        assert net.plans()[name].tunnels == plans[name].tunnels
    secret = net.topology_file.parent / "secrets" / "md5-dave-vps"
    write_secret(secret, "dave-" + os.urandom(6).hex())
    try:
        result = net.apply("vps", plans)
        assert [s.action for s in result.steps][-1] == "bird-reload", result.summary()
        assert "dave" in net.hub()
        stays("every other session untouched", lambda: not net.reset(since), 3)
    finally:
        result = net.apply("vps", net.plans())
        secret.unlink()
    assert [s.action for s in result.steps][-1] == "bird-reload", result.summary()
    assert "dave" not in net.hub() and not net.reset(since)
    net.converged()


def test_switching_the_hub_between_bird_and_frr_keeps_the_network(net: HubNet) -> None:
    """`daemon:` of the hub changed: apply retires BIRD and starts FRR (the clients'
    configs do not change, only the hub is applied); every session comes back on the new
    route server and traffic flows. Then back to BIRD."""
    x = net.x("vps")
    bird_text = net.topology_file.read_text()
    frr_text = net.edited(lambda d: d["hubs"]["vps"].pop("daemon"))
    frr_plans = net.plans(frr_text)
    for name in CLIENTS:  # nothing to do on the clients
        assert frr_plans[name] == net.plans()[name]
    result = net.apply("vps", frr_plans)
    assert [s.action for s in result.steps if s.action in ("retire", "frr-start")] == [
        "retire", "frr-start"], result.summary()
    assert not x.run(["birdc", "show", "status"], check=False).ok
    assert x.read_file("/etc/bird/bird.conf") is None
    net.converged(plans=frr_plans, timeout=90)
    assert net.states("vps") == dict.fromkeys(CLIENTS, "Established")
    assert net.ping("alice", "100.100.3.1", source="100.100.1.1")

    result = net.apply("vps", net.plans(bird_text))
    assert [s.action for s in result.steps if s.action in ("retire", "bird-start")] == [
        "retire", "bird-start"], result.summary()
    assert not x.run(["vtysh", "-c", "show version"], check=False).ok  # FRR is gone
    assert not re.search(r"^frr\t", x.read_file("/etc/wgbgp/manifest") or "", re.M)
    net.converged(timeout=90)
    assert net.hub_states() == dict.fromkeys(CLIENTS, "Established")
    assert net.ping("builder", "100.100.1.1", source="100.100.3.1")
    assert not list(Path(net.lab.machines["vps"].host_path("/etc/frr")).glob(
        "*.wgbgp-retired"))
