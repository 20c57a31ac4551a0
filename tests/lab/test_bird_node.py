"""A BIRD node in a hostile network, its doctor, and switching it to FRR and back (issue 8's
gaps), end to end on real namespaces with wireguard-go, FRR 8.4 and BIRD 2.

One lab for the module: hub `vps`, FRR clients `alice` and `mallory` (who misbehaves),
BIRD client `builder`; TCP-MD5 on every session. Issue 6's hostile cases, aimed at the
BIRD node: mallory floods 10,000 prefixes within its allowance (BIRD's import limit closes
that session only), a wrong MD5 password on one of builder's sessions, mallory spoofing
alice's address towards builder. Then doctor with BIRD stopped, and `daemon:` switched.

Tests run in file order against one lab; each leaves it converged. The attack helpers and
the lab's bring-up are issue 6's (tests/lab/test_hostile.py).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostilenet import Net, cli_lab, flood, secret, wgbgp, write_secret

from labwait import stays
from wgbgp.apply import apply_machine
from wgbgp.apply.secrets import read_secrets
from wgbgp.compile import compile_topology
from wgbgp.lab import faults
from wgbgp.lab.runner import kernel_routes, wait_converged
from wgbgp.model import parse
from wgbgp.observe.bird import parse_protocols
from wgbgp.render import render_machine

pytestmark = pytest.mark.lab("wireguard", "frr", "bird")

TOPOLOGY = """\
network:
  name: birdnode
  overlay: 10.0.0.0/24
  bgp_password: {file: "./secrets/md5-{pair}"}
hubs:
  vps: {endpoint: 203.0.113.10:51820, address: 10.0.0.1}
nodes:
  alice: {asn: 65010, announce: [100.100.1.0/24]}
  mallory: {asn: 65030, announce: [100.100.64.0/18], more_specifics: 32}
  builder: {asn: 65040, announce: [100.100.3.0/24], daemon: bird}
"""


class BirdNet(Net):
    """issue 6's lab handle, plus the BIRD node's view."""

    def protocols(self) -> dict:
        out = self.x("builder").run(["birdc", "show", "protocols", "all"], check=False).stdout
        return {p.fields.get("Description", p.name): p for p in parse_protocols(out)
                if p.proto == "BGP"}

    def bird_states(self) -> dict[str, str]:
        return {name: p.fields.get("BGP state", p.state) for name, p in self.protocols().items()}

    def plans(self, text: str | None = None) -> dict:
        return compile_topology(parse(text or self.topology_file.read_text(),
                                      str(self.topology_file))[0])

    def apply(self, machine: str, plans: dict, secrets: dict | None = None):
        secrets = secrets if secrets is not None else read_secrets(plans.values())
        result = apply_machine(self.x(machine), render_machine(plans[machine],
                                                                secrets=secrets),
                               enable_at_boot=False)
        self.transcript.append(json.dumps(result.to_dict()))
        assert result.ok, result.summary()
        return result

    def converged(self, timeout: float = 60, plans: dict | None = None) -> None:
        executors = {n: m.executor() for n, m in self.lab.machines.items()}
        wait_converged(executors, plans or self.plans(), timeout=timeout)


@pytest.fixture(scope="module")
def net(tmp_path_factory) -> Iterator[BirdNet]:
    root = tmp_path_factory.mktemp("birdnode")
    (root / "secrets").mkdir(mode=0o700)
    secrets = []
    for pair in ("alice-builder", "alice-mallory", "builder-mallory"):
        secrets.append(secret())
        write_secret(root / "secrets" / f"md5-{pair}", secrets[-1])
    with cli_lab(BirdNet, root, TOPOLOGY, f"brd{os.getpid() % 100000}", secrets) as net:
        yield net


def test_converged_with_md5_on_every_bird_session(net: BirdNet) -> None:
    assert net.bird_states() == {"alice": "Established", "mallory": "Established"}
    ss = net.sh("builder", "ss -tniH state established '( sport = :179 or dport = :179 )'")
    assert ss.count("md5keys:") == 2  # counted, never shown
    assert kernel_routes(net.x("builder"), "bird") == {"100.100.1.0/24", "100.100.64.0/18"}
    assert "100.100.3.0/24" in net.installed("alice")


def test_flood_trips_birds_import_limit_on_that_session_only(net: BirdNet) -> None:
    """mallory sends 10,000 more-specifics of its /18 (its more_specifics: 32 lets them
    through the import filter): past its limit (1 declared + 10) BIRD closes mallory's
    session. builder's session with alice is untouched, with its routes."""
    since = net.protocols()["alice"].since
    flood(net, "100.100.65.0/24", "add")  # 100.100.65.0 - 100.100.104.15, inside the /18
    net.conf("mallory", "router bgp 65030", "address-family ipv4 unicast", "redistribute kernel")
    try:
        net.wait("builder closing mallory's session", lambda: "limit" in (
            net.protocols()["mallory"].fields.get("Last error", "")).lower(), timeout=90)
        mallory = net.protocols()["mallory"]
        assert mallory.fields["Last error"].endswith("Route limit exceeded"), mallory.fields
        # Nothing of the flood reached builder's kernel; alice's session never moved.
        routes = kernel_routes(net.x("builder"), "bird")
        assert not [r for r in routes if r.startswith(("100.100.6", "100.100.7", "100.100.8",
                                                       "100.100.9", "100.100.10"))
                    and r != "100.100.64.0/18"], sorted(routes)[:5]
        alice = net.protocols()["alice"]
        assert alice.fields["BGP state"] == "Established" and alice.since == since
        assert "100.100.1.0/24" in kernel_routes(net.x("builder"), "bird")
        assert net.ping("builder", "100.100.1.1", source="100.100.3.1")
        # mallory's other session (to alice, FRR) closes too: the same policy on both daemons.
        net.wait("alice closing mallory's session", lambda: net.states("alice")["mallory"]
                 .startswith("Idle (PfxCt)"), timeout=60)
    finally:
        net.conf("mallory", "router bgp 65030", "address-family ipv4 unicast",
                 "no redistribute kernel")
        flood(net, "100.100.65.0/24", "del")
        net.vtysh("alice", f"clear bgp {net.addr['mallory']}")
        net.x("builder").run(["birdc", "restart", "mallory_v4"], check=False)
    net.wait("mallory back at builder", lambda: net.bird_states()["mallory"] == "Established")
    net.converged()


def test_wrong_md5_password_on_a_bird_session(net: BirdNet) -> None:
    """builder gets a wrong password for its session with alice (through apply, as a
    changed secret would arrive): refused at both ends; the right one: Established again.
    builder's session with mallory never notices."""
    plans = net.plans()
    secrets = read_secrets(plans.values())
    wrong_value = "wrong-" + os.urandom(6).hex()
    net.secrets.append(wrong_value)
    wrong = {r: (wrong_value if r.name.endswith("md5-alice-builder") else v)
             for r, v in secrets.items()}
    since = net.protocols()["mallory"].since
    result = net.apply("builder", plans, wrong)
    assert [s.action for s in result.steps][-1] == "bird-reload"
    try:
        net.wait("builder's session with alice going down",
                 lambda: net.bird_states()["alice"] != "Established", timeout=15)
        stays("the session with the wrong password refused (a connect retry, 5 s)",
              lambda: net.bird_states()["alice"] != "Established"
              and net.states("alice")["builder"] != "Established", 6)
        assert net.bird_states()["mallory"] == "Established"
    finally:
        net.apply("builder", plans, secrets)
    net.wait("alice-builder with the right password",
             lambda: net.bird_states()["alice"] == "Established", timeout=30)
    assert net.protocols()["mallory"].since == since
    net.converged()


def test_spoofed_source_towards_the_bird_node_is_dropped(net: BirdNet) -> None:
    """mallory pings builder with alice's address as source: the hub's WireGuard drops it
    (not in mallory's AllowedIPs), builder never sees it."""
    count = ("nft list table ip spoof_probe | sed -n 's/.*counter packets \\([0-9]*\\).*/\\1/p'")
    net.sh("builder", "nft add table ip spoof_probe; nft add chain ip spoof_probe in "
                      "'{ type filter hook input priority -10; }'; nft add rule ip spoof_probe "
                      "in ip saddr 100.100.1.1 icmp type echo-request counter")
    try:
        assert net.ping("alice", "100.100.3.1", source="100.100.1.1")  # control: counted
        seen = int(net.sh("builder", count).strip())
        assert seen >= 2
        net.sh("mallory", "ip address add 100.100.1.1/32 dev lo")
        try:
            assert not net.ping("mallory", "100.100.3.1", source="100.100.1.1", count=3)
        finally:
            net.sh("mallory", "ip address del 100.100.1.1/32 dev lo")
        stays("no spoofed packet arriving at builder",
              lambda: int(net.sh("builder", count).strip()) == seen, 1)
    finally:
        net.sh("builder", "nft delete table ip spoof_probe", check=False)


def test_doctor_names_bird_down_on_the_bird_node_then_healthy(net: BirdNet) -> None:
    """BIRD stopped on builder: `wgbgp lab doctor` names BGP_DAEMON_DOWN on builder, first
    and alone, in BIRD's words; apply again: healthy."""
    wgbgp(net, "lab", "exec", "--name", net.name, "builder", "--", "birdc", "down")
    net.wait("BIRD gone", lambda: not net.x("builder").run(
        ["birdc", "show", "status"], check=False).ok, timeout=10)
    out = wgbgp(net, "lab", "doctor", "--name", net.name, "--json", check=False)
    assert out.returncode == 1, out.stdout + out.stderr
    report = json.loads(out.stdout)
    first = report["findings"][0]
    assert (first["code"], first["machine"], first["verdict"]) == (
        "BGP_DAEMON_DOWN", "builder", "fail"), report["findings"][:3]
    assert [f["code"] for f in report["findings"] if f["verdict"] == "fail"] == [
        "BGP_DAEMON_DOWN"], [(f["code"], f["machine"]) for f in report["findings"]]
    assert "BIRD" in first["message"] and "bird" in first["fix"]
    assert "vtysh" not in json.dumps(first) and "bgpd" not in first["fix"]
    result = faults.restart(net.lab, "builder")  # `wgbgp apply` again
    assert result.ok and "bird-start" in [s.action for s in result.steps], result.summary()
    net.converged()
    out = wgbgp(net, "lab", "doctor", "--name", net.name, "--json", check=False)
    assert out.returncode == 0 and json.loads(out.stdout)["healthy"], out.stdout


def test_switch_between_bird_and_frr(net: BirdNet) -> None:
    """`daemon:` changed: apply stops the old daemon, puts its files away and starts the
    new one; the sessions come back on the new daemon. Then back to BIRD."""
    x = net.x("builder")
    frr_files = {p: x.read_file(p) for p in ("/etc/frr/frr.conf", "/etc/frr/daemons")}
    bird_text = net.topology_file.read_text()
    frr_text = bird_text.replace("    daemon: bird\n", "")
    assert frr_text != bird_text
    frr_plans = net.plans(frr_text)
    result = net.apply("builder", frr_plans)
    assert [s.action for s in result.steps if s.action in ("retire", "frr-start")] == [
        "retire", "frr-start"], result.summary()
    assert not x.run(["birdc", "show", "status"], check=False).ok  # BIRD is gone
    assert x.read_file("/etc/bird/bird.conf") is None
    net.converged(plans=frr_plans)
    assert net.states("builder") == {"alice": "Established", "mallory": "Established"}
    assert not kernel_routes(x, "bird")  # BIRD took its routes with it
    manifest = x.read_file("/etc/wgbgp/manifest") or ""
    assert "bird.conf" not in manifest and not re.search(r"^bird\t", manifest, re.M)

    result = net.apply("builder", net.plans(bird_text))
    assert [s.action for s in result.steps if s.action in ("retire", "bird-start")] == [
        "retire", "bird-start"], result.summary()
    assert not x.run(["vtysh", "-c", "show version"], check=False).ok  # FRR is gone
    # What FRR's package put there is back, as it was before wgbgp ran FRR here.
    assert {p: x.read_file(p) for p in frr_files} == frr_files
    net.converged()
    assert net.bird_states() == {"alice": "Established", "mallory": "Established"}
    assert not kernel_routes(x, "bgp")  # zebra took its routes with it
    assert not list(Path(net.lab.machines["builder"].host_path("/etc/frr")).glob(
        "*.wgbgp-retired"))
    # And the next apply has nothing to do.
    again = apply_machine(x, render_machine(net.plans()["builder"],
                                            secrets=read_secrets(net.plans().values())),
                          enable_at_boot=False)
    assert again.ok and not again.changed, again.summary()
