"""Hostile network (issue 6), end to end: one lab, three clients, and mallory misbehaving.

The lab runs the real policy: FRR with the rendered prefix-lists, max-prefix and TCP-MD5,
WireGuard with preshared keys, the hub's nftables ruleset. Every attack is injected on the
attacker's own machine (static routes, `network`/`redistribute`, its own export list
opened); what stops it must be the receivers' configuration. Each test also checks that
the honest nodes keep their sessions and routes.

Tests run in file order against one lab (module fixture); each undoes what it injects.
The last one greps everything wgbgp printed and every log and lab file for the secrets.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from ipaddress import IPv4Network
from pathlib import Path

import pytest
from hostilenet import FLOOD, Net, cli_lab, flood, secret, wgbgp, write_secret

from labwait import stays
from wgbgp.apply import apply_machine
from wgbgp.apply.secrets import read_secrets
from wgbgp.compile import compile_topology
from wgbgp.lab.state import lab_dir
from wgbgp.model import parse
from wgbgp.model.keys import generate_private_key
from wgbgp.render import render_machine

pytestmark = pytest.mark.lab("wireguard", "frr")

TOPOLOGY = """\
# Issue 6's hostile lab: mallory attacks, alice and bob must not notice.
network:
  name: hostile
  overlay: 10.0.0.0/24
  bgp_password: {file: "./secrets/md5-{pair}"}
  preshared_key: {file: "./secrets/psk-{pair}"}
hubs:
  vps: {endpoint: 203.0.113.10:51820, address: 10.0.0.1, exit: true}
nodes:
  alice:
    asn: 65010
    announce: [100.100.1.0/24, 172.16.77.0/24]   # the second is RFC 1918, declared
    exit: true
  bob:
    asn: 65020
    announce: [100.100.2.0/24]
    more_specifics: 26
  mallory:
    asn: 65030
    announce: [100.100.64.0/18]
    more_specifics: 32
"""
INTERNET = "198.18.0.1"  # the lab's Internet namespace
HUB_PUBLIC = "203.0.113.10"
LOG = "/var/log/frr/bgpd-hostile.log"


def nft_counter(text: str, rule: str) -> int:
    """Packets counted by the rule whose text (counter removed) is `rule`."""
    for line in text.splitlines():
        m = re.match(r"\s*(.*?)counter packets (\d+) bytes \d+ ?(.*)$", line)
        if m and f"{m.group(1)}{m.group(3)}".strip() == rule:
            return int(m.group(2))
    raise AssertionError(f"no rule {rule!r} in:\n{text}")


def hub_nft(net: Net, chain: str) -> str:
    return net.sh("vps", f"nft list chain inet wgbgp {chain}")


# --- the lab ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def net(tmp_path_factory) -> Iterator[Net]:
    # Under /tmp: machines see the host's /tmp (their /run is their own).
    root = tmp_path_factory.mktemp("hostile")
    (root / "secrets").mkdir(mode=0o700)
    secrets = []
    for pair in ("alice-bob", "alice-mallory", "bob-mallory"):
        secrets.append(secret())
        write_secret(root / "secrets" / f"md5-{pair}", secrets[-1])
    for node in ("alice", "bob", "mallory"):
        secrets.append(generate_private_key())  # a preshared key has the same form
        write_secret(root / "secrets" / f"psk-{node}-vps", secrets[-1])
    with cli_lab(Net, root, TOPOLOGY, f"hst{os.getpid() % 100000}", secrets) as net:
        # Receivers log BGP updates (with why each was refused) to a file we can read.
        for node in ("alice", "bob"):
            net.conf(node, f"log file {LOG} debugging", "debug bgp updates in")
        yield net


def announce(net: Net, machine: str, *prefixes: str) -> None:
    """What an attacker does on its own machine: originate, and open its export list."""
    asn = {"alice": 65010, "bob": 65020, "mallory": 65030}[machine]
    lines = ["ip prefix-list OWN seq 1000 permit any", *map(_static, prefixes)]
    lines += [f"router bgp {asn}", "address-family ipv4 unicast",
              *(f"network {p}" for p in prefixes)]
    net.conf(machine, *[line for line in lines if line])


def _static(prefix: str) -> str:
    """A route that puts `prefix` in the attacker's RIB (`network` needs one) without
    cutting its own tunnel: inside the overlay it points at the tunnel itself."""
    if prefix == "0.0.0.0/0":
        return ""  # it has a default route already
    if IPv4Network(prefix).subnet_of(IPv4Network("10.0.0.0/24")):
        return f"ip route {prefix} wg-vps 250"
    return f"ip route {prefix} blackhole 250"


def withdraw(net: Net, machine: str, *prefixes: str) -> None:
    asn = {"alice": 65010, "bob": 65020, "mallory": 65030}[machine]
    net.conf(machine, f"router bgp {asn}", "address-family ipv4 unicast",
             *(f"no network {p}" for p in prefixes), "exit-address-family", "exit",
             *(f"no {_static(p)}" for p in prefixes if _static(p)),
             "no ip prefix-list OWN seq 1000 permit any")


def denied(net: Net, receiver: str, sender: str, prefix: str) -> bool:
    """The receiver's log says it refused `prefix` from `sender` (so it did arrive)."""
    log = net.sh(receiver, f"cat {LOG}")
    return re.search(rf"{re.escape(net.addr[sender])}\({sender}\) rcvd UPDATE about "
                     rf"{re.escape(prefix)} IPv4 unicast -- DENIED due to", log) is not None


def sent(net: Net, sender: str, receiver: str) -> set[str]:
    out = net.vtysh(sender, f"show ip bgp neighbors {net.addr[receiver]} advertised-routes json")
    return set(json.loads(out).get("advertisedRoutes", {}))


# --- 0. the honest network --------------------------------------------------------------

def test_converged_with_md5_psk_and_policy(net: Net) -> None:
    for node, others in (("alice", {"bob", "mallory"}), ("bob", {"alice", "mallory"}),
                         ("mallory", {"alice", "bob"})):
        assert net.states(node) == dict.fromkeys(others, "Established")
    net.honest_ok()
    # Each tunnel has a preshared key, at both ends (the value is only compared).
    for node in ("alice", "bob", "mallory"):
        mine = net.sh(node, "wg show wg-vps preshared-keys").split()
        assert len(mine) == 2 and mine[1] != "(none)"
    hub = dict(line.split() for line in net.sh("vps", "wg show wg-vps preshared-keys")
               .splitlines())
    assert "(none)" not in hub.values() and len(hub) == 3
    # TCP-MD5 is on every BGP connection.
    for node in ("alice", "bob", "mallory"):
        # (`ss -i` shows root the keys themselves: only counted, never shown.)
        ss = net.sh(node, "ss -tniH state established '( sport = :179 or dport = :179 )'")
        assert ss.count("md5keys:") == 2, f"{node}: not every BGP connection has TCP-MD5"
    # More-specifics are accepted only as far as bob declared: /26, not /27.
    announce(net, "bob", "100.100.2.64/26", "100.100.2.32/27")
    try:
        net.wait("bob's /26 at alice", lambda: "100.100.2.64/26" in net.installed("alice"))
        net.wait("bob's /27 refused", lambda: denied(net, "alice", "bob", "100.100.2.32/27"))
        assert "100.100.2.32/27" not in net.installed("alice")
    finally:
        withdraw(net, "bob", "100.100.2.64/26", "100.100.2.32/27")


# --- 1-3. hostile announcements ---------------------------------------------------------

OWNERS = {"100.100.1.0/24": "alice", "172.16.77.0/24": "alice", "100.100.2.0/24": "bob"}
HIJACKS = ["100.100.2.0/24", "100.100.1.0/24", "172.16.77.0/24"]          # 1. others' prefixes
MORE_SPECIFICS = ["100.100.2.128/25", "100.100.1.0/25", "172.16.77.0/26"]  # 2.
NEVER = ["0.0.0.0/0", "10.0.0.0/24", "10.0.0.3/32",                         # 3. default, overlay,
         "192.168.99.0/24", "192.0.2.0/24", "100.120.0.0/25"]              #    bogons, > /24


@pytest.mark.parametrize("kind,prefixes", [("hijack", HIJACKS),
                                           ("more-specific", MORE_SPECIFICS),
                                           ("default, overlay, martians", NEVER)])
def test_hostile_announcements_rejected_everywhere(net: Net, kind: str, prefixes) -> None:
    announce(net, "mallory", *prefixes)
    try:
        # They really left mallory, and each receiver refused each one.
        net.wait("mallory's announcements sent", lambda: set(prefixes) <= (
            sent(net, "mallory", "alice") & sent(net, "mallory", "bob")))
        for receiver in ("alice", "bob"):
            net.wait(f"{receiver} refusing them", lambda r=receiver: all(
                denied(net, r, "mallory", p) for p in prefixes))
            for p in prefixes:
                owner = OWNERS.get(p)
                expect = [] if owner is None else ["self"] if owner == receiver else [owner]
                assert net.bgp_paths(receiver, p) == expect, (kind, receiver, p)
        # Traffic still goes to the rightful owners.
        assert net.ping("alice", "100.100.2.1", source="100.100.1.1")
        assert net.ping("bob", "172.16.77.1", source="100.100.2.1")
        net.honest_ok()
        assert net.states("alice")["mallory"] == "Established"  # refused, not cut off
    finally:
        withdraw(net, "mallory", *prefixes)


# --- 4. floods --------------------------------------------------------------------------

def test_flood_of_undeclared_prefixes_is_dropped_on_arrival(net: Net) -> None:
    """10,000 prefixes nobody declared: every one refused by the prefix-list, nothing
    stored; no session is touched (refused prefixes never count against max-prefix)."""
    before = {n: net.installed(n) for n in ("alice", "bob")}
    refused = {n: _denials(net, n) for n in ("alice", "bob")}
    flood(net, "100.110.0.0/18", "add")
    net.conf("mallory", "ip prefix-list OWN seq 1000 permit any", "router bgp 65030",
             "address-family ipv4 unicast", "redistribute kernel")
    try:
        for receiver in ("alice", "bob"):
            net.wait(f"{receiver} refusing the flood", lambda r=receiver:
                     _denials(net, r) - refused[r] >= FLOOD, timeout=120)
            assert net.installed(receiver) == before[receiver]
            assert net.states(receiver)["mallory"] == "Established"
            assert net.peers(receiver)["mallory"]["pfxRcd"] == 1
        net.honest_ok()
    finally:
        net.conf("mallory", "router bgp 65030", "address-family ipv4 unicast",
                 "no redistribute kernel", "exit-address-family", "exit",
                 "no ip prefix-list OWN seq 1000 permit any")
        flood(net, "100.110.0.0/18", "del")


def _denials(net: Net, receiver: str) -> int:
    return int(net.sh(receiver, f"grep -c 'DENIED' {LOG} || true").strip() or 0)


def test_flood_within_its_allowance_trips_max_prefix_on_that_session_only(net: Net) -> None:
    """10,000 more-specifics of mallory's own /18 (which its more_specifics: 32 lets
    through the prefix-list): max-prefix (declared 1 + margin 10) closes mallory's
    sessions; alice and bob keep theirs, with their routes, and the log says why."""
    uptime = net.peers("alice")["bob"]["peerUptimeMsec"]
    flood(net, "100.100.65.0/24", "add")  # 100.100.65.0 - 100.100.104.15, inside the /18
    net.conf("mallory", "router bgp 65030", "address-family ipv4 unicast",
             "redistribute kernel")
    try:
        for receiver in ("alice", "bob"):
            net.wait(f"{receiver} closing mallory's session", lambda r=receiver:
                     net.states(r)["mallory"].startswith("Idle (PfxCt)"), timeout=90)
            log = net.sh(receiver, f"cat {LOG}")
            assert re.search(rf"%MAXPFXEXCEED: No. of IPv4 Unicast prefix received from "
                             rf"{net.addr['mallory']}\(mallory\) \d+ exceed, limit 11", log)
            assert not any(p.startswith(("100.100.6", "100.100.7"))
                           for p in net.installed(receiver) - {"100.100.64.0/18"})
        net.honest_ok()
        # alice-bob was never reset.
        assert net.peers("alice")["bob"]["peerUptimeMsec"] >= uptime
        stays("alice's session with mallory closed by max-prefix",
              lambda: net.states("alice")["mallory"].startswith("Idle (PfxCt)"), 3)
    finally:
        net.conf("mallory", "router bgp 65030", "address-family ipv4 unicast",
                 "no redistribute kernel")
        flood(net, "100.100.65.0/24", "del")
        for receiver in ("alice", "bob"):
            net.vtysh(receiver, f"clear bgp {net.addr['mallory']}")
    for receiver in ("alice", "bob"):
        net.wait("mallory back", lambda r=receiver: net.states(r)["mallory"] == "Established")
    net.wait("mallory's own prefix back",
             lambda: "100.100.64.0/18" in net.installed("alice"))


# --- 5-7. the data plane ----------------------------------------------------------------

def test_a_key_not_in_the_topology_gets_no_handshake(net: Net) -> None:
    """A second WireGuard interface on mallory's machine, with a fresh key, dials the hub:
    the hub cannot even complete a handshake, so nothing it sends is forwarded."""
    key = Path(f"/tmp/wgbgp-{net.name}-stranger.key")
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(generate_private_key() + "\n")
    net.secrets.append(key.read_text().strip())
    hub_key = net.sh("vps", "wg show wg-vps public-key").strip()
    conf = (f"[Interface]\nAddress = 10.99.0.2/32\nTable = off\n"
            f"PostUp = wg set %i private-key {key}\n\n[Peer]\nPublicKey = {hub_key}\n"
            f"AllowedIPs = 10.0.0.1/32\nEndpoint = {HUB_PUBLIC}:51820\n"
            "PersistentKeepalive = 1\n")
    hub_peers = sorted(net.sh("vps", "wg show wg-vps peers").split())
    x = net.x("mallory")
    x.write_file("/etc/wireguard/wg-stranger.conf", conf, 0o600)
    try:
        x.run(["env", "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1",
               "wg-quick", "up", "wg-stranger"], timeout=60)
        # A keepalive a second: handshake attempts every 5 s; none ever succeeds.
        stays("the stranger without a handshake", lambda: net.sh(
            "mallory", "wg show wg-stranger latest-handshakes").split()[1] == "0", 6)
        transfer = net.sh("mallory", "wg show wg-stranger transfer").split()
        assert transfer[1] == "0" and int(transfer[2]) > 0  # sent, nothing came back
        # (wireguard-go lists peers in no particular order)
        assert sorted(net.sh("vps", "wg show wg-vps peers").split()) == hub_peers
    finally:
        x.run(["wg-quick", "down", "wg-stranger"], check=False, timeout=60)
        x.run(["rm", "-f", "/etc/wireguard/wg-stranger.conf"], check=False)
        key.unlink()
    net.honest_ok()


def test_no_exit_to_the_internet_unless_asked(net: Net) -> None:
    """mallory did not ask for an exit: the hub drops it. alice asked, the hub offers one:
    her traffic leaves masqueraded (the proof that the drop is the policy, not routing)."""
    drop = 'iifname "wg-vps" drop'
    before = nft_counter(hub_nft(net, "forward"), drop)
    for node in ("alice", "mallory"):
        net.sh(node, f"ip route add {INTERNET}/32 via 10.0.0.1 dev wg-vps")
    try:
        assert not net.ping("mallory", INTERNET, count=3)
        assert nft_counter(hub_nft(net, "forward"), drop) - before >= 3
        assert net.ping("alice", INTERNET)
    finally:
        for node in ("alice", "mallory"):
            net.sh(node, f"ip route del {INTERNET}/32 via 10.0.0.1 dev wg-vps", check=False)


def test_spoofed_sources_are_dropped(net: Net) -> None:
    """mallory sends with alice's address: WireGuard on the hub drops it (not in mallory's
    AllowedIPs), bob never sees it. From outside, a tunnel source is dropped by the hub's
    reverse-path rule."""
    count = "nft list table ip hostile_probe | sed -n 's/.*counter packets \\([0-9]*\\).*/\\1/p'"
    net.sh("bob", "nft add table ip hostile_probe; nft add chain ip hostile_probe in "
                  "'{ type filter hook input priority -10; }'; nft add rule ip hostile_probe "
                  "in ip saddr 100.100.1.1 icmp type echo-request counter")
    try:
        assert net.ping("alice", "100.100.2.1", source="100.100.1.1")  # control
        seen = int(net.sh("bob", count).strip())
        assert seen >= 2
        net.sh("mallory", "ip address add 100.100.1.1/32 dev lo")
        try:
            net.ping("mallory", "100.100.2.1", source="100.100.1.1", count=3)
        finally:
            net.sh("mallory", "ip address del 100.100.1.1/32 dev lo")
        stays("no spoofed packet arriving at bob",
              lambda: int(net.sh("bob", count).strip()) == seen, 1)
    finally:
        net.sh("bob", "nft delete table ip hostile_probe", check=False)
    rule = 'iifname != { "lo", "wg-vps" } fib saddr oifname "wg-vps" drop'
    before = nft_counter(hub_nft(net, "prerouting"), rule)
    inet = net.lab.netns_executor("inet")
    inet.run(["ip", "address", "add", "100.100.1.1/32", "dev", "lo"])
    try:
        inet.run(["ping", "-n", "-q", "-c", "3", "-W", "1", "-I", "100.100.1.1", HUB_PUBLIC],
                 check=False, timeout=30)
    finally:
        inet.run(["ip", "address", "del", "100.100.1.1/32", "dev", "lo"], check=False)
    assert nft_counter(hub_nft(net, "prerouting"), rule) - before >= 3
    net.honest_ok()


# --- 8. TCP-MD5 -------------------------------------------------------------------------

def test_wrong_md5_password_is_refused_the_right_one_established(net: Net) -> None:
    """alice gets a wrong password for her session with bob (through apply, as a changed
    secret would arrive): the session is refused; with the right one it comes back. Her
    session with mallory never notices."""
    topology, _ = parse(net.topology_file.read_text())
    plans = compile_topology(topology)
    secrets = read_secrets(plans.values())
    wrong_value = "wrong-" + os.urandom(6).hex()
    net.secrets.append(wrong_value)
    wrong = {r: (wrong_value if r.kind == "file" and r.name.endswith("md5-alice-bob") else v)
             for r, v in secrets.items()}
    uptime = net.peers("alice")["mallory"]["peerUptimeMsec"]
    x = net.x("alice")
    result = apply_machine(x, render_machine(plans["alice"], secrets=wrong), enable_at_boot=False)
    net.transcript.append(json.dumps(result.to_dict()))
    assert result.ok, result.summary()
    try:
        net.wait("the session with bob going down", lambda: net.states("alice")["bob"]
                 != "Established", timeout=15)
        stays("the session with the wrong password refused (two connect retries)",
              lambda: net.states("alice")["bob"] != "Established"
              and net.states("bob")["alice"] != "Established", 12)
        assert net.states("alice")["mallory"] == "Established"
    finally:
        result = apply_machine(x, render_machine(plans["alice"], secrets=secrets),
                               enable_at_boot=False)
        net.transcript.append(json.dumps(result.to_dict()))
        assert result.ok, result.summary()
    net.wait("alice-bob with the right password", lambda: net.states("alice")["bob"]
             == "Established", timeout=30)
    assert net.peers("alice")["mallory"]["peerUptimeMsec"] >= uptime
    net.wait("routes back", lambda: "100.100.2.0/24" in net.installed("alice"))
    net.honest_ok()


# --- key rotation -----------------------------------------------------------------------

def test_rotate_a_key_hub_first_short_outage_nobody_else_notices(net: Net) -> None:
    root = net.lab.machines["bob"].host_path("/etc/wgbgp/keys")
    net.secrets.append((root / "bob.key").read_text().strip())  # the old key
    before = net.topology_file.read_text()
    uptimes = {(a, b): net.peers(a)[b]["peerUptimeMsec"]
               for a, b in (("alice", "bob"), ("alice", "mallory"), ("mallory", "bob"))}
    out = wgbgp(net, "keys", "rotate", "bob", str(net.topology_file), "--lab", net.name,
                "--json")
    report = json.loads(out.stdout)
    net.secrets.append((root / "bob.key").read_text().strip())  # the new key
    assert report["ok"] and report["new_public_key"] != report["old_public_key"]
    assert report["outage_seconds"] is not None and report["outage_seconds"] < 5
    after = net.topology_file.read_text()
    diff = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True)
            if a != b]
    assert diff == [(f"    public_key: {report['old_public_key']}",
                     f"    public_key: {report['new_public_key']}")]
    assert net.sh("vps", "wg show wg-vps peers").split().count(report["new_public_key"]) == 1
    # No BGP session was reset, bob's included (the outage is far below the hold time).
    stays("every session Established", lambda: all(
        net.states(a)[b] == "Established" for a, b in uptimes), 1)
    for (a, b), up in uptimes.items():
        assert net.states(a)[b] == "Established"
        assert net.peers(a)[b]["peerUptimeMsec"] >= up, (a, b)
    assert net.ping("alice", "100.100.2.1", source="100.100.1.1")
    net.honest_ok()


# --- nothing leaks ----------------------------------------------------------------------

def test_no_secret_in_any_output_log_or_lab_file(net: Net) -> None:
    # Commands a user runs, on the host and on the machines.
    wgbgp(net, "check", str(net.topology_file), "--json")
    assert wgbgp(net, "render", str(net.topology_file), check=False).returncode == 2
    wgbgp(net, "render", str(net.topology_file), "--out", str(net.topology_file.parent / "r"))
    wgbgp(net, "lab", "test", "--name", net.name, check=False)
    wgbgp(net, "lab", "status", "--name", net.name)
    wgbgp(net, "lab", "status", "--name", net.name, "--json")
    for node in ("vps", "alice", "mallory"):
        for argv in (["wgbgp", "status"], ["wgbgp", "doctor"]):
            res = net.x(node).run([sys.executable, "-m", *argv[1:], str(net.topology_file),
                                   "--node", node], check=False, timeout=120)
            net.transcript.append(f"{node}$ {' '.join(argv)}\n{res.stdout}{res.stderr}")
        res = net.x(node).run(["wg", "show"], check=False)
        net.transcript.append(f"{node}$ wg show\n{res.stdout}{res.stderr}")
    keys = [p.read_text().strip() for p in Path(lab_dir(net.name), "machines").glob(
        "*/etc-wgbgp/keys/*.key")]
    secrets = [s for s in [*net.secrets, *keys] if s]
    assert len(secrets) >= 3 + 3 + 4 + 2

    def leaks(text: str) -> list[int]:
        return [i for i, s in enumerate(secrets) if s in text]

    for chunk in net.transcript:
        assert not leaks(chunk), f"a secret in command output:\n{chunk[:2000]}"
    # FRR's logs on every machine (debug log of updates included).
    logs = list(Path(lab_dir(net.name), "machines").glob("*/var-log-frr/*"))
    assert any(p.name == Path(LOG).name for p in logs)
    for p in logs:
        assert not leaks(p.read_text(errors="replace")), p
    # Secrets never in a process's argv.
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        assert not leaks(text), cmdline
    # The lab's files: a secret only where it must be, readable by root (and FRR) only.
    rendered = net.topology_file.parent / "r"
    allowed = re.compile(r"(etc-wgbgp/keys/[^/]+\.key|etc-wireguard/wg-vps\.conf(\.wgbgp-\w+)?"
                         r"|etc-frr/frr\.conf(\.wgbgp-\w+)?)$")
    for base in (lab_dir(net.name), rendered):
        for p in Path(base).rglob("*"):
            try:
                if not p.is_file() or p.is_symlink() or p.stat().st_size > 20_000_000:
                    continue
                found = leaks(p.read_text(errors="replace"))
            except OSError:  # namespace handles and the like
                continue
            if not found:
                continue
            rel = str(p.relative_to(base))
            assert allowed.search(rel.replace("etc/wireguard/", "etc-wireguard/")
                                  .replace("etc/frr/", "etc-frr/")), f"secret in {p}"
            assert p.stat().st_mode & 0o007 == 0, f"{p} is readable by others"
