"""Apply over real SSH: an OpenSSH server in each lab machine, reached over the lab's
management network; host keys verified against a known_hosts file. Root only.

(`wgbgp lab up --bare` will start these servers itself; until then this module does.)
"""

from __future__ import annotations

import json
import time
import uuid
from ipaddress import IPv4Address
from pathlib import Path

import asyncssh
import pytest

from wgbgp.apply import apply_machine, remote_keygen
from wgbgp.apply.parallel import apply_many
from wgbgp.compile import compile_topology
from wgbgp.lab.build import build_lab
from wgbgp.lab.spec import CarrierSpec, ClientSpec, HubSpec, LabSpec
from wgbgp.lab.state import NETNS_DIR
from wgbgp.model import parse
from wgbgp.render import render_machine
from wgbgp.transport import CommandFailed, SSHExecutor, netns_connector

pytestmark = pytest.mark.lab("wireguard", "frr", "sshd")

HUB_IP = "203.0.113.10"
SSHD_DIR = "/run/wgbgp-test-sshd"  # /run is private to each lab machine
SSHD_CONFIG = f"""Port 22
HostKey {SSHD_DIR}/host_key
PidFile {SSHD_DIR}/sshd.pid
AuthorizedKeysFile {SSHD_DIR}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
"""


class SshLab:
    def __init__(self, lab, tmp: Path) -> None:
        self.lab = lab
        self.tmp = tmp
        client_key = asyncssh.generate_private_key("ssh-ed25519")
        client_key.write_private_key(str(tmp / "id_ed25519"))
        authorized = client_key.export_public_key().decode()
        known = []
        self.mgmt_ns = NETNS_DIR / lab.plan.ns("mgmt")
        self.ip: dict[str, str] = {}
        for name, m in lab.machines.items():
            host_key = asyncssh.generate_private_key("ssh-ed25519")
            x = m.executor()
            x.run(["mkdir", "-p", "-m", "0700", SSHD_DIR, "/run/sshd"])
            x.write_file(f"{SSHD_DIR}/host_key", host_key.export_private_key().decode(), 0o600)
            x.write_file(f"{SSHD_DIR}/authorized_keys", authorized, 0o600)
            x.write_file(f"{SSHD_DIR}/sshd_config", SSHD_CONFIG, 0o600)
            m.spawn(["/usr/sbin/sshd", "-D", "-e", "-f", f"{SSHD_DIR}/sshd_config"],
                    stdout=open(tmp / f"sshd-{name}.log", "w"),  # noqa: SIM115 - sshd writes it
                    stderr=-2)
            ip = str(lab.plan.mgmt_ip[name])
            self.ip[name] = ip
            known.append(f"{ip} {host_key.export_public_key().decode().strip()}")
        (tmp / "known_hosts").write_text("\n".join(known) + "\n")
        (tmp / "empty_known_hosts").write_text("")
        deadline = time.monotonic() + 20
        for name in lab.machines:
            while True:
                try:
                    netns_connector(self.mgmt_ns, self.ip[name], 22, 1.0)().close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, f"sshd in {name} did not start"
                    time.sleep(0.2)

    def executor(self, name: str, known_hosts: str = "known_hosts") -> SSHExecutor:
        return SSHExecutor(f"root@{self.ip[name]}", name=name,
                           known_hosts=str(self.tmp / known_hosts),
                           client_keys=[str(self.tmp / "id_ed25519")],
                           sock_factory=netns_connector(self.mgmt_ns, self.ip[name], 22))


@pytest.fixture(scope="module")
def sshlab(tmp_path_factory):
    spec = LabSpec("aps" + uuid.uuid4().hex[:5], hubs=(HubSpec("vps", IPv4Address(HUB_IP)),),
                   clients=(ClientSpec("laptop", "cgnat"), ClientSpec("friend", "cgnat")),
                   carriers=(CarrierSpec("cgnat"),))
    lab = build_lab(spec)
    executors: list[SSHExecutor] = []
    try:
        s = SshLab(lab, tmp_path_factory.mktemp("ssh"))
        s.opened = executors
        yield s
    finally:
        for x in executors:
            x.close()
        lab.down()


def test_unknown_host_key_is_refused(sshlab):
    x = sshlab.executor("vps", known_hosts="empty_known_hosts")
    sshlab.opened.append(x)
    with pytest.raises(CommandFailed) as err:
        x.run(["true"])
    assert "not in known_hosts" in str(err.value)


def test_executor_basics_over_ssh(sshlab):
    x = sshlab.executor("laptop")
    sshlab.opened.append(x)
    assert x.run(["hostname"]).stdout.strip() == "laptop"  # inside the lab machine
    assert x.run(["sh", "-c", "cat; exit 3"], input="hi", check=False).returncode == 3
    x.write_file("/etc/wgbgp/t.txt", "a 'quoted' $text\n", 0o600)
    assert x.read_file("/etc/wgbgp/t.txt") == "a 'quoted' $text\n"
    assert x.read_file("/etc/wgbgp/none") is None
    assert x.run(["sleep", "5"], timeout=0.5, check=False).returncode == 124


def test_apply_all_over_ssh_brings_the_classic_example_up(sshlab):
    xs = {n: sshlab.executor(n) for n in sshlab.lab.machines}
    sshlab.opened.extend(xs.values())
    keys = {n: remote_keygen(x, n) for n, x in xs.items()}
    assert all(k.created for k in keys.values())
    assert remote_keygen(xs["vps"], "vps").public_key == keys["vps"].public_key  # kept
    text = "\n".join([
        "network: {name: friends, overlay: 10.0.0.0/24}",
        "hubs:",
        f"  vps: {{endpoint: '{HUB_IP}:51820', address: 10.0.0.1, "
        f"public_key: '{keys['vps'].public_key}'}}",
        "nodes:",
        f"  laptop: {{asn: 65010, public_key: '{keys['laptop'].public_key}', "
        "announce: [100.100.100.1/32]}",
        f"  friend: {{asn: 65020, public_key: '{keys['friend'].public_key}', "
        "announce: [100.100.100.2/32]}",
    ]) + "\n"
    topology, _ = parse(text, "ssh.yaml")
    files = {n: render_machine(p) for n, p in compile_topology(topology).items()}
    events: list[tuple] = []
    results = apply_many([(xs[n], f) for n, f in files.items()],
                         progress=lambda *e: events.append(e))
    for r in results.values():
        assert r.ok, r.summary()
    assert {e[0] for e in events} == {"vps", "laptop", "friend"}
    deadline = time.monotonic() + 60
    while True:
        peers = json.loads(xs["laptop"].run(["vtysh", "-c", "show bgp summary json"]).stdout)
        peers = peers["ipv4Unicast"]["peers"]
        if peers and all(p["state"] == "Established" for p in peers.values()):
            break
        assert time.monotonic() < deadline, peers
        time.sleep(0.5)
    # The private keys never crossed SSH: the only key material we saw is public.
    for r in results.values():
        assert "PrivateKey =" not in json.dumps(r.to_dict()).replace("PrivateKey = (hidden)", "")
    again = apply_many([(xs[n], f) for n, f in files.items()])
    assert all(r.ok and r.steps == [] for r in again.values())


def test_lost_connection_is_reported_and_reconnected(sshlab):
    x = sshlab.executor("friend")
    sshlab.opened.append(x)
    x.run(["true"])
    x._drop()  # as if the network dropped the connection
    assert x.run(["echo", "back"]).stdout == "back\n"  # a new connection is made
    r = apply_machine(SSHExecutor("root@198.19.254.254", name="nowhere",
                                  known_hosts=str(sshlab.tmp / "known_hosts"),
                                  connect_timeout=2,
                                  sock_factory=netns_connector(sshlab.mgmt_ns,
                                                               "198.19.254.254", 22, 1.0)), [])
    assert not r.ok and r.failed_step == "probe"
