"""The agent's parts on their own: the handshake kick, DNS endpoints, the git source, the
apply lock (a real `flock` on this host), the systemd unit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from wgbgp.agent import GitSource, Refused, SourceError
from wgbgp.agent.dns import follow, named_endpoints
from wgbgp.agent.kick import Kicker, changed, frr_sessions, parse_handshakes
from wgbgp.agent.source import accept, file_revision
from wgbgp.apply import applylock
from wgbgp.render import RenderedFile
from wgbgp.render.agent import render_agent_unit
from wgbgp.transport import CommandResult, LocalExecutor

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "wgbgp-agent.service"
REFRESH = os.environ.get("WGBGP_REFRESH_GOLDEN") == "1"
HUB = "fh0SF4vZZYgfffPEguFRVDyvfSzWRxQi7ZxQ54U8JHM="


class Scripted:
    """An executor answering from a table (argv prefix -> stdout) and logging each call."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.name = "box"
        self.answers = answers
        self.log: list[str] = []

    def run(self, argv, *, input=None, check=True, timeout=60):
        line = " ".join(argv)
        self.log.append(line)
        for prefix, out in self.answers.items():
            if line.startswith(prefix):
                return CommandResult(tuple(argv), 0, out, "")
        return CommandResult(tuple(argv), 0, "", "")

    def read_file(self, path):
        return None

    def write_file(self, path, text, mode=0o644):
        pass


def summary(states: dict[str, str]) -> str:
    return json.dumps({"ipv4Unicast": {"routerId": "10.0.0.10", "as": 65010, "peers": {
        a: {"state": s, "remoteAs": 65020} for a, s in states.items()}}})


# --- kick ---------------------------------------------------------------------------

def test_handshakes_and_what_changed():
    hs = parse_handshakes(f"wg-vps\t{HUB}\t0\nwg-vps\tOTHER\t1700000000\n")
    assert hs == {("wg-vps", HUB): 0, ("wg-vps", "OTHER"): 1700000000}
    assert changed(None, hs) == [("wg-vps", "OTHER")]  # first look: those with one
    assert changed(hs, hs) == []
    assert changed(hs, {**hs, ("wg-vps", HUB): 1700000005}) == [("wg-vps", HUB)]


def test_a_fresh_handshake_starts_only_sessions_waiting_for_connect_retry():
    x = Scripted({"wg show": f"wg-vps\t{HUB}\t1700000000\n",
                  "vtysh -c show bgp summary json": summary(
                      {"10.0.0.2": "Active", "10.0.0.3": "Established", "10.0.0.4": "Idle",
                       "10.0.0.5": "OpenSent", "10.0.0.6": "Connect"})})
    k = Kicker(x, "frr")
    lines = k.look(100.0)
    assert [ln.split()[4] for ln in lines] == ["10.0.0.2"]
    assert "vtysh -c clear bgp 10.0.0.2" in x.log
    assert not any(f"clear bgp 10.0.0.{i}" in x.log for i in (3, 4, 5, 6))
    # Still in Connect half a second later: its SYN was lost, start it again.
    x.log.clear()
    k.look(100.6)
    assert "vtysh -c clear bgp 10.0.0.6" in x.log
    assert "vtysh -c clear bgp 10.0.0.2" not in x.log  # kicked 0.6 s ago: spacing


def test_no_fresh_handshake_no_kick_and_the_window_closes():
    x = Scripted({"wg show": f"wg-vps\t{HUB}\t1700000000\n",
                  "vtysh -c show bgp summary json": summary({"10.0.0.2": "Active"})})
    k = Kicker(x, "frr", window=5.0)
    k.look(100.0)
    x.log.clear()
    assert k.look(106.0) == [] and x.log == ["wg show all latest-handshakes"]


def test_nothing_to_kick_without_bgp():
    x = Scripted({"wg show": f"wg-vps\t{HUB}\t1700000000\n"})
    assert Kicker(x, None).look(1.0) == [] and x.log == []


def test_frr_sessions_tolerate_a_daemon_that_is_not_up():
    assert frr_sessions("") == [] and frr_sessions("% bgpd is not running") == []


# --- DNS ----------------------------------------------------------------------------

def client_file(endpoint: str) -> RenderedFile:
    text = ("[Interface]\nAddress = 10.0.0.10/24\nTable = off\n\n[Peer]\n# vps\n"
            f"PublicKey = {HUB}\nAllowedIPs = 0.0.0.0/0\nEndpoint = {endpoint}\n"
            "PersistentKeepalive = 25\n")
    return RenderedFile("/etc/wireguard/wg-vps.conf", text, 0o600, "wireguard")


def test_only_named_endpoints_are_followed():
    assert named_endpoints([client_file("203.0.113.10:51820")]) == []
    (ep,) = named_endpoints([client_file("vps.example.net:51820")])
    assert (ep.interface, ep.host, ep.port, ep.label) == ("wg-vps", "vps.example.net", 51820,
                                                          "vps")


def test_a_name_that_moved_is_followed_and_one_that_did_not_is_left_alone():
    x = Scripted({"wg show wg-vps endpoints": f"{HUB}\t203.0.113.10:51820\n"})
    files = [client_file("vps.example.net:51820")]
    actions, problems = follow(x, files, lambda host: ["203.0.113.10"])
    assert actions == [] and problems == [] and not any("wg set" in ln for ln in x.log)
    actions, problems = follow(x, files, lambda host: ["198.51.100.7", "203.0.113.99"])
    assert f"wg set wg-vps peer {HUB} endpoint 198.51.100.7:51820" in x.log
    assert actions == ["wg-vps peer vps: vps.example.net now resolves to 198.51.100.7: "
                       "endpoint 203.0.113.10:51820 -> 198.51.100.7:51820"]
    _, problems = follow(x, files, lambda host: [])
    assert problems == ["wg-vps peer vps: vps.example.net does not resolve; keeping its "
                        "current endpoint"]


# --- git source ---------------------------------------------------------------------

def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=env).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed (apt-get install git)")
    r = tmp_path / "registry"
    r.mkdir()
    git(r, "init", "-q", "-b", "main")
    shutil.copy(ROOT / "examples" / "classic.yaml", r / "topology.yaml")
    git(r, "add", "topology.yaml")
    git(r, "commit", "-q", "-m", "classic")
    return r


def test_git_source_pulls_checks_and_refuses_a_bad_commit(repo, tmp_path):
    src = GitSource(f"file://{repo}", cache=tmp_path / "cache")
    text, lock, rev = src.read()
    head = git(repo, "rev-parse", "HEAD").strip()
    assert rev == head[:12] and lock is None and "laptop:" in text
    snap = accept(text, lock, rev, "laptop", "topology.yaml", src.base)
    assert {f.kind for f in snap.files} >= {"wireguard", "frr"}
    (repo / "topology.yaml").write_text(text.replace("overlay: 10.0.0.0/24", "overlay: 10.0.0"))
    git(repo, "commit", "-q", "-am", "a typo")
    text2, lock2, rev2 = src.read()
    assert rev2 != rev
    with pytest.raises(Refused) as refused:
        accept(text2, lock2, rev2, "laptop", "topology.yaml", src.base)
    assert refused.value.revision == rev2 and "overlay" in refused.value.reason


def test_unreachable_repository_is_a_source_error(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    src = GitSource(f"file://{tmp_path}/nowhere", cache=tmp_path / "cache")
    with pytest.raises(SourceError, match="nowhere"):
        src.read()


def test_file_revision_is_stable():
    assert file_revision("a") == file_revision("a") != file_revision("b")


# --- the apply lock, for real on this host --------------------------------------------

def test_second_holder_waits_then_gets_the_lock_or_is_refused_naming_the_first(tmp_path,
                                                                              monkeypatch):
    if shutil.which("flock") is None:
        pytest.skip("flock is not installed")
    monkeypatch.setattr(applylock, "LOCK", str(tmp_path / "apply.lock"))
    x = LocalExecutor("here")
    first = applylock.acquire(x, "wgbgp apply from desk (pid 1)", 5)
    try:
        with pytest.raises(applylock.ApplyLocked) as busy:
            applylock.acquire(x, "second", 0.5)
        assert "another apply is running on here (wgbgp apply from desk (pid 1) since" in str(
            busy.value)
        assert "nothing was changed" in str(busy.value)
        threading.Timer(0.5, applylock.release, (x, first)).start()
        t0 = time.monotonic()
        second = applylock.acquire(x, "second", 10)
        assert 0.3 < time.monotonic() - t0 < 10
        applylock.release(x, second)
    finally:
        applylock.release(x, first)


# --- the systemd unit ---------------------------------------------------------------

def test_agent_unit_matches_golden():
    text = render_agent_unit("laptop", ["wgbgp", "agent",
                                        "/etc/wgbgp/agent/topology.yaml", "--node", "laptop"])
    if REFRESH:
        GOLDEN.write_text(text)
    assert GOLDEN.read_text() == text, (
        "tests/golden/wgbgp-agent.service differs; if intended, refresh with "
        "WGBGP_REFRESH_GOLDEN=1 and review `git diff`")
    assert "Restart=always" in text and "ExecStart=wgbgp agent" in text


# --- what status and the exporter show ------------------------------------------------

def test_status_and_exporter_show_the_agent_and_what_it_refused():
    from wgbgp.apply.agentstate import AgentState
    from wgbgp.observe.exporter import metric_families
    from wgbgp.observe.status import Snapshot, status_from_snapshot

    state = AgentState("laptop", pid=42, source="/etc/wgbgp/agent/topology.yaml",
                       revision="91bc0d1e2f3a", last_reconcile=995.0, repairs=2,
                       last_repair=990.0, last_repair_lines=["repaired: wg-vps was down"],
                       refused_revision="3f2a00000000", refused_reason="check failed: asn")

    def snap(agent: CommandResult | None) -> Snapshot:
        outputs = {"clock": CommandResult(("date",), 0, "1000\n", "")}
        if agent is not None:
            outputs["agent"] = agent
        return Snapshot("laptop", 1000.0, outputs)

    status = status_from_snapshot(snap(CommandResult(("cat",), 0, state.to_json(), "")))
    assert status.agent == state and not status.errors
    shown = status.to_json()["agent"]
    assert shown["stale"] is False and shown["last_reconcile_age"] == 5.0
    assert shown["refused_revision"] == "3f2a00000000"
    metrics = {f.name: f for f in metric_families(status)}
    assert metrics["wgbgp_agent_up"].samples[0].value == 1
    assert metrics["wgbgp_agent_refused"].samples[0].labels["revision"] == "3f2a00000000"
    assert metrics["wgbgp_agent_repairs"].samples[0].value == 2
    # No agent on the machine: no error, and wgbgp_agent_up 0.
    none = status_from_snapshot(snap(CommandResult(("cat",), 1, "", "No such file")))
    assert none.agent is None and not none.errors and none.to_json()["agent"] is None
    assert {f.name: f for f in metric_families(none)}["wgbgp_agent_up"].samples[0].value == 0
    # An agent that stopped reconciling is stale.
    old = AgentState("laptop", last_reconcile=100.0)
    stale = status_from_snapshot(snap(CommandResult(("cat",), 0, old.to_json(), "")))
    assert stale.to_json()["agent"]["stale"] is True


def test_a_lock_held_for_a_process_that_dies_is_let_go_at_once(tmp_path, monkeypatch):
    if shutil.which("flock") is None:
        pytest.skip("flock is not installed")
    monkeypatch.setattr(applylock, "LOCK", str(tmp_path / "apply.lock"))
    x = LocalExecutor("here")
    doomed = subprocess.Popen(["sleep", "30"])
    try:
        holder = applylock.acquire(x, "wgbgp agent (here)", 5, watch=doomed.pid)
        with pytest.raises(applylock.ApplyLocked):
            applylock.acquire(x, "apply", 0.2)
    finally:
        doomed.kill()
        doomed.wait()
    got = applylock.acquire(x, "apply", 5)  # the holder noticed within a second
    applylock.release(x, got)
    applylock.release(x, holder)
