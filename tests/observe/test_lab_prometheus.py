"""A real Prometheus (Debian's package) scrapes the exporter of every machine of a lab,
with the shipped alert rules loaded, and a fault injected makes the alert active.

The exporters are wgbgp's own (`registry_for`, the code behind `wgbgp exporter`), served by
prometheus_client's HTTP server on 127.0.0.1 and reading the lab machines through their
executors (the machines' namespaces are not reachable from the host's loopback). The
rules are the shipped ones with their `for:` waits cut to 2 s, so the test takes seconds,
not minutes; the expressions are exactly those shipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import start_http_server

from labwait import wait_until
from wgbgp.compile import compile_topology
from wgbgp.lab.build import Lab, open_lab
from wgbgp.lab.runner import up
from wgbgp.lab.state import teardown
from wgbgp.model import parse
from wgbgp.model.examples import classic_text
from wgbgp.observe.exporter import registry_for

pytestmark = pytest.mark.lab

RULES = Path(__file__).resolve().parent.parent.parent / "src/wgbgp/observe/monitoring/alerts.yaml"
TOOLS = ("ip", "nsenter", "wg", "wireguard-go", "vtysh", "prometheus")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prom:
    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str, **params: str) -> dict:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=5) as res:
            return json.loads(res.read())

    def value(self, expr: str) -> list[dict]:
        return self.get("/api/v1/query", query=expr)["data"]["result"]

    def alerts(self, state: str = "firing") -> list[dict]:
        return [a for a in self.get("/api/v1/alerts")["data"]["alerts"] if a["state"] == state]


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, Prom]]:
    if os.geteuid() != 0:
        pytest.skip("lab tests need root")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs: {', '.join(missing)} (apt-get install prometheus)")
    base = tmp_path_factory.mktemp("prom")
    name = f"seeitprom{os.getpid() % 10000}"
    topo, _ = parse(classic_text(), "classic.yaml")
    servers = []
    proc = None
    log = open(base / "prometheus.log", "w")  # noqa: SIM115 - Prometheus writes to it until finally
    try:
        report = up(topo, name=name, timeout=180)  # 5 s at idle, 55 s seen under load
        lab = open_lab(name)
        assert lab is not None
        plans = compile_topology(parse(report.topology_path.read_text(), "lab.yaml")[0])
        targets = []
        for machine, m in lab.machines.items():
            server, _thread = start_http_server(
                0, addr="127.0.0.1", registry=registry_for(m.executor(), plans[machine], plans))
            servers.append(server)
            targets.append(f"127.0.0.1:{server.server_port}")
        rules = re.sub(r"(?m)^(\s+for: )\S+$", r"\g<1>2s", RULES.read_text())
        (base / "alerts.yaml").write_text(rules)
        (base / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "rule_files: [alerts.yaml]\n"
            "scrape_configs:\n  - job_name: wgbgp\n"
            f"    static_configs: [{{targets: {json.dumps(targets)}}}]\n")
        port = free_port()
        proc = subprocess.Popen(
            ["prometheus", f"--config.file={base / 'prometheus.yml'}",
             f"--storage.tsdb.path={base / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=log)
        prom = Prom(f"http://127.0.0.1:{port}")

        def ready() -> bool:
            try:
                return len(prom.value('wgbgp_up == 1')) == len(targets)
            except OSError:
                return False
        wait_until("Prometheus scraping every machine", ready, timeout=60,
                   detail=lambda: (base / "prometheus.log").read_text()[-800:])
        yield lab, prom
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=20)
        for server in servers:
            server.shutdown()
        log.close()
        teardown(name)


def test_session_down_alert_becomes_active(scraped: tuple[Lab, Prom]) -> None:
    lab, prom = scraped
    wait_until("both ends of the session up in Prometheus",
               lambda: len(prom.value("wgbgp_bgp_session_up == 1")) == 2, timeout=30)
    assert not [a for a in prom.alerts() if a["labels"]["alertname"] == "WgbgpBgpSessionDown"]
    assert prom.value("wgbgp_hub_reachable == 1"), "clients' hub reachability not exported"
    laptop = lab.machine("laptop").executor()
    shut = ["vtysh", "-c", "configure terminal", "-c", "router bgp 65010",
            "-c", "neighbor 10.0.0.2 shutdown"]
    try:
        laptop.run(shut)

        def firing() -> list[dict]:
            return [a for a in prom.alerts() if a["labels"]["alertname"] ==
                    "WgbgpBgpSessionDown" and a["labels"]["machine"] == "laptop"]
        (alert,) = wait_until("WgbgpBgpSessionDown firing for laptop", firing, timeout=30)
        assert alert["labels"]["name"] == "friend"
        assert alert["annotations"]["summary"] == (
            "BGP session laptop -> friend (10.0.0.2) is down")
    finally:
        laptop.run([*shut[:-1], "no neighbor 10.0.0.2 shutdown"], check=False)
    wait_until("the alert resolved once the session is back",
               lambda: not [a for a in prom.alerts() if a["labels"]["alertname"] ==
                            "WgbgpBgpSessionDown"], timeout=60)
