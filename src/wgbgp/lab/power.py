"""A lab machine's power: cut it, lose what a reboot loses, boot it again.

`power_off` is a power cut: every tunnel stops first (no BGP NOTIFICATION or TCP FIN
reaches a peer), then the machine's PID 1 is killed, and with it, by the kernel, every
process of the machine at once. `wipe_runtime` removes what does not survive a reboot:
interfaces other than the machine's own network ports, the routes and nexthops routing
daemons installed, policy rules, the nftables ruleset, kernel settings, and everything in
/run. What lives on disk (/etc, /var/lib/wgbgp: configs, keys, the intent apply left)
stays, as do the underlay's addresses and routes and the addresses the node's owner put
on `lo` (a real machine's network configuration brings those back at boot).

`boot` is what a machine without systemd runs at boot, in this order:
1. a new PID namespace with its PID 1, and a fresh /proc (`machine.start_init`);
2. `sysctl -p` of every /etc/sysctl.d/*.conf (the machine's own, private directory);
3. `/etc/wgbgp/boot.sh`, when it exists and is executable: **the boot hook**. It runs
   like rc.local: as root, from /, with its output in /run/wgbgp-boot.log, and whatever
   it must keep running it starts in the background. Whatever wgbgp installs to start at
   boot on a machine without systemd (the agent, say) goes there. Without it nothing of
   wgbgp's starts: `wgbgp apply` (or `faults.restart`) brings the machine back.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import time
from dataclasses import dataclass

from ..words import plural
from .build import Lab
from .machine import RUN_DIRS, _chown, start_init
from .state import kill_pid_namespaces, namespace_pids, ns_inodes
from .underlay import MACHINE_SYSCTLS

BOOT_HOOK = "/etc/wgbgp/boot.sh"
BOOT_LOG = "/run/wgbgp-boot.log"
# A fresh machine's values of what wg-quick, FRR and apply change at run time.
FRESH_SYSCTLS = (*MACHINE_SYSCTLS, ("net.ipv4.conf.all.send_redirects", "1"),
                 ("net.ipv4.conf.default.send_redirects", "1"),
                 ("net.ipv4.conf.all.src_valid_mark", "0"))
# Route protocols of routing daemons: their routes outlive a SIGKILLed daemon in the
# kernel, but not a reboot.
DAEMON_PROTOS = ("bgp", "static", "zebra", "bird", "ospf", "isis", "rip", "ripng", "babel",
                 "eigrp", "nhrp", "openfabric", "sharp", "pbr")
DEFAULT_RULE_PRIORITIES = {0, 32766, 32767}  # local, main, default

BOOT_SCRIPT = f"""\
for f in /etc/sysctl.d/*.conf; do [ -f "$f" ] && sysctl -q -p "$f"; done
if [ -x {BOOT_HOOK} ]; then
  (cd / && {BOOT_HOOK}) </dev/null >{BOOT_LOG} 2>&1
  echo "boot hook {BOOT_HOOK}: exit $?"
else
  echo "no boot hook ({BOOT_HOOK})"
fi
"""


def tunnel_links(lab: Lab, name: str) -> list[str]:
    """The machine's WireGuard and TUN interfaces (kernel or wireguard-go tunnels)."""
    x = lab.machine(name).executor()
    out = ""
    for kind in ("wireguard", "tun"):
        out += x.run(["ip", "-o", "link", "show", "type", kind], check=False).stdout
    return sorted(set(re.findall(r"^\d+:\s+([^:@\s]+)", out, flags=re.M)))


def power_off(lab: Lab, name: str) -> list[int]:
    """Cut the machine's power: tunnels down, then every process killed at once.

    Returns the host pids that were running. The network namespace, its addresses and
    the files stay: the hardware is still there, nothing runs on it."""
    machine = lab.machine(name)
    x = machine.executor()
    if machine.init_pid() is not None:
        for iface in tunnel_links(lab, name):
            x.run(["ip", "link", "set", "dev", iface, "down"], check=False)
    pids = machine.pids()
    kill_pid_namespaces([machine.pid_file])
    # Left: only what waited outside the PID namespace (nsenters); they end on their own
    # once their command is gone. Whatever is still in the machine then is killed.
    handles = [machine.netns_path, machine.mnt_file]
    for grace, sig in ((2.0, signal.SIGKILL), (2.0, None)):
        deadline = time.monotonic() + grace
        while (left := namespace_pids(ns_inodes(handles))) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not left or sig is None:
            break
        for pid in left:
            _kill(pid, sig)
    return pids


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def underlay_ifaces(lab: Lab, name: str) -> set[str]:
    """The machine's own network ports (lo, eth0, mgmt0), which a reboot keeps."""
    return {"lo"} | {end.ifname for link in lab.plan.links for end in (link.a, link.b)
                     if end.ns == name}


def wipe_runtime(lab: Lab, name: str) -> list[str]:
    """Remove what a reboot loses (see the module's docstring); what was removed.

    Run while the machine is off: through the machine's network namespace from the host,
    since no PID 1 is there to enter."""
    machine = lab.machine(name)
    x = lab.netns_executor(name)
    gone: list[str] = []
    keep = underlay_ifaces(lab, name)
    links = json.loads(x.run(["ip", "-j", "link", "show"], check=False).stdout or "[]")
    for link in links:
        ifname = link.get("ifname", "")
        if ifname and ifname not in keep:
            x.run(["ip", "link", "del", "dev", ifname], check=False)
            gone.append(f"interface {ifname}")
    for family in ("-4", "-6"):
        for proto in DAEMON_PROTOS:
            there = x.run(["ip", family, "route", "show", "table", "all", "proto", proto],
                          check=False).stdout.strip()
            if there:
                x.run(["ip", family, "route", "flush", "table", "all", "proto", proto],
                      check=False)
                count = len(there.splitlines())
                gone.append(f"{plural(count, proto + ' route')} (IPv{family[1]})")
        rules = json.loads(x.run(["ip", "-j", family, "rule", "show"], check=False).stdout
                           or "[]")
        for rule in rules:
            if rule.get("priority") not in DEFAULT_RULE_PRIORITIES:
                x.run(["ip", family, "rule", "del", "priority", str(rule["priority"])],
                      check=False)
                gone.append(f"rule {rule['priority']} ({family})")
    x.run(["ip", "nexthop", "flush"], check=False)
    x.run(["nft", "flush", "ruleset"], check=False)
    x.run(["sysctl", "-q", "-w", *(f"{k}={v}" for k, v in FRESH_SYSCTLS)], check=False)
    run = machine.root / "run"
    for entry in run.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    for sub, (owner, mode) in RUN_DIRS.items():
        (run / sub).mkdir()
        _chown(run / sub, owner, mode)
    gone.append("/run")
    return gone


@dataclass(frozen=True)
class Boot:
    """How a boot went: the PID 1's host pid and what the boot sequence said."""

    init_pid: int
    output: str
    hook_ran: bool

    @property
    def hook_status(self) -> str:
        """`boot hook /etc/wgbgp/boot.sh: exit 0`, or `no boot hook (...)`."""
        return self.output.strip().splitlines()[-1] if self.output.strip() else ""


def boot(lab: Lab, name: str, timeout: float = 120) -> Boot:
    """Boot the machine: PID 1, the kernel settings from /etc/sysctl.d, the boot hook."""
    machine = lab.machine(name)
    pid = start_init(machine)
    res = machine.executor().run(["sh", "-c", BOOT_SCRIPT], check=False, timeout=timeout)
    out = res.stdout + res.stderr
    return Boot(pid, out, f"boot hook {BOOT_HOOK}: exit" in out)


def reboot(lab: Lab, name: str) -> tuple[list[str], Boot]:
    """Power off, lose the runtime state, boot: (what was lost, how the boot went)."""
    power_off(lab, name)
    gone = wipe_runtime(lab, name)
    return gone, boot(lab, name)
