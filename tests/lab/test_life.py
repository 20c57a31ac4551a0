"""A laptop's life on real daemons (issue 14 point 6): each `wgbgp lab fault` event is
real, and the network recovers (sessions Established, announced addresses reachable, the
sessions not touching the faulted machine kept). The recoverer is the machine's agent
when one runs there, else `wgbgp apply` (`faults.recover`). Bounds are generous (60 s);
`bench/recovery_bench.py` carries the tight numbers."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from labwait import wait_until
from wgbgp.compile import Plan
from wgbgp.lab import faults, life
from wgbgp.lab.build import Lab, open_lab
from wgbgp.lab.health import health, kept, sessions, untouched, wait_healthy
from wgbgp.lab.power import BOOT_HOOK
from wgbgp.lab.runner import up
from wgbgp.lab.selftest import lab_plans
from wgbgp.lab.state import teardown
from wgbgp.model import parse
from wgbgp.transport import LocalExecutor

pytestmark = pytest.mark.lab("wireguard", "frr", "conntrack", "catatonit")

TOPOLOGY = """\
network: {name: life, overlay: 10.30.0.0/24}
hubs:
  vps: {endpoint: 203.0.113.30:51820}
nodes:
  laptop: {asn: 65201, announce: [100.100.21.1/32]}
  friend: {asn: 65202, announce: [100.100.22.1/32]}
  carol: {asn: 65203, announce: [100.100.23.0/28]}
lab:
  carriers: {cgnat: {udp_timeout: 30}, isp2: {udp_timeout: 30}, mobile: {udp_timeout: 30}}
  nodes:
    laptop: {carrier: cgnat}
    friend: {carrier: cgnat}
    carol: {carrier: isp2}
"""
BOUND = 60


@dataclass
class LifeLab:
    lab: Lab
    plans: dict[str, Plan]
    xs: dict[str, LocalExecutor]

    def healthy_start(self) -> dict:
        """The network is whole before the fault; the sessions as they are."""
        seconds = wait_healthy(self.xs, self.plans, timeout=BOUND)
        assert seconds is not None, health(self.xs, self.plans).missing
        return sessions(self.xs, self.plans)

    def recovers(self, faulted: set[str], before: dict, since: float) -> None:
        """Recovery by the agent or apply; healthy within the bound; others kept."""
        faults.recover(self.lab, sorted(faulted))
        seconds = wait_healthy(self.xs, self.plans, timeout=BOUND)
        assert seconds is not None, health(self.xs, self.plans).missing
        keys = untouched(self.plans, faulted)
        assert not kept(before, sessions(self.xs, self.plans), keys,
                        time.monotonic() - since)

    def restore(self, machines: list[str]) -> None:
        """After a failed test: whatever it left broken, apply repairs."""
        if not health(self.xs, self.plans).ok:
            faults.recover(self.lab, machines)

    def wgbgp(self, *args: str) -> str:
        """`wgbgp lab SUB --name LAB ...` (right after the command's words: `lab exec`
        takes no option after its machine)."""
        cut = 3 if args[1] == "fault" else 2
        argv = [*args[:cut], "--name", self.lab.name, *args[cut:]]
        res = subprocess.run([sys.executable, "-m", "wgbgp", *argv],
                             capture_output=True, text=True, timeout=180)
        assert res.returncode == 0, res.stdout + res.stderr
        return res.stdout


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LifeLab]:
    from conftest import unique
    name = unique("lablife")
    topology, _ = parse(TOPOLOGY, "life.yaml")
    try:
        up(topology, name=name, timeout=120)  # a loaded machine: bring-up is not under test
        lab = open_lab(name)
        assert lab is not None
        yield LifeLab(lab, lab_plans(lab), {n: m.executor() for n, m in lab.machines.items()})
    finally:
        teardown(name)


def _pgrep(lab: Lab, machine: str, name: str) -> list[int]:
    res = lab.machine(machine).executor().run(["pgrep", "-x", name], check=False)
    return [int(p) for p in res.stdout.split()]


def test_each_machine_sees_only_its_own_processes(net: LifeLab) -> None:
    listed = net.wgbgp("lab", "exec", "laptop", "--", "pgrep", "-a", "bgpd").splitlines()
    assert len(listed) == 1 and "bgpd" in listed[0], listed
    # PID 1 of every machine is its own catatonit, and pids repeat across machines.
    for machine in net.lab.machines:
        first = net.xs[machine].run(["ps", "-o", "comm=", "-p", "1"]).stdout.strip()
        assert first == "catatonit"
    assert net.lab.machine("laptop").init_pid() != net.lab.machine("friend").init_pid()


def test_kill_touches_only_that_machine(net: LifeLab) -> None:
    before = net.healthy_start()
    theirs = {m: _pgrep(net.lab, m, "bgpd") for m in ("friend", "carol", "vps")}
    (mine,) = _pgrep(net.lab, "laptop", "bgpd")
    t0 = time.monotonic()
    try:
        out = net.wgbgp("lab", "fault", "kill", "laptop", "bgpd")
        assert f"pid {mine}" in out
        # Real: that bgpd is gone (watchfrr may have started a new one already).
        assert mine not in _pgrep(net.lab, "laptop", "bgpd")
        assert {m: _pgrep(net.lab, m, "bgpd") for m in theirs} == theirs
        net.recovers({"laptop"}, before, t0)
    finally:
        net.restore(["laptop"])


def test_flap_of_the_hub_tunnel(net: LifeLab) -> None:
    before = net.healthy_start()
    t0 = time.monotonic()
    try:
        out = net.wgbgp("lab", "fault", "flap", "vps", "wg-vps")
        # Real: the routes to the clients' prefixes through the tunnel are gone.
        lost = out.split("routes lost:", 1)[1].strip().split(", ")
        assert set(lost) >= {"100.100.21.1", "100.100.22.1", "100.100.23.0/28"}
        now = net.xs["vps"].run(["ip", "-j", "route", "show", "dev", "wg-vps"]).stdout
        assert not {r["dst"] for r in json.loads(now)} & set(lost)
        net.recovers({"vps"}, before, t0)
    finally:
        net.restore(["vps"])


def _endpoints(net: LifeLab) -> dict[str, str]:
    """Client -> the endpoint the hub sees for it (its carrier's public ip:port)."""
    keys = _keys(net)
    dump = net.xs["vps"].run(["wg", "show", "wg-vps", "endpoints"]).stdout
    return {keys[k]: e for k, e in (line.split() for line in dump.splitlines()) if k in keys}


def _keys(net: LifeLab) -> dict[str, str]:
    return {net.xs[n].run(["wg", "show", "wg-vps", "public-key"]).stdout.strip(): n
            for n in ("laptop", "friend", "carol")}


def test_nat_reset_gives_new_public_ports(net: LifeLab) -> None:
    before = net.healthy_start()
    old = _endpoints(net)
    t0 = time.monotonic()
    try:
        reset = life.nat_reset(net.lab, "cgnat")
        assert reset.flushed >= 2  # laptop's and friend's mappings
        net.recovers({"laptop", "friend"}, before, t0)
        # Real: the hub now sees both cgnat clients at new ports (carol's is untouched).
        new = wait_until("the hub to see new ports for laptop and friend",
                         lambda: (e := _endpoints(net)) and all(
                             e[c] != old[c] for c in ("laptop", "friend")) and e,
                         timeout=BOUND)
        assert new["carol"] == old["carol"]
    finally:
        net.restore(["laptop", "friend"])


def test_roam_to_another_carrier(net: LifeLab) -> None:
    before = net.healthy_start()
    public = str(net.lab.plan.public_ip("laptop"))
    t0 = time.monotonic()
    try:
        out = net.wgbgp("lab", "fault", "roam", "laptop", "mobile")
        lab = open_lab(net.lab.name)  # the CLI moved it: the state says where it is now
        assert lab is not None and lab.plan.carrier_of["laptop"] == "mobile"
        moved = str(lab.plan.public_ip("laptop"))
        assert moved != public and f"{public} -> {moved}" in out
        net.lab = lab
        net.recovers({"laptop"}, before, t0)
        # Real: the hub sees the laptop at the other carrier's public address.
        assert _endpoints(net)["laptop"].startswith(moved + ":")
    finally:
        if net.lab.plan.carrier_of["laptop"] != "cgnat":
            life.roam(net.lab, "laptop", "cgnat")
        net.restore(["laptop"])
    assert net.lab.plan.carrier_of["laptop"] == "cgnat"


def test_sleep_freezes_then_resumes(net: LifeLab) -> None:
    before = net.healthy_start()
    t0 = time.monotonic()
    frozen = life.freeze(net.lab, "laptop")
    try:
        # Real: every process of the machine is stopped and its link is down.
        assert frozen.pids
        wait_until("every process of the machine stopped (or gone)",
                   lambda: all(life.stopped(p) or not Path(f"/proc/{p}").exists()
                               for p in frozen.pids), timeout=10, interval=0.1)
        assert life.stopped(net.lab.machine("laptop").init_pid() or 0)
        ns, ifname = frozen.link
        link = net.lab.netns_executor(ns).run(["ip", "-o", "link", "show", ifname]).stdout
        assert "state DOWN" in link
        time.sleep(20)  # the condition under test: time passing while the lid is shut
    finally:
        life.thaw(net.lab, frozen)
    try:
        wait_until("every process of the machine running again",
                   lambda: not any(life.stopped(p) for p in frozen.pids), timeout=10,
                   interval=0.1)
        net.recovers({"laptop"}, before, t0)
    finally:
        net.restore(["laptop"])


def test_reboot_loses_runtime_state_and_runs_the_boot_hook(net: LifeLab) -> None:
    before = net.healthy_start()
    m = net.lab.machine("laptop")
    x = net.xs["laptop"]
    old_pids = set(m.pids())
    x.write_file("/run/wgbgp-test-marker", "before the reboot\n")
    x.write_file(BOOT_HOOK, "#!/bin/sh\necho booted > /run/booted-by-hook\n", 0o755)
    t0 = time.monotonic()
    try:
        rebooted = life.reboot(net.lab, "laptop")
        # Real: the processes, the tunnel and /run are gone; the hook ran at boot.
        assert not old_pids & set(m.pids())
        assert "interface wg-vps" in rebooted.lost
        assert not x.run(["ip", "link", "show", "wg-vps"], check=False).ok
        assert x.read_file("/run/wgbgp-test-marker") is None
        assert rebooted.boot.hook_ran and x.read_file("/run/booted-by-hook") == "booted\n"
        assert _pgrep(net.lab, "laptop", "bgpd") == []
        net.recovers({"laptop"}, before, t0)
    finally:
        x.run(["rm", "-f", BOOT_HOOK], check=False)
        if m.init_pid() is None:
            faults.restart(net.lab, "laptop")
        net.restore(["laptop"])


def test_faults_refuse_bad_input(net: LifeLab) -> None:
    res = subprocess.run([sys.executable, "-m", "wgbgp", "lab", "fault", "roam", "vps",
                          "mobile", "--name", net.lab.name], capture_output=True, text=True)
    assert res.returncode == 2 and "not a client" in res.stdout + res.stderr
    with pytest.raises(life.FaultError, match="no carrier 'nowhere'"):
        life.nat_reset(net.lab, "nowhere")
    with pytest.raises(life.FaultError, match="no process named 'nosuchd'"):
        life.kill_daemon(net.lab, "laptop", "nosuchd")

