"""The shipped Grafana dashboard and Prometheus alert rules, against the real exporter.

Rules: `promtool check rules`, and `promtool test rules` with recorded series in the
exporter's names (tests/observe/monitoring/alerts-test.yaml); a rule broken on purpose
makes that test fail. Dashboard: its structure, and every metric any expression names
(rules too) is one the exporter really serves.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from wgbgp.compile import compile_topology
from wgbgp.model import parse
from wgbgp.observe.exporter import (
    max_prefix_tripped,
    metric_families,
    peer_names,
    route_paths,
)
from wgbgp.observe.frr import BgpNeighbor, BgpStatus, Route
from wgbgp.observe.status import MachineStatus
from wgbgp.observe.wireguard import WgInterface, WgPeer

ROOT = Path(__file__).resolve().parent.parent.parent
MONITORING = ROOT / "src" / "wgbgp" / "observe" / "monitoring"
RULES = MONITORING / "alerts.yaml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
RULES_TEST = Path(__file__).parent / "monitoring" / "alerts-test.yaml"
METRIC = re.compile(r"\bwgbgp_[a-z_]+\b")
NOW = 1_800_000_000

needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None,
                                    reason="promtool not installed (apt-get install prometheus)")

TWO_HUBS = (ROOT / "examples" / "two-hubs.yaml").read_text()


def laptop_status() -> tuple[MachineStatus, dict, frozenset[str], object]:
    """Client `home` of the two-hubs example, as observed: north alive, south stale, one
    route through the hub and one over a direct WireGuard peer (ben)."""
    topo, _ = parse(TWO_HUBS, "two-hubs.yaml")
    plans = compile_topology(topo)
    names = peer_names(plans)
    key = {n: k for k, n in names.items() if "." not in k and ":" not in k}  # not addresses
    ana = str(plans["ana"].tunnels[0].address.ip)  # type: ignore[union-attr]
    ben = str(plans["ben"].tunnels[0].address.ip)  # type: ignore[union-attr]
    north = WgInterface("wg-north", None, None, None, (
        WgPeer(key["north"], "203.0.113.30:51820", ("0.0.0.0/0",), NOW - 30, 10, 20, 25),
        WgPeer(key["ben"], "198.51.100.9:40000", (f"{ben}/32", "100.102.3.1/32"), NOW - 10,
               5, 5, 25)))
    south = WgInterface("wg-south", None, None, None, (
        WgPeer(key["south"], "203.0.113.31:51820", ("0.0.0.0/0",), NOW - 900, 1, 1, 25),))
    bgp = BgpStatus("10.60.0.10", 65301, (
        BgpNeighbor(ana, "Established", 65302, established_for=60.0, prefixes_received=1,
                    prefixes_sent=1),
        BgpNeighbor(ben, "Idle (PfxCt)", 65303, last_reset="Reached received prefix count"),
    ), (), (Route("100.102.2.1/32", "bgp", True, True, (f"{ana} via wg-north",)),
            Route("100.102.3.1/32", "bgp", True, True, (f"{ben} via wg-north",))))
    status = MachineStatus("home", NOW, (north, south), bgp=bgp)
    hubs = frozenset(n for n, p in plans.items() if p.role == "hub")
    return status, names, hubs, plans["home"]


def exported() -> dict[str, str]:
    """Every metric the exporter serves (sample names, as Prometheus sees them) -> type."""
    status, names, hubs, plan = laptop_status()

    class Once(Collector):
        def collect(self):  # type: ignore[no-untyped-def]
            yield from metric_families(status, names, plan, hubs)  # type: ignore[arg-type]

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Once())
    text = generate_latest(registry).decode()
    kinds = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.M))
    # The names of the samples, as Prometheus stores them (counters with _total).
    samples = set(re.findall(r"^(wgbgp_[a-z_]+)[{ ]", text, flags=re.M))
    return {n: kinds.get(n, kinds.get(n.removesuffix("_total"), "")) for n in samples}


def test_new_exporter_metrics_say_what_they_measure() -> None:
    status, names, hubs, plan = laptop_status()
    families = {f.name: f for f in metric_families(status, names, plan, hubs)}  # type: ignore[arg-type]
    reach = {s.labels["hub"]: s.value for s in families["wgbgp_hub_reachable"].samples}
    assert reach == {"north": 1, "south": 0}
    tripped = {s.labels["name"]: s.value
               for s in families["wgbgp_bgp_max_prefix_tripped"].samples}
    assert tripped == {"ana": 0, "ben": 1}
    direct = {(s.labels["prefix"], s.labels["name"]): s.value
              for s in families["wgbgp_route_direct"].samples}
    # ana's route goes to the hub's peer (0.0.0.0/0); ben's to ben's own peer (a /32).
    assert direct == {("100.102.2.1/32", "ana"): 0, ("100.102.3.1/32", "ben"): 1}


def test_route_paths_need_the_topology() -> None:
    status, names, _hubs, _plan = laptop_status()
    assert route_paths(status, names, frozenset()) == []


@pytest.mark.parametrize(("state", "reset", "notification", "tripped"), [
    ("Idle (PfxCt)", None, None, True),
    ("Idle", "Reached received prefix count", None, True),
    ("Active", None, "Cease/Maximum Number of Prefixes Reached", True),
    ("Idle", "Admin. shutdown", None, False),
    ("Established", "Reached received prefix count", None, False),  # recovered since
])
def test_max_prefix_tripped(state: str, reset: str | None, notification: str | None,
                            tripped: bool) -> None:
    n = BgpNeighbor("10.0.0.2", state, last_reset=reset, last_notification=notification)
    assert max_prefix_tripped(n) is tripped


def _expressions() -> list[tuple[str, str]]:
    """(where, PromQL) for every rule and every dashboard target."""
    rules = yaml.safe_load(RULES.read_text())
    found = [(f"rule {r['alert']}", r["expr"]) for g in rules["groups"] for r in g["rules"]]
    dash = json.loads(DASHBOARD.read_text())
    found += [(f"panel {p['title']!r}", t["expr"]) for p in dash["panels"]
              for t in p["targets"]]
    found += [("variable machine", v["definition"]) for v in dash["templating"]["list"]
              if v.get("definition")]
    return found


def test_every_metric_named_is_exported() -> None:
    served = exported()
    assert "wgbgp_wireguard_received_bytes_total" in served  # counters as Prometheus names
    missing = {(where, m) for where, expr in _expressions() for m in METRIC.findall(expr)
               if m not in served}
    assert not missing, f"metrics the exporter does not serve: {sorted(missing)}"
    # And the other way: every metric the exporter serves is on the dashboard.
    on_dashboard = {m for where, e in _expressions() if where.startswith("panel")
                    for m in METRIC.findall(e)}
    assert set(served) - on_dashboard <= {"wgbgp_bgp_session_state",
                                          "wgbgp_bgp_prefixes_sent",
                                          "wgbgp_wireguard_latest_handshake_seconds",
                                          "wgbgp_wireguard_persistent_keepalive_seconds"}


def test_dashboard_structure() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and dash["title"] and isinstance(dash["schemaVersion"], int)
    variables = {v["name"] for v in dash["templating"]["list"]}
    assert variables == {"datasource", "machine"}
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for p in dash["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        assert p["targets"] and all(t["expr"] and t["refId"] for t in p["targets"])
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = p["title"]
        for t in p["targets"]:
            assert set(re.findall(r"\$(\w+)", t["expr"])) <= variables, t["expr"]


@needs_promtool
def test_rules_pass_promtool_check() -> None:
    res = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS: 8 rules found" in res.stdout


@needs_promtool
def test_alerts_fire_on_recorded_series() -> None:
    res = subprocess.run(["promtool", "test", "rules", str(RULES_TEST)], capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stdout + res.stderr


@needs_promtool
def test_a_broken_rule_fails_the_recorded_series(tmp_path: Path) -> None:
    """The rules test can fail: a session-down rule that waits too long misses its alert."""
    rules = tmp_path / "src" / "wgbgp" / "observe" / "monitoring"
    rules.mkdir(parents=True)
    (rules / "alerts.yaml").write_text(RULES.read_text().replace(
        "expr: wgbgp_bgp_session_up == 0\n        for: 1m",
        "expr: wgbgp_bgp_session_up == 0\n        for: 10m"))
    test = tmp_path / "tests" / "observe" / "monitoring"
    test.mkdir(parents=True)
    (test / "alerts-test.yaml").write_text(RULES_TEST.read_text())
    res = subprocess.run(["promtool", "test", "rules", str(test / "alerts-test.yaml")],
                         capture_output=True, text=True)
    assert res.returncode != 0
    assert "WgbgpBgpSessionDown" in res.stdout + res.stderr
