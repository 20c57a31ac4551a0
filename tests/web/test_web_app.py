"""The live page's server without a lab: a real uvicorn on 127.0.0.1 over a reading made
from saved status JSON, its routes, headers and token; the CLI's refusal off loopback.
(In a real browser against a lab: test_lab_web.py.)"""

from __future__ import annotations

import json
import re
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from typer.testing import CliRunner

from wgbgp.cli.main import app as cli
from wgbgp.compile import compile_topology
from wgbgp.graph import with_status
from wgbgp.model import parse
from wgbgp.web.app import ListenError, check_listen, create_app, is_loopback
from wgbgp.web.collect import Reading, Source
from wgbgp.web.serve import bind, url_of
from wgbgp.web.watch import Latest, Watcher

ROOT = Path(__file__).resolve().parent.parent.parent
STATUS = {
    "laptop": {"schema": "wgbgp.status/1", "machine": "laptop", "time": 1.0, "errors": {},
               "ip_forward": False,
               "tunnels": [{"name": "wg-vps", "peers": [
                   {"name": "vps", "public_key": "K", "handshake_age": 20, "rx_bytes": 1,
                    "tx_bytes": 2, "endpoint": "203.0.113.10:51820"}]}],
               "bgp": {"neighbors": [{"name": "friend", "address": "10.0.0.2",
                                      "state": "Established"}], "routes": []}},
}


class Fixed(Watcher):
    """A watcher that never reads a machine: its reading is set by the test."""

    def start(self) -> None:  # no loops
        pass


def source() -> Source:
    topo, _ = parse((ROOT / "examples" / "classic.yaml").read_text(), "classic.yaml")
    return Source("friends", {}, compile_topology(topo), "mesh")


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[tuple[str, Fixed]]:
    token = getattr(request, "param", None)
    src = source()
    watcher = Fixed(src)
    graph = with_status(src.graph(), STATUS)
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><text>laptop</text></svg>'
    watcher._latest = Latest(Reading(2.0, STATUS, None, graph, 0.1), svg, 1)
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(watcher, token), log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield url_of(sock), watcher
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


ROUTES = ["", "static/app.js", "static/app.css", "api/state", "api/status",
          "api/status/laptop", "graph.svg"]


def test_every_route_serves_with_a_strict_policy(served: tuple[str, Fixed]) -> None:
    url, _ = served
    for route in ROUTES:
        code, headers, body = get(url + route)
        assert code == 200, route
        assert headers["content-security-policy"].startswith("default-src 'none'")
        assert headers["x-content-type-options"] == "nosniff"
        assert body
    page = get(url)[2].decode()
    # Nothing from elsewhere: every src/href is our own path (or the empty data: icon).
    refs = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert refs and all(r.startswith("/static/") or r == "data:," for r in refs), refs


def test_json_routes_are_the_cli_schemas(served: tuple[str, Fixed]) -> None:
    url, watcher = served
    assert json.loads(get(url + "api/status/laptop")[2]) == STATUS["laptop"]
    assert json.loads(get(url + "api/status")[2]) == {"machines": STATUS}
    code, _, body = get(url + "api/status/nobody")
    assert code == 404 and "laptop" in json.loads(body)["fix"]
    assert get(url + "api/doctor")[0] == 503  # not run yet
    state = json.loads(get(url + "api/state")[2])
    assert state["machines_expected"] == ["vps", "laptop", "friend"]
    assert {(s["a"], s["b"], s["state"]) for s in state["sessions"]} >= {
        ("laptop", "friend", "via-hub"), ("laptop", "vps", "up")}
    report = {"schema": "wgbgp.doctor/1", "healthy": True, "findings": [], "checks": []}
    watcher._latest = Latest(Reading(3.0, STATUS, report, with_status(
        watcher.source.graph(), STATUS)), b"<svg/>", 2)
    assert json.loads(get(url + "api/doctor")[2]) == report
    assert get(url + "static/other.js")[0] == 404


@pytest.mark.parametrize("served", ["s3cret-token"], indirect=True)
def test_a_token_guards_every_route(served: tuple[str, Fixed]) -> None:
    url, _ = served
    for route in ROUTES:
        code, headers, body = get(url + route)
        assert code == 401, route
        assert "s3cret-token" not in body.decode()
        assert headers["content-security-policy"]
    assert get(url + "api/state?token=wrong")[0] == 401
    code, headers, _ = get(url + "api/state?token=s3cret-token")
    assert code == 303 and "token" not in headers["location"]
    cookie = headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert get(url + "api/state", {"cookie": cookie.split(";")[0]})[0] == 200
    assert get(url + "api/state", {"authorization": "Bearer s3cret-token"})[0] == 200
    assert get(url + "api/state", {"authorization": "Bearer nope"})[0] == 401


def test_loopback_only_without_a_token() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1")
    check_listen("127.0.0.1", None)
    check_listen("0.0.0.0", "t")
    with pytest.raises(ListenError, match="token"):
        check_listen("0.0.0.0", None)


def test_cli_refuses_off_loopback_without_a_token(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WGBGP_WEB_TOKEN", raising=False)
    topology = tmp_path / "classic.yaml"
    shutil.copy(ROOT / "examples" / "classic.yaml", topology)
    result = CliRunner().invoke(cli, ["web", str(topology), "--listen", "0.0.0.0:0"])
    assert result.exit_code == 2
    assert "token" in result.output and "127.0.0.1" in result.output
    (tmp_path / "empty").write_text("")
    result = CliRunner().invoke(cli, ["web", str(topology), "--listen", "0.0.0.0:0",
                                      "--token-file", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "empty" in result.output
    result = CliRunner().invoke(cli, ["web", str(topology), "--listen", "nowhere"])
    assert result.exit_code == 2 and "ADDRESS:PORT" in result.output


def test_bind_reports_the_real_port() -> None:
    sock = bind("127.0.0.1", 0)
    try:
        url = url_of(sock)
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0/")
        with socket.create_connection(("127.0.0.1", sock.getsockname()[1]), timeout=2):
            pass
    finally:
        sock.close()
