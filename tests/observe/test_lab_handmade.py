"""`wgbgp doctor` with no arguments, on real machines of a classic lab:

- on a wgbgp-configured hub it judges against the intent apply left there, and says the
  tunnel interface is down when it is;
- on a client set up by hand from the classic recipe (lab.handmade: wg0.conf with the
  hub's /32 as AllowedIPs, no keepalive, FRR with an inbound route-map only), it names the
  recipe's mistakes from local facts alone, and with the topology it finds wg0 by its
  keys and names the same mistakes.

Each command runs inside the machine (`wgbgp lab exec`), as a user would run it there.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from labwait import wait_until
from wgbgp.apply import apply_machine
from wgbgp.compile import Plan, compile_topology
from wgbgp.compile.intent import INTENT_PATH
from wgbgp.lab.build import Lab, open_lab
from wgbgp.lab.handmade import hand_configure, hand_undo
from wgbgp.lab.runner import lab_topology_path
from wgbgp.model import parse
from wgbgp.render import render_machine

pytestmark = pytest.mark.lab


def wgbgp(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wgbgp", *args], capture_output=True,
                          text=True, timeout=timeout)


class Classic:
    def __init__(self, name: str, topology: Path) -> None:
        self.name = name
        self.topology = topology
        topo, _ = parse(topology.read_text(), str(topology))
        self.plans: dict[str, Plan] = compile_topology(topo)
        lab = open_lab(name)
        assert lab is not None
        self.lab: Lab = lab

    def sh(self, machine: str, *argv: str) -> subprocess.CompletedProcess:
        return wgbgp("lab", "exec", "--name", self.name, machine, "--", *argv)

    def doctor(self, machine: str, *args: str) -> tuple[int, dict, str]:
        """`wgbgp doctor --json ARGS` inside `machine`: (exit code, report, stderr)."""
        proc = self.sh(machine, sys.executable, "-m", "wgbgp", "doctor", "--json", *args)
        assert proc.returncode in (0, 1), proc.stderr
        return proc.returncode, json.loads(proc.stdout), proc.stderr

    def reapply(self, machine: str) -> None:
        """Put wgbgp's configuration back on `machine` (apply's own code)."""
        x = self.lab.machine(machine).executor()
        result = apply_machine(x, render_machine(self.plans[machine], plans=self.plans),
                               enable_at_boot=False)
        assert result.ok, result.error


@pytest.fixture(scope="module")
def classic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Classic]:
    if shutil.which("wg-quick") is None or shutil.which("vtysh") is None:
        pytest.skip("needs wireguard-tools and FRR")
    import os
    if os.geteuid() != 0:
        pytest.skip("lab tests need root")
    name = f"anysetup{os.getpid() % 100000}"
    try:
        # No agent: the tests break the machines on purpose, and an agent would repair them.
        up = wgbgp("lab", "up", "--name", name, "--no-agent")
        assert up.returncode == 0, up.stderr
        # Machines see the host's /tmp, not its /run: the topology goes where they look.
        topology = tmp_path_factory.mktemp("anysetup") / "topology.yaml"
        topology.write_text(lab_topology_path(name).read_text())
        yield Classic(name, topology)
    finally:
        wgbgp("lab", "down", "--name", name, timeout=120)


def codes(report: dict) -> list[str]:
    return [f["code"] for f in report["findings"]]


def healthy_with_intent(classic: Classic, machine: str) -> dict | None:
    rc, report, err = classic.doctor(machine)
    return report if rc == 0 and "judged against the plan wgbgp apply left" in err else None


def test_hub_doctor_without_arguments_sees_its_interface_down(classic: Classic) -> None:
    start = wait_until("vps healthy against its intent",
                       lambda: healthy_with_intent(classic, "vps"), timeout=60)
    assert start["machines"] == ["vps"] and len(start["checks"]) > 2
    assert classic.sh("vps", "test", "-f", INTENT_PATH).returncode == 0
    try:
        assert classic.sh("vps", "ip", "link", "set", "wg-vps", "down").returncode == 0
        rc, report, _ = classic.doctor("vps")
        assert rc == 1 and not report["healthy"]
        root = report["findings"][0]
        assert (root["code"], root["machine"]) == ("WG_INTERFACE_DOWN", "vps"), codes(report)
        assert "wg-vps" in root["message"]
        status = classic.sh("vps", sys.executable, "-m", "wgbgp", "status", "--json")
        assert json.loads(status.stdout)["tunnels"][0]["up"] is False
        # --no-intent: the live facts alone say it too.
        rc, live, _ = classic.doctor("vps", "--no-intent")
        assert rc == 1 and codes(live)[:1] == ["WG_INTERFACE_DOWN"]
    finally:
        classic.reapply("vps")
    wait_until("vps healthy again", lambda: healthy_with_intent(classic, "vps"), timeout=60)


def test_hand_made_client_with_and_without_the_topology(classic: Classic) -> None:
    wait_until("friend healthy against its intent",
               lambda: healthy_with_intent(classic, "friend"), timeout=90)
    x = classic.lab.machine("friend").executor()
    try:
        hand_configure(x, classic.plans, "friend")
        # `wgbgp down` took the intent away with the rest.
        assert classic.sh("friend", "test", "-e", INTENT_PATH).returncode == 1
        assert classic.sh("friend", "wg", "show", "wg0").returncode == 0

        def live() -> dict | None:
            _rc, report, err = classic.doctor("friend")
            assert "judged against the plan" not in err
            return report if "POLICY_MISSING" in codes(report) else None  # bgpd is up
        report = wait_until("bgpd up with the hand-made frr.conf", live, timeout=60)
        assert not report["healthy"]
        assert codes(report)[0] == "NEIGHBOR_OUTSIDE_ALLOWEDIPS", codes(report)
        assert {"NEIGHBOR_OUTSIDE_ALLOWEDIPS", "BGP_TTL", "POLICY_MISSING",
                "PREFIX_NOT_ORIGINATED", "WG_NO_KEEPALIVE"} <= set(codes(report))
        fixes = {f["code"]: f["fix"] for f in report["findings"]}
        hub_key = next(p.public_key for p in classic.plans["friend"].tunnels[0].peers)
        assert f"wg set wg0 peer {hub_key} allowed-ips 10.0.0.0/24" in \
            fixes["NEIGHBOR_OUTSIDE_ALLOWEDIPS"]
        assert "persistent-keepalive 25" in fixes["WG_NO_KEEPALIVE"]
        laptop = str(classic.plans["friend"].bgp.sessions[0].peer_address)  # type: ignore[union-attr]
        assert f"neighbor {laptop} ebgp-multihop 2" in fixes["BGP_TTL"]
        assert f"neighbor {laptop} route-map OUT out" in fixes["POLICY_MISSING"]
        assert "100.100.102.0/24" in fixes["PREFIX_NOT_ORIGINATED"]

        rc, topo, err = classic.doctor("friend", str(classic.topology))
        assert rc == 1 and "this is friend" in err
        assert codes(topo)[0] == "ALLOWEDIPS_NARROW", codes(topo)
        assert "WG_INTERFACE_MISSING" not in codes(topo)
        text = json.dumps(topo["findings"])
        assert "wg-vps is not up" not in text and "wg set wg0 peer" in text
        assert {"BGP_TTL", "POLICY_MISSING", "PREFIX_NOT_ORIGINATED",
                "WG_NO_KEEPALIVE"} <= set(codes(topo))
    finally:
        hand_undo(x)
        classic.reapply("friend")
    wait_until("friend healthy again", lambda: healthy_with_intent(classic, "friend"),
               timeout=90)
