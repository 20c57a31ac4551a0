"""Collection through an executor, probe planning, locating, the exporter and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from obsfix import FIXTURES, ReplayExecutor, raw, scenario, topology_text
from prometheus_client import generate_latest
from typer.testing import CliRunner

from wgbgp.cli.main import app
from wgbgp.observe import ProbeResult, ProbeSpec, collect, snapshot, status_from_snapshot
from wgbgp.observe.exporter import parse_listen, peer_names, registry_for
from wgbgp.observe.gather import gather, mtu_search, plan_probes
from wgbgp.observe.locate import locate
from wgbgp.transport import CommandResult

runner = CliRunner()


def test_collect_through_an_executor_equals_parsing_the_snapshot() -> None:
    obs, plans = scenario("healthy")
    ex = ReplayExecutor(obs.snapshots["laptop"])
    status = collect(ex, plans["laptop"])
    assert status == obs.statuses["laptop"]
    assert all(not c[0].startswith(("wg-quick", "ip link", "nft")) for c in ex.calls)
    # Read-only commands only, each once.
    assert len(ex.calls) == len({tuple(c) for c in ex.calls})


def test_hub_is_not_asked_about_bgp() -> None:
    obs, plans = scenario("healthy")
    ex = ReplayExecutor(obs.snapshots["vps"])
    status = collect(ex, plans["vps"])
    assert not any(c[0] == "vtysh" for c in ex.calls)
    assert not status.bgp_asked and not status.bgp_down and status.ip_forward


def test_private_key_never_leaves_snapshot() -> None:
    obs, _ = scenario("healthy")
    secret = "SECRETsecretSECRETsecretSECRETsecretSECRET0="
    dump = f"wg-vps\t{secret}\tPUB=\t51820\toff\n"
    ex = ReplayExecutor(obs.snapshots["vps"], overrides={
        ("wg", "show", "all", "dump"): CommandResult(("wg",), 0, dump, "")})
    snap = snapshot(ex)
    assert secret not in json.dumps(snap.to_json())
    assert secret not in json.dumps(status_from_snapshot(snap).to_json())


def test_bgpd_down_asks_vtysh_once() -> None:
    obs, plans = scenario("frr_down")
    ex = ReplayExecutor(obs.snapshots["laptop"])
    status = collect(ex, plans["laptop"])
    assert sum(c[0] == "vtysh" for c in ex.calls) == 1
    assert status.bgp_down and status.errors["bgp"] == "Exiting: failed to connect to any daemons."


def test_errors_are_recorded_not_raised() -> None:
    obs, _ = scenario("healthy")

    class Broken(ReplayExecutor):
        def run(self, argv, **kw):
            raise TimeoutError("ssh: timed out")

    status = collect(Broken(obs.snapshots["laptop"]))
    assert set(status.errors) >= {"wg", "addresses", "ip_forward", "bgp"}
    assert "timed out" in status.errors["wg"]


def test_frr_missing_and_bgpd_alone_down() -> None:
    base = raw("healthy", "laptop", "bgp_summary")
    from wgbgp.observe import Snapshot
    for out, want in ((CommandResult(base.argv, 127, "", "No such file"),
                       "vtysh: command not found"),
                      (CommandResult(base.argv, 1, "", "% Can't open configuration file "
                              "/etc/frr/vtysh.conf due to 'No such file or directory'.\n"
                              "bgpd is not running\n"), "bgpd is not running")):
        status = status_from_snapshot(Snapshot("laptop", 0, {"bgp_summary": out}))
        assert status.bgp is None and status.errors["bgp"] == want


def test_status_json_is_stable_and_names_peers() -> None:
    obs, plans = scenario("healthy")
    data = json.loads(json.dumps(obs.statuses["laptop"].to_json(peer_names(plans))))
    assert data["schema"] == "wgbgp.status/1" and data["machine"] == "laptop"
    (tunnel,) = data["tunnels"]
    assert tunnel["name"] == "wg-vps" and tunnel["mtu"] == 1420
    assert tunnel["addresses"] == ["10.0.0.10/24"]
    (hub,) = tunnel["peers"]
    assert hub["name"] == "vps" and hub["keepalive"] == 25 and hub["handshake_age"] >= 0
    assert set(hub) >= {"endpoint", "latest_handshake", "rx_bytes", "tx_bytes", "allowed_ips"}
    (n,) = data["bgp"]["neighbors"]
    assert (n["name"], n["state"], n["prefixes_received"], n["prefixes_sent"]) == (
        "friend", "Established", 1, 1)
    assert data["bgp"]["routes"][0]["prefix"] == "100.100.100.2/32"


# -- probes -------------------------------------------------------------------------------

def test_probe_plan_healthy_and_down() -> None:
    obs, plans = scenario("healthy")
    hub = plan_probes(plans, obs.statuses, "vps")
    assert [(p.purpose, p.target) for p in hub] == [("client", "10.0.0.10"),
                                                    ("client", "10.0.0.2")]
    laptop = plan_probes(plans, obs.statuses, "laptop")
    assert [(p.purpose, p.target, p.size) for p in laptop] == [
        ("hub", "10.0.0.1", None), ("mtu", "10.0.0.1", 1392), ("peer", "10.0.0.2", None),
        ("mtu", "10.0.0.2", 1392), ("announced", "100.100.100.2", None)]
    assert laptop[-1].source == "100.100.100.1"
    # A session that is down gets a TCP 179 probe when the peer's daemon could not be
    # read; an Established one, or one whose peer answered, is left alone (to the peer's
    # FRR the probe is us connecting, and it disturbs the session's recovery).
    obs, plans = scenario("ttl1")
    tcp = ("bgp", "10.0.0.2", 179)
    laptop_only = {k: v for k, v in obs.statuses.items() if k != "friend"}
    assert tcp in {(p.purpose, p.target, p.port)
                   for p in plan_probes(plans, laptop_only, "laptop")}
    assert tcp not in {(p.purpose, p.target, p.port)
                       for p in plan_probes(plans, obs.statuses, "laptop")}


def test_mtu_search_finds_the_largest_passing_packet() -> None:
    limit = 1340  # packets up to this size pass

    def run(spec: ProbeSpec) -> ProbeResult:
        ok = (spec.packet_size or 0) <= limit
        text = f"3 packets transmitted, {3 if ok else 0} received\n"
        return ProbeResult(spec, CommandResult(tuple(spec.argv()), 0 if ok else 1, text, ""))

    failed = ProbeSpec("laptop", "ping", "mtu", "10.0.0.1", "vps", size=1392, df=True)
    results = mtu_search(run, failed)
    best = max(r.spec.packet_size for r in results if r.ok)
    assert limit - 8 <= best <= limit and len(results) <= 10


def test_gather_runs_hub_probes_first() -> None:
    obs, plans = scenario("healthy")
    order: list[str] = []

    class Recording(ReplayExecutor):
        def run(self, argv, **kw):
            if argv[0] in ("ping", "timeout"):
                order.append(self.name)
                text = "3 packets transmitted, 3 received\n"
                return CommandResult(tuple(argv), 0, text, "")
            return super().run(argv, **kw)

    executors = {m: Recording(obs.snapshots[m], m) for m in plans}
    got = gather(executors, plans)
    assert order[:2] == ["vps", "vps"] and set(order[2:]) == {"laptop", "friend"}
    assert len(got.probes) == 12 and all(p.ok for p in got.probes)


# -- locate -------------------------------------------------------------------------------

def test_locate_by_key_then_address() -> None:
    obs, plans = scenario("healthy")
    for m in plans:
        assert locate(plans, obs.statuses[m]) == (m, "its WireGuard public key")
    obs, plans = scenario("healthy")
    status = obs.statuses["friend"]
    from dataclasses import replace
    no_wg = replace(status, interfaces=())
    assert locate(plans, no_wg) == ("friend", "its tunnel address")
    nothing = replace(status, interfaces=(), addresses=())
    assert locate(plans, nothing)[0] is None


# -- exporter -----------------------------------------------------------------------------

def test_exporter_metrics_from_real_outputs() -> None:
    obs, plans = scenario("healthy")
    text = generate_latest(registry_for(ReplayExecutor(obs.snapshots["laptop"]),
                                        plans["laptop"], plans)).decode()
    assert 'wgbgp_up{machine="laptop"} 1.0' in text
    assert 'wgbgp_bgp_session_up{machine="laptop",name="friend",neighbor="10.0.0.2",' \
           'remote_as="65020"} 1.0' in text
    assert 'state="Established"} 1.0' in text and 'state="Active"} 0.0' in text
    assert 'wgbgp_bgp_prefixes_received{machine="laptop",name="friend"' in text
    assert "wgbgp_wireguard_received_bytes_total{" in text
    assert 'name="vps"' in text and "wgbgp_wireguard_handshake_age_seconds{" in text
    assert 'wgbgp_wireguard_persistent_keepalive_seconds{' in text
    assert 'wgbgp_bgp_routes_installed{machine="laptop"} 1.0' in text


def test_exporter_when_bgpd_is_down() -> None:
    obs, plans = scenario("frr_down")
    text = generate_latest(registry_for(ReplayExecutor(obs.snapshots["laptop"]),
                                        plans["laptop"], plans)).decode()
    assert 'wgbgp_up{machine="laptop"} 0.0' in text
    assert 'wgbgp_source_ok{machine="laptop",source="bgp"} 0.0' in text
    assert "wgbgp_bgp_session_up" not in text


@pytest.mark.parametrize("text, want", [("127.0.0.1:9586", ("127.0.0.1", 9586)),
                                        (":9100", ("0.0.0.0", 9100)),
                                        ("[::1]:9586", ("::1", 9586))])
def test_parse_listen(text: str, want: tuple[str, int]) -> None:
    assert parse_listen(text) == want


@pytest.mark.parametrize("bad", ["9586", "host:", "h:99999", "h:x"])
def test_parse_listen_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="ADDRESS:PORT"):
        parse_listen(bad)


# -- CLI ----------------------------------------------------------------------------------

def test_cli_doctor_replays_a_saved_observation() -> None:
    res = runner.invoke(app, ["doctor", "--from", str(FIXTURES / "ttl1.json"), "--json"])
    assert res.exit_code == 1, res.output
    data = json.loads(res.stdout)
    assert data["findings"][0]["code"] == "BGP_TTL"
    res = runner.invoke(app, ["doctor", "--from", str(FIXTURES / "healthy.json")])
    assert res.exit_code == 0 and "healthy" in res.stdout


def test_cli_doctor_text_names_root_cause_and_fix() -> None:
    res = runner.invoke(app, ["doctor", "--from", str(FIXTURES / "hub_not_forwarding.json")])
    assert res.exit_code == 1
    assert "HUB_NOT_FORWARDING on vps (root cause)" in res.stdout
    assert "fix: on vps: `sysctl -w net.ipv4.ip_forward=1`" in res.stdout
    assert "PEER_UNREACHABLE" not in res.stdout  # a symptom, not reported


def test_cli_doctor_with_explicit_topology(tmp_path: Path) -> None:
    topo = tmp_path / "t.yaml"
    topo.write_text(topology_text("policy_missing"))
    res = runner.invoke(app, ["doctor", str(topo), "--from",
                              str(FIXTURES / "policy_missing.json"), "--json", "--all"])
    assert res.exit_code == 1
    assert json.loads(res.stdout)["findings"][0]["code"] == "POLICY_MISSING"


def test_cli_doctor_bad_inputs(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    res = runner.invoke(app, ["doctor", "--from", str(bad)])
    assert res.exit_code == 2 and "cannot read observation" in res.stderr
    res = runner.invoke(app, ["exporter", "--listen", "nonsense"])
    assert res.exit_code == 2 and "ADDRESS:PORT" in res.stderr
    res = runner.invoke(app, ["status", "--node", "laptop"])
    assert res.exit_code == 2 and "--node needs a topology" in res.stderr


def test_without_a_topology_a_bird_node_is_read_as_one() -> None:
    """No plan says which daemon runs: FRR does not answer, BIRD does, so BIRD is asked.
    Doctor without a topology then speaks of the sessions BIRD reports."""
    from wgbgp.observe import Observation
    from wgbgp.observe.doctor import diagnose_live
    fixtures = Path(__file__).parent / "fixtures" / "bird"
    obs, _ = scenario("bird_down")
    answers = {
        ("vtysh", "-c", "show bgp summary json"): CommandResult(
            ("vtysh",), 127, "", "sh: 1: vtysh: not found"),
        ("birdc", "show", "status"): CommandResult(
            ("birdc",), 0, (fixtures / "status.txt").read_text(), ""),
        ("birdc", "show", "protocols", "all"): CommandResult(
            ("birdc",), 0, (fixtures / "protocols_all_active.txt").read_text(), ""),
    }
    ex = ReplayExecutor(obs.snapshots["laptop"], overrides=answers)
    snap = snapshot(ex)
    assert "bgp_summary" not in snap.outputs and "bird_status" in snap.outputs
    status = status_from_snapshot(snap)
    assert status.bgp_daemon == "bird" and status.bgp is not None
    report = diagnose_live(Observation({"laptop": snap}))
    down = [c for c in report.checks if c.code == "BGP_SESSION_DOWN" and c.verdict == "fail"]
    assert down and all("birdc" in c.fix and "ebgp-multihop" not in c.fix for c in down)


def test_without_a_topology_a_machine_without_bird_asks_birdc_once() -> None:
    obs, _ = scenario("frr_down")
    ex = ReplayExecutor(obs.snapshots["laptop"])
    snap = snapshot(ex)
    assert "bgp_summary" in snap.outputs and "bird_status" not in snap.outputs
    assert sum(c[0] == "birdc" for c in ex.calls) == 1
