"""MSS clamping on the hub (issue 15 point 3), with real wireguard-go, FRR and nftables.

The hub's tunnel MTU is lowered to 1300 while both clients keep 1420. A TCP connection
from one client's announced address to the other's crosses the hub, in and out of its
tunnel. With wgbgp's nftables table the handshake is clamped to the hub's route MTU
(1300 - 40 = 1260 bytes of MSS), so the sender's segments fit the narrow hop and a 2 MB
transfer completes. With the clamp rules removed, the same connection negotiates the
clients' 1380 MSS: the proof that the rule, not something else, made the MSS small.
(Without the clamp the transfer still completes here, through path MTU discovery: the lab
delivers the hub's ICMP "too big", so a black hole cannot be shown this way.)
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from labwait import wait_until

pytestmark = pytest.mark.lab

SIZE = 2 * 1024 * 1024
PORT = 5199

# The receiver: accept one connection, read to EOF, report its MSS and the byte count.
SERVER = f"""
import json, socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("100.100.100.1", {PORT})); s.listen(1); s.settimeout(60)
c, _ = s.accept(); c.settimeout(60)
mss = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
n = 0
while True:
    b = c.recv(65536)
    if not b:
        break
    n += len(b)
c.sendall(b"ok")
print(json.dumps({{"mss": mss, "bytes": n}}))
"""

# The sender, from the other client's announced address: its MSS is what it will send.
CLIENT = f"""
import json, socket
c = socket.socket(); c.settimeout(60); c.bind(("100.100.100.2", 0))
c.connect(("100.100.100.1", {PORT}))
mss = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
c.sendall(b"x" * {SIZE}); c.shutdown(socket.SHUT_WR)
ack = c.recv(2)
print(json.dumps({{"mss": mss, "ack": ack.decode()}}))
"""


def wgbgp(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "wgbgp", *args], capture_output=True,
                          text=True, timeout=180)
    if check and proc.returncode != 0:
        raise AssertionError(f"wgbgp {' '.join(args)} -> {proc.returncode}\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def in_lab(name: str, machine: str, *cmd: str, check: bool = True) -> str:
    return wgbgp("lab", "exec", "--name", name, machine, "--", *cmd, check=check).stdout


def transfer(name: str) -> tuple[dict, dict]:
    """One 2 MB transfer friend -> laptop across the hub: (server's report, client's)."""
    server = subprocess.Popen(
        [sys.executable, "-m", "wgbgp", "lab", "exec", "--name", name, "laptop", "--",
         sys.executable, "-c", SERVER], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        wait_until("the laptop's TCP server listens", lambda: f":{PORT}" in in_lab(
            name, "laptop", "ss", "-Htln", f"sport = :{PORT}"), timeout=30)
        client = json.loads(in_lab(name, "friend", sys.executable, "-c", CLIENT))
        out, err = server.communicate(timeout=90)
        assert server.returncode == 0, err
        return json.loads(out), client
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


@pytest.fixture
def lab(daemons_required, unique_name):
    name = unique_name("pathfit")
    try:
        # No agent: it would repair the narrowed tunnel MTU this test sets on purpose.
        wgbgp("lab", "up", "--name", name, "--no-agent")
        yield name
    finally:
        wgbgp("lab", "down", "--name", name, check=False)


def clamp_handles(name: str) -> list[str]:
    """The handles of the MSS clamp rules in the hub's forward chain."""
    listing = in_lab(name, "vps", "nft", "-a", "list", "chain", "inet", "wgbgp", "forward")
    return [line.rsplit("# handle ", 1)[1].strip() for line in listing.splitlines()
            if "maxseg size set rt mtu" in line]


def test_mss_clamped_to_the_narrow_tunnel(lab: str) -> None:
    # Healthy start: both clamp rules loaded, both tunnels at 1420, the clients reach
    # each other's announced addresses.
    assert len(clamp_handles(lab)) == 2
    assert "mtu 1420" in in_lab(lab, "vps", "ip", "link", "show", "wg-vps")
    in_lab(lab, "friend", "ping", "-c", "1", "-W", "5", "-I", "100.100.100.2",
           "100.100.100.1")
    try:
        in_lab(lab, "vps", "ip", "link", "set", "wg-vps", "mtu", "1300")
        server, client = transfer(lab)
        assert server["bytes"] == SIZE and client["ack"] == "ok"
        # 1300 - 20 (IPv4) - 20 (TCP) = 1260, less 12 for timestamps on the socket.
        assert client["mss"] <= 1260 and server["mss"] <= 1260, (client, server)

        for handle in clamp_handles(lab):
            in_lab(lab, "vps", "nft", "delete", "rule", "inet", "wgbgp", "forward",
                   "handle", handle)
        assert clamp_handles(lab) == []
        server, client = transfer(lab)
        assert server["bytes"] == SIZE
        # Unclamped: the clients' own 1420 MTU decides (1380, less timestamps).
        assert client["mss"] > 1260 and server["mss"] > 1260, (client, server)
    finally:
        in_lab(lab, "vps", "ip", "link", "set", "wg-vps", "mtu", "1420", check=False)
        in_lab(lab, "vps", "nft", "-f", "/etc/wgbgp/nftables.nft", check=False)
    assert len(clamp_handles(lab)) == 2
