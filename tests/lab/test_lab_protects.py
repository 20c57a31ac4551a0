"""A node that announces its hub's endpoint prefix is refused before anything happens, on a
running network: `wgbgp lab up --bare`, `wgbgp apply --all` over real SSH (wireguard-go,
FRR, sshd in every machine), then the same topology with laptop announcing the /24 that
holds the hub's public address. `check` and `apply` both exit 2 naming the loop; no
file, WireGuard interface or FRR running config changes on any machine (compared before
and after, file mtimes included); every session stays Established with the same uptime,
and `lab test` still passes."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess
import sys
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest
import yaml

from labwait import stays, wait_until

pytestmark = pytest.mark.lab

# Everything wgbgp writes on a machine lives under these (render/files.py).
CONFIG_DIRS = ("/etc/wireguard", "/etc/frr", "/etc/wgbgp", "/etc/sysctl.d")


def wgbgp(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "wgbgp", *args], capture_output=True,
                          text=True, timeout=240)
    if ok:
        assert proc.returncode == 0, f"wgbgp {' '.join(args)}\n{proc.stdout}\n{proc.stderr}"
    return proc


def machine_executor(lab: str, machine: str):
    """The executor apply and observe use for a lab machine."""
    from wgbgp.lab.build import open_lab  # the lab's modules need root: imported here

    opened = open_lab(lab)
    assert opened is not None, f"lab {lab} is not running"
    return opened.machines[machine].executor()


def on(lab: str, machine: str, *command: str) -> str:
    """A command's stdout inside a lab machine."""
    return machine_executor(lab, machine).run(list(command)).stdout


def digest(text: str) -> str:
    # `wg showconf` holds the private key: compare digests, never print the text.
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def configured(showconf: str, hub: bool) -> str:
    """`wg showconf` as apply sets it, without what the hub learns rather than is given:
    its clients' endpoints, behind CG-NAT, roam (a NAT mapping renewed on a loaded machine
    may move to another port), and in a fixed peer order."""
    lines = showconf.splitlines(keepends=True)
    if hub:
        lines = [line for line in lines if not line.startswith("Endpoint = ")]
    # wireguard-go keeps its peers in a Go map, and lists them in no fixed order: compare
    # the [Interface] block and the set of [Peer] blocks.
    blocks = "".join(lines).split("\n[Peer]")
    return blocks[0] + "".join(sorted("\n[Peer]" + b for b in blocks[1:]))


def machine_state(lab: str, machine: str, hub: bool) -> dict[str, object]:
    """What apply could change on a machine: every config file (mode, mtime, content's
    digest), each WireGuard interface as `wg showconf` prints it, FRR's running config."""
    # (A directory a machine does not have is no error: the mesh hub has no /etc/frr.)
    listing = on(lab, machine, "sh", "-c", "find " + " ".join(CONFIG_DIRS) +
                 r" -type f -printf '%p %m %T@\n' 2>/dev/null; true")
    files = {line: digest(on(lab, machine, "cat", line.split()[0]))
             for line in sorted(listing.splitlines())}
    interfaces = on(lab, machine, "wg", "show", "interfaces").split()
    frr = machine_executor(lab, machine).run(["vtysh", "-c", "show running-config"],
                                             check=False)
    return {
        "files": files,
        "wg": {i: digest(configured(on(lab, machine, "wg", "showconf", i), hub))
               for i in interfaces},
        # The mesh hub runs no FRR.
        "frr": digest(frr.stdout) if frr.returncode == 0 else None,
    }


def changes(before: dict, after: dict) -> list[str]:
    """What differs, by name only (no file content, no key)."""
    out = [f"file {k}: {'gone' if k not in after['files'] else 'new'}"
           for k in before["files"].keys() ^ after["files"].keys()]
    out += [f"file {k.split()[0]}: content" for k in before["files"].keys() & after["files"].keys()
            if before["files"][k] != after["files"][k]]
    out += [f"wg {i}" for i in before["wg"].keys() | after["wg"].keys()
            if before["wg"].get(i) != after["wg"].get(i)]
    out += ["FRR running config"] if before["frr"] != after["frr"] else []
    return out


def sessions(lab: str, machine: str) -> dict[str, tuple[str, int, int, int]]:
    """Each BGP neighbour: (state, established since (epoch), connections established,
    connections dropped)."""
    summary = json.loads(on(lab, machine, "vtysh", "-c", "show bgp summary json"))
    peers = summary.get("ipv4Unicast", {}).get("peers", {})
    return {a: (p.get("state"), p.get("peerUptimeEstablishedEpoch", 0),
                p.get("connectionsEstablished", 0), p.get("connectionsDropped", 0))
            for a, p in peers.items()}


def same_sessions(before: dict, now: dict) -> bool:
    """The same sessions, all Established, none re-established (FRR derives the epoch
    from the uptime, so it may move by a second between reads; the counters are exact)."""
    return before.keys() == now.keys() and all(
        now[a][0] == "Established" and abs(now[a][1] - before[a][1]) <= 1
        and now[a][2:] == before[a][2:] for a in before)


@pytest.fixture
def bare_network(daemons_required, unique_name):
    """A bare lab configured by `wgbgp apply --all` over SSH, converged."""
    name = unique_name("filescale")
    try:
        printed = wgbgp("lab", "up", "--bare", "--name", name).stdout
        command = re.search(r"^\s*wgbgp (apply .*)$", printed, re.M)
        assert command, printed
        # No agent: its reconciles would be changes this test cannot tell from apply's.
        argv = [*shlex.split(command.group(1)), "--no-agent"]
        applied = json.loads(wgbgp(*argv, "--json").stdout)
        assert applied["ok"], applied
        report = json.loads(wgbgp("lab", "test", "--name", name, "--json").stdout)
        assert report["ok"] and report["waited"]["converged"], report
        yield name, Path(argv[1]), argv[2:]
    finally:
        subprocess.run([sys.executable, "-m", "wgbgp", "lab", "down", "--name", name],
                       capture_output=True, timeout=60)


def test_announcing_the_hubs_endpoint_is_refused_and_touches_nothing(bare_network, tmp_path):
    name, topology_path, apply_options = bare_network
    good = yaml.safe_load(topology_path.read_text())
    machines = [*good["hubs"], *good["nodes"]]
    clients = list(good["nodes"])
    hub, spec = next(iter(good["hubs"].items()))
    endpoint = ip_address(spec["endpoint"].rsplit(":", 1)[0].strip("[]"))
    covering = ip_network(f"{endpoint}/24", strict=False)

    # A healthy start: every client's sessions Established, and a baseline of everything.
    for c in clients:
        wait_until(f"{c}: sessions Established",
                   lambda c=c: (s := sessions(name, c)) and all(
                       v[0] == "Established" for v in s.values()), 60)
    before = {m: machine_state(name, m, m in good["hubs"]) for m in machines}
    up = {c: sessions(name, c) for c in clients}
    assert all(before[c]["frr"] for c in clients) and all(before[m]["wg"] for m in machines)
    assert all(any("/etc/wireguard/" in f for f in before[m]["files"]) for m in machines)

    bad = yaml.safe_load(topology_path.read_text())
    bad["nodes"][clients[0]].setdefault("announce", []).append(str(covering))
    work = tmp_path / "bad"
    work.mkdir()
    bad_path = work / "friends.yaml"
    bad_path.write_text(yaml.safe_dump(bad, sort_keys=False))
    loop = f"{covering} covers {endpoint}, hub {hub}'s endpoint"

    checked = wgbgp("check", str(bad_path), ok=False)
    assert checked.returncode == 2, checked.stdout + checked.stderr
    assert loop in checked.stderr and "fix: announce prefixes that leave" in checked.stderr

    applied = wgbgp("apply", str(bad_path), *apply_options, "--json", ok=False)
    assert applied.returncode == 2, applied.stdout + applied.stderr
    assert loop in applied.stderr
    refused = json.loads(applied.stdout)
    assert refused["ok"] is False and any(loop in e["message"] for e in refused["errors"])
    assert "machines" not in refused  # no machine was contacted
    # Nothing written here either: no address lock beside the refused topology.
    assert [p.name for p in work.iterdir()] == ["friends.yaml"]

    # Nothing changed on any machine, and the network runs on, untouched.
    after = {m: machine_state(name, m, m in good["hubs"]) for m in machines}
    for m in machines:
        assert after[m] == before[m], f"{m} changed after a refused apply: " \
            f"{changes(before[m], after[m])}"
    for c in clients:
        stays(f"{c}: the same sessions, Established, never reset",
              lambda c=c: same_sessions(up[c], sessions(name, c)), 3,
              detail=lambda c=c: (up[c], sessions(name, c)))
    report = json.loads(wgbgp("lab", "test", "--name", name, "--json").stdout)
    assert report["ok"], report
