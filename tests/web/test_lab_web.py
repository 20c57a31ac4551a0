"""The live page in a real browser (Debian's headless Chromium) against a running lab,
and `wgbgp lab graph` of that lab.

The classic example with a BGP password (so there is a secret to leak), `wgbgp lab web`
started as a user would, and Chromium driven by selenium through chromium-driver:
the page shows every machine and session; a session shut down on a machine shows as down
without a reload within 10 s (a screenshot of that moment is kept); no request of the
page leaves 127.0.0.1; no response of any route holds a private key or the password.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from labwait import wait_until
from wgbgp.lab.build import Lab, open_lab
from wgbgp.lab.runner import up
from wgbgp.lab.state import teardown
from wgbgp.model import parse
from wgbgp.model.examples import classic_text

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parent.parent.parent
TOOLS = ("ip", "nft", "nsenter", "wg", "wireguard-go", "vtysh", "dot", "chromium",
         "chromedriver")
# Screenshots land here (or in $WGBGP_ARTIFACTS): test artifacts, never committed.
ARTIFACTS = Path(os.environ.get("WGBGP_ARTIFACTS", "/tmp/wgbgp-artifacts"))


@dataclass
class Served:
    lab: Lab
    url: str
    proc: subprocess.Popen[str]
    password: str

    def vtysh(self, machine: str, *lines: str) -> str:
        argv = ["vtysh"]
        for line in lines:
            argv += ["-c", line]
        return self.lab.machine(machine).executor().run(argv).stdout

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        with urllib.request.urlopen(self.url.rstrip("/") + path, timeout=10) as res:
            return res.status, dict(res.headers), res.read()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if os.geteuid() != 0:
        pytest.skip("lab tests need root")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"the live page test needs: {', '.join(missing)} "
                    "(apt-get install graphviz chromium chromium-driver)")
    pytest.importorskip("selenium")
    base = tmp_path_factory.mktemp("web")
    password = secrets.token_urlsafe(18)
    (base / "bgp.secret").write_text(password + "\n")
    (base / "bgp.secret").chmod(0o600)
    text = classic_text().replace("  # bgp_password:             # TCP-MD5",
                                  "  bgp_password: {file: ./bgp.secret}\n  # was: TCP-MD5")
    assert "bgp_password: {file: ./bgp.secret}" in text
    (base / "classic.yaml").write_text(text)
    name = f"seeitweb{os.getpid() % 10000}"
    topo, _ = parse(text, str(base / "classic.yaml"))
    proc = None
    try:
        # Under load (other labs on 2 cores) convergence has taken 55 s here, at idle 5 s.
        up(topo, name=name, timeout=180, secrets_base=base)
        lab = open_lab(name)
        assert lab is not None
        proc = subprocess.Popen(
            [sys.executable, "-m", "wgbgp", "lab", "web", "--name", name, "--listen",
             "127.0.0.1:0", "--interval", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()  # the first line of output is the URL
        assert url.startswith("http://127.0.0.1:") and url.endswith("/"), url
        served = Served(lab, url, proc, password)
        wait_until("the page's first reading with doctor's report",
                   lambda: json.loads(served.get("/api/state")[2])["doctor"] is not None,
                   timeout=60)
        yield served
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        teardown(name)


@pytest.fixture(scope="module")
def browser(served: Served) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "chromium"
    # Nothing but the page: no updates, sync or safe-browsing calls that would leave the
    # machine (and would count against "no request leaves 127.0.0.1" in the log).
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1500", "--no-proxy-server", "--no-first-run",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-default-apps"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(options=opts,
                              service=Service(shutil.which("chromedriver") or "chromedriver"))
    try:
        driver.get(served.url)
        yield driver
    finally:
        driver.quit()


# The page redraws every second: read it in one script run, never element by element (an
# element found a moment ago may have been replaced since).
def page_sessions(driver: object) -> dict[str, str]:
    """'machine|peer' -> BGP state, as the page shows it now."""
    return driver.execute_script(  # type: ignore[attr-defined, no-any-return]
        "const o = {}; for (const r of document.querySelectorAll('[data-session]'))"
        " o[r.dataset.session] = r.dataset.state; return o;")


def page_machines(driver: object) -> set[str]:
    return set(driver.execute_script(  # type: ignore[attr-defined]
        "return [...document.querySelectorAll('.machine[data-machine]')]"
        ".map(e => e.dataset.machine);"))


def page_text(driver: object, selector: str) -> str:
    return driver.execute_script(  # type: ignore[attr-defined, no-any-return]
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';",
        selector)


def health_down(driver: object) -> str:
    return driver.execute_script(  # type: ignore[attr-defined, no-any-return]
        "return document.getElementById('health').dataset.down || '';")


def graph_edge_colour(driver: object, edge_id: str) -> str | None:
    """The stroke colour of an edge of the inline graph, by its Graphviz id."""
    return driver.execute_script(  # type: ignore[attr-defined, no-any-return]
        "const p = document.querySelector(`#graph g[id=\"${arguments[0]}\"] path`);"
        " return p ? p.getAttribute('stroke') : null;", edge_id)


def test_the_page_shows_every_machine_and_session(served: Served, browser: object) -> None:
    wait_until("every machine's card", lambda: page_machines(browser) == {
        "vps", "laptop", "friend"}, timeout=20, detail=lambda: page_machines(browser))
    wait_until("both ends of the laptop-friend session Established on the page",
               lambda: page_sessions(browser) == {"laptop|friend": "Established",
                                                  "friend|laptop": "Established"},
               timeout=20, detail=lambda: page_sessions(browser))
    svg_text = page_text(browser, "#graph svg")
    for machine in ("vps", "laptop", "friend", "carrier-cgnat", "internet"):
        assert machine in svg_text
    wait_until("the graph's session edge green", lambda: graph_edge_colour(
        browser, "session-friend-laptop-vps") == "#2e7d32", timeout=10)
    wait_until("the page saying healthy", lambda: page_text(browser, "#health") == "healthy",
               timeout=20, detail=lambda: page_text(browser, "#findings"))


def test_a_fault_shows_without_reload_within_10_s(served: Served, browser: object) -> None:
    wait_until("a healthy start", lambda: set(page_sessions(browser).values()) ==
               {"Established"}, timeout=30, detail=lambda: page_sessions(browser))
    loaded = browser.execute_script("return performance.timeOrigin")  # type: ignore[attr-defined]
    laptop = served.lab.machine("laptop").executor()
    neighbour = "10.0.0.2"  # friend on vps's plane (allocated, see the lab's topology)
    assert neighbour in served.vtysh("laptop", "show bgp summary")
    try:
        laptop.run(["vtysh", "-c", "configure terminal", "-c", "router bgp 65010",
                    "-c", f"neighbor {neighbour} shutdown"])
        injected = time.monotonic()
        wait_until("the page showing laptop's session to friend down",
                   lambda: page_sessions(browser).get("laptop|friend") not in (
                       None, "Established") and health_down(browser) not in ("", "0"),
                   timeout=10, interval=0.2, detail=lambda: page_sessions(browser))
        took = time.monotonic() - injected
        wait_until("the graph's session edge red", lambda: graph_edge_colour(
            browser, "session-friend-laptop-vps") == "#c62828", timeout=5, interval=0.2)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "live-page-fault.png"
        assert browser.save_screenshot(str(shot)), "no screenshot"  # type: ignore[attr-defined]
        assert shot.stat().st_size > 10_000
        print(f"fault shown {took:.1f} s after injection; screenshot {shot}")
        # No reload: the document is the one loaded before the fault.
        assert browser.execute_script("return performance.timeOrigin") == loaded  # type: ignore[attr-defined]
    finally:
        laptop.run(["vtysh", "-c", "configure terminal", "-c", "router bgp 65010",
                    "-c", f"no neighbor {neighbour} shutdown"], check=False)
    wait_until("the session Established again on the page", lambda: set(
        page_sessions(browser).values()) == {"Established"}, timeout=60)


def test_no_request_leaves_loopback(served: Served, browser: object) -> None:
    browser.get(served.url)  # type: ignore[attr-defined]
    wait_until("a few polls", lambda: int(browser.execute_script(  # type: ignore[attr-defined]
        "return document.body.dataset.version || 0")) > 1, timeout=20)
    urls = set()
    for entry in browser.get_log("performance"):  # type: ignore[attr-defined]
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.add(message["params"]["request"]["url"])
    assert any(u.endswith("/api/state") for u in urls), urls
    outside = sorted(u for u in urls if not u.startswith(served.url) and not
                     u.startswith("data:"))
    assert not outside, f"requests that left {served.url}: {outside}"
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]  # type: ignore[attr-defined]
    assert not errors, errors  # a CSP violation or a failed load would show here


def test_no_secret_in_any_response(served: Served) -> None:
    keys = {m: served.lab.machine(m).executor().read_file(f"/etc/wgbgp/keys/{m}.key")
            for m in ("vps", "laptop", "friend")}
    assert all(k and len(k.strip()) == 44 for k in keys.values()), "lab keys not found"
    secrets_ = [k.strip() for k in keys.values() if k] + [served.password]
    status = json.loads(served.get("/api/status")[2])
    paths = ["/", "/static/app.js", "/static/app.css", "/api/state", "/api/status",
             "/api/doctor", "/graph.svg", *(f"/api/status/{m}" for m in status["machines"])]
    for path in paths:
        code, headers, body = served.get(path)
        assert code == 200, path
        assert "default-src 'none'" in headers.get("content-security-policy", ""), path
        text = body.decode()
        for s in secrets_:
            assert s not in text, f"{path} holds a secret"
    # The JSON routes are the CLI's schemas.
    assert json.loads(served.get("/api/doctor")[2])["schema"] == "wgbgp.doctor/1"
    assert json.loads(served.get("/api/status/laptop")[2])["schema"] == "wgbgp.status/1"


def test_lab_graph_draws_the_underlay(served: Served, tmp_path: Path) -> None:
    """`wgbgp lab graph`: every machine, the carrier's CG-NAT and the Internet, tunnels and
    the session coloured by their state now (home NATs: tests/graph, with_underlay)."""
    import xml.etree.ElementTree as ET

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    base = [sys.executable, "-m", "wgbgp", "lab", "graph", "--name", served.lab.name]
    res = subprocess.run([*base, "--out", str(tmp_path / "lab.svg")], capture_output=True,
                         text=True, env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    root = ET.parse(tmp_path / "lab.svg").getroot()
    ns = "{http://www.w3.org/2000/svg}"
    texts = {"".join(t.itertext()).strip() for t in root.iter(f"{ns}text")}
    assert {"vps", "laptop", "friend", "carrier-cgnat", "internet", "CG-NAT"} <= texts
    edges = {g.get("id"): g for g in root.iter(f"{ns}g") if g.get("class") == "edge"}
    colour = {i: next(p.get("stroke") for p in g.iter(f"{ns}path")) for i, g in edges.items()}
    assert colour["session-friend-laptop-vps"] == "#2e7d32"
    assert colour["tunnel-friend-vps-vps"] == colour["tunnel-laptop-vps-vps"] == "#2e7d32"
    dot = subprocess.run([*base, "--format", "dot", "--no-live"], capture_output=True,
                         text=True, env=env, timeout=60)
    assert dot.returncode == 0, dot.stderr
    drawn = subprocess.run(["dot", "-Tsvg"], input=dot.stdout, capture_output=True, text=True)
    assert drawn.returncode == 0, drawn.stderr
    assert "carrier-cgnat" in dot.stdout and "#2e7d32" not in dot.stdout  # no state asked
