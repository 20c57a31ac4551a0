"""Fixtures for lab tests: real namespaces, so root and the lab's tools are required."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from labenv import DAEMONS, skip_reason
from wgbgp.lab.build import Lab, build_lab
from wgbgp.lab.spec import LabSpec, classic_spec
from wgbgp.lab.state import teardown


def require(*needs: str) -> None:
    """Skip the calling test unless this machine has what `needs` names (labenv.py), for
    the fixtures below: a module's `lab` marker already checks root and the underlay."""
    reason = skip_reason(*needs)
    if reason:
        pytest.skip(reason)


def unique(prefix: str) -> str:
    """A lab name no other test run on this machine uses at the same time."""
    return f"{prefix}{os.getpid() % 100000}"


@pytest.fixture
def lab_name():
    """Factory of unique lab names: lab_name("tx") -> "tx12345"."""
    return unique


@pytest.fixture
def wg_tools() -> None:
    require("wireguard")


@pytest.fixture
def frr_tools() -> None:
    require("frr")


class LabFactory:
    """Builds labs and guarantees their teardown, even when a test fails."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def __call__(self, spec: LabSpec, **kw: object) -> Lab:
        self.names.append(spec.name)
        return build_lab(spec, **kw)

    def cleanup(self) -> None:
        for name in self.names:
            teardown(name)


@pytest.fixture
def make_lab() -> Iterator[LabFactory]:
    require()
    factory = LabFactory()
    yield factory
    factory.cleanup()


@pytest.fixture(scope="module")
def classic() -> Iterator[Lab]:
    """The classic underlay (hub vps, laptop and friend behind carrier cgnat), shared."""
    require()
    spec = classic_spec(unique("tcl"))
    lab = build_lab(spec)
    yield lab
    teardown(spec.name)


# A tiny UDP tool run inside namespaces (run with the interpreter running the tests).
UDP_TOOL = textwrap.dedent("""\
    import socket, sys, time
    mode, args = sys.argv[1], sys.argv[2:]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if mode == "serve":          # serve PORT COUNT TIMEOUT: print each sender, echo back
        port, count, timeout = int(args[0]), int(args[1]), float(args[2])
        s.bind(("0.0.0.0", port)); s.settimeout(timeout)
        print("ready", flush=True)
        for _ in range(count):
            data, addr = s.recvfrom(2048)
            print(f"{addr[0]}:{addr[1]} {data.decode()}", flush=True)
            s.sendto(b"echo " + data, addr)
    elif mode == "send":         # send HOST PORT MSG TIMEOUT: print the reply or "timeout"
        host, port, msg, timeout = args[0], int(args[1]), args[2], float(args[3])
        s.settimeout(timeout); s.sendto(msg.encode(), (host, port))
        try:
            print(s.recvfrom(2048)[0].decode())
        except socket.timeout:
            print("timeout")
    elif mode == "listen":       # listen LPORT HOST PORT SECONDS: say hi, print all received
        lport, host, port, secs = int(args[0]), args[1], int(args[2]), float(args[3])
        s.bind(("0.0.0.0", lport)); s.sendto(b"hi", (host, port))
        end = time.monotonic() + secs
        while (left := end - time.monotonic()) > 0:
            s.settimeout(left)
            try:
                print(s.recvfrom(2048)[0].decode(), flush=True)
            except socket.timeout:
                break
    elif mode == "answer":       # answer PORT DELAY: reply "r1" now and "r2" after DELAY
        port, delay = int(args[0]), float(args[1])
        s.bind(("0.0.0.0", port)); s.settimeout(10)
        print("ready", flush=True)
        data, addr = s.recvfrom(2048)
        print(f"{addr[0]}:{addr[1]}", flush=True)
        s.sendto(b"r1", addr); time.sleep(delay); s.sendto(b"r2", addr)
""")


@pytest.fixture(scope="session")
def udp_tool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Machines see the host's /tmp (only their private dirs differ), so a file works.
    path = tmp_path_factory.mktemp("udp") / "udp_tool.py"
    path.write_text(UDP_TOOL)
    return path


@pytest.fixture
def daemons_required() -> None:
    """Skip unless root with the underlay tools, WireGuard and FRR installed."""
    require(*DAEMONS)


@pytest.fixture
def unique_name():
    """A factory of lab names unique to this test run."""
    return unique
