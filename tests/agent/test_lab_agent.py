"""The agent on real daemons (issue 14, point 4 and 5): the classic lab brought up as
`wgbgp lab up` does, so an agent runs in every machine; each test proves a healthy start,
breaks something (or changes the source), waits for the agent with nothing typed, and
restores what it changed in `finally`. Bounds are generous (60 s); the timing is in
bench/agent_convergence.py."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

import wgbgp
from labwait import wait_until
from wgbgp.apply.agentinstall import install_agent, stop_agent
from wgbgp.apply.agentstate import AGENT_LOCK, AGENT_TOPOLOGY, AgentState, read_agent_state
from wgbgp.apply.applylock import acquire, release
from wgbgp.apply.lockfile import lock_path
from wgbgp.apply.parallel import apply_many
from wgbgp.compile import compile_topology
from wgbgp.lab.build import Lab, open_lab
from wgbgp.lab.runner import up
from wgbgp.lab.state import teardown
from wgbgp.model import parse
from wgbgp.model.examples import classic_text
from wgbgp.observe.status import collect
from wgbgp.render import render_machine
from wgbgp.transport import CommandResult, Executor

pytestmark = pytest.mark.lab

TOOLS = ("ip", "nft", "nsenter", "unshare", "wg", "wg-quick", "wireguard-go", "vtysh", "ping",
         "git", "flock", "setsid")
ANNOUNCED = {"laptop": "100.100.100.1", "friend": "100.100.100.2"}
TUNNEL = {"laptop": "10.0.0.10", "friend": "10.0.0.2"}
NAME = "vps.wgbgp.test"
# The wgbgp under test, by absolute path: machines run commands from /.
PACKAGE_ROOT = Path(wgbgp.__file__).resolve().parents[1]


@dataclass
class Classic:
    lab: Lab
    topology: Path  # the lab's copy, with its keys (what apply gave the agents)

    def x(self, machine: str) -> Executor:
        return self.lab.machines[machine].executor()

    def agent(self, machine: str) -> AgentState:
        s = read_agent_state(self.x(machine).read_file("/run/wgbgp/agent.json"))
        assert s is not None, f"no agent state on {machine}"
        return s

    def seen(self, machine: str) -> AgentState:
        """The agent's state, or an empty one while none is written yet (for polling)."""
        s = read_agent_state(self.x(machine).read_file("/run/wgbgp/agent.json"))
        return s if s is not None else AgentState(machine)

    def state(self, machine: str, peer: str) -> str:
        out = self.x(machine).run(["vtysh", "-c", "show bgp summary json"], check=False)
        try:
            return json.loads(out.stdout)["ipv4Unicast"]["peers"][TUNNEL[peer]]["state"]
        except (ValueError, KeyError):
            return "down"

    def reach(self, a: str, b: str) -> bool:
        return self.x(a).run(["ping", "-n", "-q", "-c", "1", "-W", "1", "-I", ANNOUNCED[a],
                              ANNOUNCED[b]], check=False, timeout=10).ok

    def healthy(self, timeout: float = 60) -> None:
        wait_until("laptop-friend Established at both ends",
                   lambda: self.state("laptop", "friend") == "Established"
                   and self.state("friend", "laptop") == "Established", timeout,
                   detail=lambda: (self.state("laptop", "friend"),
                                   self.state("friend", "laptop")))
        wait_until("announced addresses reachable both ways",
                   lambda: self.reach("laptop", "friend") and self.reach("friend", "laptop"),
                   timeout)


@pytest.fixture(scope="module")
def net() -> Iterator[Classic]:
    if os.geteuid() != 0:
        pytest.skip("lab tests need root")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"lab tests need: {', '.join(missing)}")
    name = "agent" + uuid.uuid4().hex[:5]
    topo, _ = parse(classic_text(), "classic.yaml")
    try:
        report = up(topo, name=name, timeout=90, agent=True)
        lab = open_lab(name)
        assert lab is not None
        assert set(report.agents) == {"vps", "laptop", "friend"}
        yield Classic(lab, report.topology_path)
    finally:
        teardown(name)


def test_an_agent_runs_in_every_machine_and_status_shows_it(net):
    net.healthy()
    for m in ("vps", "laptop", "friend"):
        wait_until(f"{m}'s agent to reconcile", lambda m=m: net.agent(m).reconciles >= 1, 60)
        a = net.agent(m)
        assert a.node == m and a.revision and not a.last_error and not a.refused_revision
        shown = collect(net.x(m)).to_json()["agent"]
        assert shown["revision"] == a.revision and shown["stale"] is False
    # Idempotent: a second install finds it running and starts nothing.
    text = net.topology.read_text()
    again = install_agent(net.x("laptop"), "laptop", text, lock_path(net.topology).read_text())
    assert again.how == "running", again.detail


def test_a_flapped_hub_interface_is_repaired_with_no_command_typed(net):
    net.healthy()
    vps = net.x("vps")
    before = net.agent("vps").repairs
    vps.run(["ip", "link", "set", "wg-vps", "down"])
    vps.run(["ip", "link", "set", "wg-vps", "up"])
    try:
        wait_until("the agent to repair the hub", lambda: net.agent("vps").repairs > before, 60)
        lines = net.agent("vps").last_repair_lines
        assert "repaired: route 100.100.100.2/32 dev wg-vps was missing" in lines, lines
        net.healthy()
    finally:
        apply_classic(net, "vps")
    net.healthy()


def test_a_killed_frr_is_started_again(net):
    """Every FRR daemon killed (watchfrr too, so FRR cannot restart itself): the agent's
    next round starts FRR and the session comes back."""
    net.healthy()
    laptop = net.x("laptop")
    before = net.agent("laptop").restarts
    try:
        laptop.run(["sh", "-c", "for f in /run/frr/watchfrr.pid /run/frr/*.pid; do "
                    "kill -9 $(cat $f) 2>/dev/null; done; true"])
        wait_until("the agent to start FRR again", lambda: net.agent("laptop").restarts > before,
                   60, detail=lambda: net.agent("laptop").last_error)
        assert "repaired: FRR was not running" in net.agent("laptop").last_repair_lines
        net.healthy()
    finally:
        apply_classic(net, "laptop")
    net.healthy()


def test_a_crashed_wireguard_go_is_started_again(net):
    net.healthy()
    friend = net.x("friend")
    before = net.agent("friend").restarts
    try:
        # Only friend's: machines share the PID space, so pick it by its network namespace.
        friend.run(["sh", "-c", "me=$(readlink /proc/self/ns/net); "
                    "for p in $(pgrep -x wireguard-go); do "
                    "[ \"$(readlink /proc/$p/ns/net)\" = \"$me\" ] && kill -9 $p; done; true"])
        wait_until("the agent to bring wg-vps up again",
                   lambda: net.agent("friend").restarts > before, 60,
                   detail=lambda: net.agent("friend").last_error)
        assert "repaired: wg-vps was missing" in net.agent("friend").last_repair_lines
        net.healthy()
    finally:
        apply_classic(net, "friend")
    net.healthy()


def test_a_hub_endpoint_given_as_a_dns_name_is_followed(net, tmp_path):
    """laptop's topology names the hub by a DNS name (a hosts file of laptop's own, bound
    over /etc/hosts in its mount namespace). The name first points elsewhere, then at the
    hub: the agent follows it, and the tunnel and session come back."""
    net.healthy()
    laptop = net.x("laptop")
    hub = hub_address(net)
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n192.0.2.1 {NAME}\n")
    original = laptop.read_file(AGENT_TOPOLOGY)
    assert original is not None
    laptop.run(["mount", "--bind", str(hosts), "/etc/hosts"])
    try:
        laptop.write_file(AGENT_TOPOLOGY, original.replace(f"{hub}:51820", f"{NAME}:51820"))
        wait_until("laptop's agent to take the named endpoint (pointing elsewhere)",
                   lambda: endpoint(laptop) == "192.0.2.1:51820", 60,
                   detail=lambda: (endpoint(laptop), net.agent("laptop").last_error))
        before = net.agent("laptop").endpoint_updates
        hosts.write_text(f"127.0.0.1 localhost\n{hub} {NAME}\n")  # the hub "moved" back
        wait_until("the agent to follow the name", lambda: endpoint(laptop) == f"{hub}:51820",
                   60, detail=lambda: endpoint(laptop))
        assert net.agent("laptop").endpoint_updates > before
        assert any(NAME in line for line in net.agent("laptop").last_repair_lines)
        net.healthy()
    finally:
        laptop.write_file(AGENT_TOPOLOGY, original)
        laptop.run(["umount", "/etc/hosts"], check=False)
        apply_classic(net, "laptop")
    net.healthy()


def test_a_git_commit_is_applied_and_a_bad_commit_refused(net, tmp_path):
    """friend's agent follows a git repository (file://, no network): a commit that adds a
    prefix to friend is applied on friend; a commit that fails check is refused, logged
    and shown, and the last good revision keeps running."""
    net.healthy()
    friend = net.x("friend")
    repo = tmp_path / "registry"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    shutil.copy(net.topology, repo / "topology.yaml")
    shutil.copy(lock_path(net.topology), repo / "topology.yaml.lock")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "the lab as it runs")
    stop_agent(friend)
    env = [f"PYTHONPATH={PACKAGE_ROOT}"]
    log = tmp_path / "agent.log"
    with log.open("w") as fh:
        proc = net.lab.machines["friend"].spawn(
            ["env", *env, sys.executable, "-m", "wgbgp", "agent", "--source", f"file://{repo}",
             "--node", "friend", "--pull-interval", "1", "--interval", "2"],
            stdout=fh, stderr=subprocess.STDOUT)
    try:
        first = git(repo, "rev-parse", "HEAD").strip()[:12]
        wait_until("friend's agent to run the first commit",
                   lambda: net.seen("friend").revision == first, 60, detail=log.read_text)
        data = yaml.safe_load((repo / "topology.yaml").read_text())
        data["nodes"]["friend"]["announce"].append("100.100.102.0/24")
        added = yaml.safe_dump(data, sort_keys=False)
        (repo / "topology.yaml").write_text(added)
        git(repo, "commit", "-q", "-am", "friend announces 100.100.102.0/24")
        second = git(repo, "rev-parse", "HEAD").strip()[:12]
        wait_until("the commit to be applied on friend",
                   lambda: "network 100.100.102.0/24" in (friend.read_file("/etc/frr/frr.conf")
                                                          or ""), 60, detail=log.read_text)
        wait_until("the agent to report it", lambda: net.seen("friend").revision == second, 60)
        data["nodes"]["friend"]["asn"] = "banana"
        (repo / "topology.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        git(repo, "commit", "-q", "-am", "a typo")
        bad = git(repo, "rev-parse", "HEAD").strip()[:12]
        wait_until("the bad commit to be refused",
                   lambda: net.seen("friend").refused_revision == bad, 60, detail=log.read_text)
        a = net.agent("friend")
        assert a.revision == second and "check failed" in a.refused_reason
        assert f"refused revision {bad}" in log.read_text()
        shown = collect(friend).to_json()["agent"]
        assert shown["refused_revision"] == bad and shown["revision"] == second
        assert "network 100.100.102.0/24" in (friend.read_file("/etc/frr/frr.conf") or "")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        restore_file_agent(net, "friend")
    net.healthy()


def test_two_applies_at_once_the_second_waits_or_refuses_and_nothing_is_half_written(net):
    net.healthy()
    laptop = net.x("laptop")
    files = classic_files(net)["laptop"]
    first = acquire(laptop, "wgbgp apply from elsewhere (pid 1)", 5)
    try:
        before = {p: laptop.read_file(p) for p in ("/etc/frr/frr.conf",
                                                   "/etc/wireguard/wg-vps.conf")}
        (refused,) = apply_many([(laptop, files)], lock_wait=1).values()
        assert not refused.ok and refused.failed_step == "lock", refused.summary()
        assert "another apply is running on laptop (wgbgp apply from elsewhere" in refused.error
        assert {p: laptop.read_file(p) for p in before} == before
    finally:
        release(laptop, first)
    (waited,) = apply_many([(laptop, files)], lock_wait=30).values()
    assert waited.ok, waited.summary()
    net.healthy()


def test_cli_apply_starts_the_agent_without_systemd_and_down_stops_it(net, tmp_path):
    """`wgbgp apply --local` and `wgbgp down --local` typed on the machine itself."""
    net.healthy()
    laptop = net.x("laptop")
    topo = Path("/tmp") / f"agent-cli-{uuid.uuid4().hex[:6]}.yaml"  # seen inside machines
    shutil.copy(net.topology, topo)
    shutil.copy(lock_path(net.topology), lock_path(topo))
    stop_agent(laptop)
    try:
        first = wgbgp_on(net, "laptop", "apply", str(topo), "--node", "laptop", "--local")
        assert first.ok, first.stdout + first.stderr
        assert "started agent (no systemd)" in first.stdout, first.stdout
        pid = int((laptop.read_file("/run/wgbgp/agent.pid") or "0").strip())
        assert pid and laptop.run(["kill", "-0", str(pid)], check=False).ok
        again = wgbgp_on(net, "laptop", "apply", str(topo), "--node", "laptop", "--local")
        assert again.ok and "no changes" in again.stdout, again.stdout
        assert "started agent" not in again.stdout  # it runs: left alone
        assert int((laptop.read_file("/run/wgbgp/agent.pid") or "0").strip()) == pid
        down = wgbgp_on(net, "laptop", "down", str(topo), "--node", "laptop", "--local")
        assert down.ok, down.stdout + down.stderr
        assert f"stopped agent (pid {pid})" in down.stdout + down.stderr or \
            not laptop.run(["kill", "-0", str(pid)], check=False).ok
        wait_until("the agent to be gone",
                   lambda: not laptop.run(["kill", "-0", str(pid)], check=False).ok, 30)
        assert laptop.read_file("/run/wgbgp/agent.pid") is None
        assert laptop.read_file(AGENT_TOPOLOGY) is None
    finally:
        topo.unlink()
        lock_path(topo).unlink(missing_ok=True)
        restore_file_agent(net, "laptop")
    net.healthy()


# --- helpers ------------------------------------------------------------------------

def wgbgp_on(net: Classic, machine: str, *args: str) -> CommandResult:
    """`wgbgp ARGS` run inside a lab machine, as its user would type it there."""
    return net.x(machine).run(["env", f"PYTHONPATH={PACKAGE_ROOT}", sys.executable, "-m",
                               "wgbgp", *args], check=False, timeout=180)


def hub_address(net: Classic) -> str:
    topo, _ = parse(net.topology.read_text(), str(net.topology))
    return topo.hubs["vps"].host


def endpoint(x: Executor) -> str:
    out = x.run(["wg", "show", "wg-vps", "endpoints"], check=False).stdout.split()
    return out[1] if len(out) > 1 else ""


def classic_files(net: Classic) -> dict[str, list]:
    topo, _ = parse(net.topology.read_text(), str(net.topology))
    return {n: render_machine(p) for n, p in compile_topology(topo).items()}


def apply_classic(net: Classic, machine: str) -> None:
    """What `wgbgp apply` would do on `machine` with the lab's topology (and its agent)."""
    (r,) = apply_many([(net.x(machine), classic_files(net)[machine])]).values()
    assert r.ok, r.summary()


def restore_file_agent(net: Classic, machine: str) -> None:
    """The agent as `wgbgp lab up` started it (following the lab's topology file)."""
    x = net.x(machine)
    stop_agent(x)
    apply_classic(net, machine)
    started = install_agent(x, machine, net.topology.read_text(),
                            lock_path(net.topology).read_text())
    assert started.how == "started", started.detail
    assert x.read_file(AGENT_LOCK) is not None


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=env).stdout
