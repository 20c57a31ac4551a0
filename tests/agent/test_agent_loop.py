"""The reconcile loop, one step at a time, against a fake machine at the process boundary
(tests/apply/fake.py answers like a Debian host). The lab tests (test_lab_agent.py) run
the same agent on real daemons."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fake import FakeMachine

from wgbgp.agent import Agent, FileSource, Options
from wgbgp.apply import apply_machine
from wgbgp.apply.agentstate import AgentState, read_agent_state
from wgbgp.transport import CommandResult

ROOT = Path(__file__).resolve().parents[2]
KEY = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
STATE = "/run/wgbgp/agent.json"


@pytest.fixture
def topology(tmp_path: Path) -> Path:
    path = tmp_path / "topology.yaml"
    shutil.copy(ROOT / "examples" / "classic.yaml", path)
    return path


def machine(name: str = "laptop") -> FakeMachine:
    m = FakeMachine(name)
    m.files[f"/etc/wgbgp/keys/{name}.key"] = (KEY + "\n", 0o600)
    return m


def agent_for(m: FakeMachine, topology: Path, tmp_path: Path) -> Agent:
    return Agent(m.name, FileSource(topology), m,
                 Options(kick=False, cache=tmp_path / "cache"), clock=lambda: 1000.0,
                 resolver=lambda host: [])


def applied(topology: Path, tmp_path: Path, name: str = "laptop") -> tuple[FakeMachine, Agent]:
    """A machine as `wgbgp apply` leaves it, and its agent (which has pulled)."""
    m = machine(name)
    a = agent_for(m, topology, tmp_path)
    assert a.pull()
    assert a.good is not None
    assert apply_machine(m, list(a.good.files)).ok
    m.log.clear()
    return m, a


def state_of(m: FakeMachine) -> AgentState:
    s = read_agent_state(m.files[STATE][0])
    assert s is not None
    return s


def test_healthy_machine_costs_one_probe_and_changes_nothing(topology, tmp_path):
    m, a = applied(topology, tmp_path)
    assert a.reconcile("period")
    assert [k for k in m.keys if k not in ("wgbgp-lock", "wgbgp-unlock", "mkdir -p")] == [
        "wgbgp-probe"]
    s = state_of(m)
    assert (s.reconciles, s.repairs, s.last_error, s.node) == (1, 0, "", "laptop")
    assert s.revision == a.good.revision and s.last_reconcile == 1000.0


def test_drift_is_repaired_with_applys_steps_and_reported(topology, tmp_path):
    m, a = applied(topology, tmp_path)
    m.down.add("wg-vps")  # `ip link set wg-vps down`
    assert a.reconcile("netlink event")
    assert "wgbgp-wg-sync" in m.keys and "wgbgp-install" not in m.keys
    s = state_of(m)
    assert s.repairs == 1 and s.last_repair == 1000.0
    assert s.last_repair_lines == ["repaired: wg-vps was down"]
    m.log.clear()
    assert a.reconcile("period")  # repaired: nothing more to do
    assert "wgbgp-wg-sync" not in m.keys


def test_a_dead_frr_is_started_again(topology, tmp_path):
    m, a = applied(topology, tmp_path)
    m.frr_running = False
    a.reconcile("period")
    assert m.frr_running and m.services[-1] == ("start", "frrinit")
    s = state_of(m)
    assert s.restarts == 1 and "repaired: FRR was not running" in s.last_repair_lines


def test_the_agent_takes_the_machines_apply_lock_around_each_round(topology, tmp_path):
    m, a = applied(topology, tmp_path)
    a.reconcile("period")
    keys = m.keys
    assert keys[0] == "wgbgp-lock" and "wgbgp-unlock" in keys
    assert keys.index("wgbgp-probe") < keys.index("wgbgp-unlock")


class Busy(FakeMachine):
    """Another apply holds the lock."""

    def answer(self, key, argv, stdin):
        if key == "wgbgp-lock":
            return CommandResult(tuple(argv), 75, "busy\t4242\twgbgp apply from desk (pid 7)"
                                 "\t2026-12-02T00:00:00Z\n", "")
        return super().answer(key, argv, stdin)


def test_a_busy_lock_defers_the_round_and_touches_nothing(topology, tmp_path):
    m = Busy("laptop")
    m.files["/etc/wgbgp/keys/laptop.key"] = (KEY + "\n", 0o600)
    a = agent_for(m, topology, tmp_path)
    assert a.reconcile("period") is False
    assert m.keys == ["wgbgp-lock"]
    assert a.state.reconciles == 0 and not a.state.last_error


def test_an_edit_that_fails_check_is_refused_and_the_last_good_keeps_running(
        topology, tmp_path):
    m, a = applied(topology, tmp_path)
    good = a.state.revision
    topology.write_text(topology.read_text().replace("asn: 65020", "asn: banana"))
    assert a.reconcile("period")
    s = state_of(m)
    assert s.revision == good and s.refused_revision and s.refused_revision != good
    assert "check failed" in s.refused_reason and "asn" in s.refused_reason
    assert "wgbgp-install" not in m.keys  # nothing of the bad revision was applied
    # Fixed again: the refusal is cleared.
    topology.write_text((ROOT / "examples" / "classic.yaml").read_text())
    a.reconcile("period")
    assert state_of(m).refused_revision == ""


def test_a_good_edit_is_applied_by_the_next_round(topology, tmp_path):
    m, a = applied(topology, tmp_path)
    topology.write_text(topology.read_text().replace("100.100.100.1/32]",
                                                     "100.100.100.1/32, 100.100.101.0/24]"))
    a.reconcile("period")
    assert "wgbgp-install" in m.keys and "wgbgp-frr-reload" in m.keys
    s = state_of(m)
    assert s.revision != "" and any(line.startswith("applied: ") for line in s.last_repair_lines)
    assert "100.100.101.0/24" in m.files["/etc/frr/frr.conf"][0]


def test_an_unreadable_source_keeps_the_last_good_and_says_so(topology, tmp_path):
    m, a = applied(topology, tmp_path)
    good = a.state.revision
    topology.unlink()
    assert a.reconcile("period")
    s = state_of(m)
    assert s.revision == good and "cannot read" in s.source_error
    m.down.add("wg-vps")  # still repairs with the last good topology
    a.reconcile("period")
    assert "wgbgp-wg-sync" in m.keys


def test_a_restarted_agent_with_a_broken_source_runs_the_kept_good_one(topology, tmp_path):
    m, a = applied(topology, tmp_path)
    good = a.state.revision
    topology.write_text("network: [")
    again = agent_for(m, topology, tmp_path)  # same cache: the good copy is on disk
    again.reconcile("start")
    assert again.state.revision == good and again.state.refused_reason


def test_no_good_topology_at_all_is_an_error_in_the_state(tmp_path):
    m = machine()
    bad = tmp_path / "t.yaml"
    bad.write_text("nodes: {}\n")
    a = agent_for(m, bad, tmp_path)
    a.reconcile("start")
    s = state_of(m)
    assert "no good topology" in s.last_error and s.refused_reason
    assert "wgbgp-probe" not in m.keys


def test_the_node_must_be_in_the_topology(topology, tmp_path):
    m = machine("stranger")
    a = agent_for(m, topology, tmp_path)
    a.reconcile("start")
    assert "stranger is not a machine of this topology" in a.state.refused_reason


def test_state_file_round_trips_and_holds_no_secret(topology, tmp_path):
    m, a = applied(topology, tmp_path)
    a.reconcile("period")
    text = m.files[STATE][0]
    assert KEY not in text
    assert AgentState.from_json(text) == state_of(m)
    assert read_agent_state("not json") is None and read_agent_state(None) is None
