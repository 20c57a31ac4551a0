"""`wgbgp bootstrap` for real: a minimal Debian 12 root (debootstrap minbase with sshd) as
a lab machine, bootstrapped over SSH (a real apt and dpkg installing Debian's packages),
a no-op the second time, then `apply` makes it a node whose session to its peer comes
up through the lab's hub and CG-NAT."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from debroot import CACHE, fresh_copy, pristine_root

from wgbgp.compile import compile_topology
from wgbgp.lab.runner import require_lab, wait_for_convergence
from wgbgp.lab.state import lab_dir
from wgbgp.model import parse
from wgbgp.transport import SshOptions, ssh_executor

pytestmark = [pytest.mark.lab, pytest.mark.slow]
PORT = 2222
SSHD_CONFIG = """\
Port {port}
ListenAddress {ip}
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd-wgbgp.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
"""
# In the machine's network namespace, a mount namespace of its own: the root's /proc,
# /sys (this namespace's interfaces), /dev (for /dev/net/tun) and a fresh /run, then sshd
# chrooted into it. The lab's teardown ends it with the machine's other processes.
CHROOT_SSHD = """\
set -e
r=$1
mount -t proc proc "$r/proc"
mount -t sysfs sysfs "$r/sys"
mount --rbind /dev "$r/dev"
mount -t tmpfs -o mode=755 tmpfs "$r/run"
mkdir -p "$r/run/sshd"
exec chroot "$r" /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config_wgbgp
"""


def wgbgp(*args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "wgbgp", *args], capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"wgbgp {' '.join(args)}\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_bootstrap_a_bare_debian_over_ssh(daemons_required, unique_name, tmp_path):
    _, built = pristine_root()
    name = unique_name("zboot")
    root = fresh_copy(name)
    try:
        wgbgp("lab", "up", "--bare", "--name", name)
        lab = require_lab(name)
        laptop = lab.machines["laptop"]
        ip = str(lab.plan.mgmt_ip["laptop"])
        ssh_dir = lab_dir(name) / "ssh"
        (root / "root/.ssh").mkdir(mode=0o700, exist_ok=True)
        (root / "root/.ssh/authorized_keys").write_text(
            (ssh_dir / "id_ed25519.pub").read_text())
        (root / "etc/ssh/sshd_config_wgbgp").write_text(SSHD_CONFIG.format(port=PORT, ip=ip))
        host_key = (root / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()[:2]
        known = tmp_path / "known_hosts"
        known.write_text((ssh_dir / "known_hosts").read_text()
                         + f"[{ip}]:{PORT} {' '.join(host_key)}\n")
        laptop.spawn(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                      CHROOT_SSHD, "chroot-sshd", str(root)],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        doc = yaml.safe_load(Path(json.loads(wgbgp("lab", "status", "--name", name, "--json")
                                             .stdout)["topology"]).read_text())
        # The lab's topology says how SSH reaches its machines; this one also knows the
        # chroot's host key.
        doc["ssh"]["known_hosts"] = str(known)
        options: list[str] = []
        doc["nodes"]["laptop"]["ssh"] = f"root@{ip}:{PORT}"
        topology = tmp_path / "friends.yaml"
        topology.write_text(yaml.safe_dump(doc, sort_keys=False))
        bare = ssh_executor("laptop", f"root@{ip}:{PORT}", SshOptions(
            known, ssh_dir / "id_ed25519", Path(doc["ssh"]["netns"])))
        deadline = time.monotonic() + 30
        while not bare_ok(bare):
            assert time.monotonic() < deadline, "the chroot's sshd never answered"
            time.sleep(0.5)
        # A bare machine: none of what wgbgp needs is there.
        assert not bare.run(["sh", "-c", "command -v wg || command -v vtysh"],
                            check=False).ok

        start = time.monotonic()
        first = json.loads(wgbgp("bootstrap", str(topology), "--node", "laptop", *options,
                                 "--json").stdout)
        first_s = time.monotonic() - start
        result = first["machines"]["laptop"]
        assert first["ok"] and result["os"] == "Debian GNU/Linux 12 (bookworm)"
        # No WireGuard module in this kernel: the userspace one comes too.
        assert {"wireguard-tools", "wireguard-go", "frr", "frr-pythontools", "nftables"} <= \
            set(result["installed"])
        for tool in ("wg", "wg-quick", "wireguard-go", "vtysh", "nft",
                     "/usr/lib/frr/frr-reload.py"):
            assert bare.run(["sh", "-c", f"command -v {tool}"], check=False).ok, tool

        start = time.monotonic()
        second = json.loads(wgbgp("bootstrap", str(topology), "--node", "laptop", *options,
                                  "--json").stdout)
        second_s = time.monotonic() - start
        again = second["machines"]["laptop"]
        assert again["missing"] == [] and again["probes"] == 1 and not again["commands"]
        made = f"built in {built:.0f} s" if built else "cached"
        # Recorded for the README's figures (the test asserts nothing about time).
        with open(CACHE / "timings.log", "a") as log:
            log.write(f"debootstrap root {made}; bootstrap over SSH {first_s:.1f} s, "
                      f"second run {second_s:.1f} s\n")

        # Then the usual path: the key made there, the topology updated, apply.
        wgbgp("keygen", "laptop", "--ssh", f"root@{ip}:{PORT}", "--force", "--into",
              str(topology), *options)
        wgbgp("apply", str(topology), "--all", *options, timeout=600)
        plans = compile_topology(parse(topology.read_text())[0])
        executors = {n: m.executor() for n, m in lab.machines.items()}
        executors["laptop"] = bare
        waited = wait_for_convergence(executors, plans, timeout=90)
        assert waited.converged, waited.last.missing
        bare.close()
    finally:
        subprocess.run([sys.executable, "-m", "wgbgp", "lab", "down", "--name", name],
                       capture_output=True, timeout=60)
        subprocess.run(["rm", "-rf", "--one-file-system", str(root)], timeout=120)


def bare_ok(x) -> bool:
    try:
        return x.run(["true"], check=False, timeout=5).ok
    except Exception:  # noqa: BLE001 - not listening yet: any transport error means "not yet"
        return False
