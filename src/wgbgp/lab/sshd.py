"""An OpenSSH server in every lab machine, reached over the lab's management network.

`wgbgp lab up --bare` uses it so `wgbgp apply --all` configures lab machines over real SSH
exactly as it configures real ones. The lab keeps the operator's key and a known_hosts
file in its own state dir; nothing is written to the host's ~/.ssh.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..model.schema import SshDefaults
from ..transport import netns_connector
from .build import Lab
from .state import NETNS_DIR, lab_dir
from .underlay import MGMT

SSHD = "/usr/sbin/sshd"
SSHD_DIR = "/run/wgbgp-sshd"  # /run is private to each lab machine
SSHD_CONFIG = f"""\
# sshd of a wgbgp lab machine: root by key only, on the lab's management network.
ListenAddress {{listen}}
HostKey {SSHD_DIR}/host_ed25519
PidFile {SSHD_DIR}/sshd.pid
AuthorizedKeysFile {SSHD_DIR}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
"""


@dataclass(frozen=True)
class SshAccess:
    """How the operator reaches the lab's machines: the options `wgbgp apply` takes."""

    netns: Path
    identity: Path
    known_hosts: Path
    targets: dict[str, str]  # machine -> root@mgmt-address

    def defaults(self) -> SshDefaults:
        """The topology's `ssh:` section, so a plain `wgbgp apply TOPO --all` reaches
        the machines with no options."""
        return SshDefaults(identity=str(self.identity), known_hosts=str(self.known_hosts),
                           netns=str(self.netns))


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name,
                    "-f", str(path)], check=True, capture_output=True)
    return path.with_suffix(".pub").read_text().strip()


def start_sshd(lab: Lab, timeout: float = 20) -> SshAccess:
    """Start sshd in every machine and return how to reach them; waits until they listen."""
    keys = lab_dir(lab.name) / "ssh"
    keys.mkdir(mode=0o700, exist_ok=True)
    authorized = _keygen(keys / "id_ed25519")
    known, targets = [], {}
    for name, machine in lab.machines.items():
        ip = str(lab.plan.mgmt_ip[name])
        host_key = keys / f"host-{name}"
        host_pub = _keygen(host_key)
        x = machine.executor()
        x.run(["mkdir", "-p", "-m", "0700", SSHD_DIR, "/run/sshd"])
        x.write_file(f"{SSHD_DIR}/host_ed25519", host_key.read_text(), 0o600)
        host_key.unlink()  # the machine's private host key lives only in the machine
        x.write_file(f"{SSHD_DIR}/authorized_keys", authorized + "\n", 0o600)
        x.write_file(f"{SSHD_DIR}/sshd_config", SSHD_CONFIG.format(listen=ip), 0o600)
        # -D: stay in the foreground so the pid we record is sshd's own.
        machine.spawn([SSHD, "-D", "-f", f"{SSHD_DIR}/sshd_config"],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        known.append(f"{ip} {' '.join(host_pub.split()[:2])}")
        targets[name] = f"root@{ip}"
    (keys / "known_hosts").write_text("\n".join(known) + "\n")
    netns = NETNS_DIR / lab.plan.ns(MGMT)
    deadline = time.monotonic() + timeout
    for name, target in targets.items():
        ip = target.split("@", 1)[1]
        while True:
            try:
                netns_connector(netns, ip, 22, 1.0)().close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"sshd in {name} is not listening on {ip}:22") from None
                time.sleep(0.1)
    return SshAccess(netns, keys / "id_ed25519", keys / "known_hosts", targets)
