"""Bootstrap: install what a machine needs for its role, then check it (`wgbgp bootstrap`).

One probe (a read-only shell script, one round trip) says the OS, whether the kernel has
WireGuard, and which packages are installed. When everything is there, that probe is all
it costs. Otherwise, on a supported OS (Debian 12 and 13, Ubuntu 22.04 and 24.04), apt
resolves the whole set first (`apt-get install --simulate`): a package it cannot find
stops everything before anything is installed, so a machine is never half-installed.
Then one apt transaction installs the set, and a second probe checks the result. On any
other OS nothing runs: the error lists what to install by hand.

The packages come from wgbgp.programs, the registry of every program wgbgp runs.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from ..compile.plan import Plan
from ..programs import BASE_PACKAGES, OPTIONAL_PACKAGES, PROGRAMS
from ..transport import Executor

SUPPORTED = {("debian", "12"), ("debian", "13"), ("ubuntu", "22.04"), ("ubuntu", "24.04")}
SUPPORTED_TEXT = "Debian 12 and 13, Ubuntu 22.04 and 24.04"
FRR_PACKAGES = ("frr", "frr-pythontools", "python3")
BIRD_PACKAGES = ("bird2",)
USERSPACE_WG = "wireguard-go"
# Every candidate, so one probe answers for any role.
CANDIDATES = tuple(dict.fromkeys(p.package for p in PROGRAMS.values() if p.scope == "machine"
                                 and p.package not in BASE_PACKAGES | OPTIONAL_PACKAGES))
# git serves `wgbgp agent --source` only, which the user chooses: not a role's need.
SOURCE_PACKAGES = frozenset({"git"})
APT_ENV = "DEBIAN_FRONTEND=noninteractive"
# Keep the machine's own config files, never ask (a VPS image may have edited some).
APT_OPTIONS = ["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]

PROBE = r"""
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C
t='	'
ID=; VERSION_ID=; PRETTY_NAME=
[ -r /etc/os-release ] && . /etc/os-release
echo "os$t$ID$t$VERSION_ID$t$PRETTY_NAME"
echo "uid$t$(id -u)"
if command -v apt-get >/dev/null 2>&1; then echo "apt${t}1"; else echo "apt${t}0"; fi
# WireGuard in the kernel: built in or loaded (/sys/module), or a module to load.
if [ -d /sys/module/wireguard ] || ls "/lib/modules/$(uname -r)/kernel/drivers/net/wireguard/" \
     >/dev/null 2>&1; then echo "kernelwg${t}1"; else echo "kernelwg${t}0"; fi
if command -v dpkg-query >/dev/null 2>&1; then
  dpkg-query -W -f='pkg\t${Package}\t${db:Status-Abbrev}\n' "$@" 2>/dev/null || true
fi
"""


class BootstrapError(Exception):
    """The machine cannot be bootstrapped (says why and what to do); nothing was installed
    unless the message says so."""


@dataclass
class Facts:
    """What the probe saw on one machine."""

    os_id: str = ""
    version: str = ""
    pretty: str = ""
    uid: int | None = None
    apt: bool = False
    kernel_wireguard: bool = False
    installed: set[str] = field(default_factory=set)

    @property
    def supported(self) -> bool:
        return (self.os_id, self.version) in SUPPORTED


def parse_facts(output: str) -> Facts:
    """Facts from the probe's output (pure)."""
    f = Facts()
    for line in output.splitlines():
        parts = line.split("\t")
        if parts[0] == "os" and len(parts) >= 4:
            f.os_id, f.version, f.pretty = parts[1].lower(), parts[2], parts[3]
        elif parts[0] == "uid" and len(parts) == 2 and parts[1].isdigit():
            f.uid = int(parts[1])
        elif parts[0] == "apt" and len(parts) == 2:
            f.apt = parts[1] == "1"
        elif parts[0] == "kernelwg" and len(parts) == 2:
            f.kernel_wireguard = parts[1] == "1"
        elif parts[0] == "pkg" and len(parts) == 3 and parts[2].startswith("ii"):
            f.installed.add(parts[1])
    return f


def needed(plan: Plan, kernel_wireguard: bool) -> list[str]:
    """The packages a machine needs for its role: WireGuard's tools, nftables and the
    base tools apply runs everywhere; its BGP daemon (FRR with its reload tool, or BIRD
    2) if it speaks BGP; wireguard-go only when the kernel has no WireGuard."""
    daemon = plan.bgp.daemon if plan.bgp is not None else None
    out = []
    for package in CANDIDATES:
        if package == USERSPACE_WG and kernel_wireguard:
            continue
        if package in FRR_PACKAGES and daemon != "frr":
            continue
        if package in BIRD_PACKAGES and daemon != "bird":
            continue
        if package in SOURCE_PACKAGES:
            continue  # only for `wgbgp agent --source` (a topology in git): install by hand
        out.append(package)
    return out


def install_commands(packages: list[str]) -> list[list[str]]:
    """What bootstrap runs for `packages` (as root), in order: refresh the lists, resolve
    the whole set without installing (the guard against half-installing), install it."""
    apt = ["env", APT_ENV, "apt-get"]
    return [[*apt, "update", "-q"],
            [*apt, "install", "--simulate", "-q", "-y", "--no-install-recommends", *packages],
            [*apt, "install", "-q", "-y", "--no-install-recommends", *APT_OPTIONS, *packages]]


@dataclass
class Outcome:
    """What bootstrap did on one machine."""

    machine: str
    facts: Facts
    wanted: list[str]
    missing: list[str]
    commands: list[list[str]]
    ran: bool = False  # False: nothing to do, or a dry run
    probes: int = 1

    def summary(self) -> str:
        if not self.missing:
            return (f"{self.machine}: {self.facts.pretty or self.facts.os_id}: everything "
                    f"is installed ({', '.join(self.wanted)}); nothing to do (one probe)")
        verb = "installed" if self.ran else "would install"
        return f"{self.machine}: {self.facts.pretty}: {verb} {' '.join(self.missing)}"


def probe(x: Executor) -> Facts:
    res = x.run(["sh", "-c", PROBE, "wgbgp-bootstrap", *CANDIDATES], check=False, timeout=60)
    if not res.ok and not res.stdout:
        raise BootstrapError(f"{x.name}: the probe failed: "
                             f"{res.stderr.strip() or f'exit {res.returncode}'}")
    return parse_facts(res.stdout)


def _check_os(name: str, facts: Facts, wanted: list[str]) -> None:
    if not facts.supported or not facts.apt:
        what = facts.pretty or facts.os_id or "an OS without /etc/os-release"
        raise BootstrapError(
            f"{name} runs {what}, which bootstrap does not install on (it supports "
            f"{SUPPORTED_TEXT}); nothing was installed. Install these by hand (Debian "
            f"package names): {' '.join(wanted)}")
    if facts.uid != 0:
        raise BootstrapError(f"{name}: bootstrap installs packages and needs root there "
                             f"(connected as uid {facts.uid}); nothing was installed. "
                             "Connect as root@HOST, or run it on the machine as root with "
                             "--local")


def bootstrap(x: Executor, plan: Plan, *, dry_run: bool = False,
              progress: Callable[[str], None] = lambda _m: None) -> Outcome:
    """Install what `plan`'s machine lacks for its role, then check it; BootstrapError
    when it cannot (unsupported OS, not root, a package apt cannot find)."""
    facts = probe(x)
    wanted = needed(plan, facts.kernel_wireguard)
    missing = [p for p in wanted if p not in facts.installed]
    commands = install_commands(missing) if missing else []
    outcome = Outcome(x.name, facts, wanted, missing, commands)
    if not missing:
        return outcome
    _check_os(x.name, facts, wanted)
    if dry_run:
        return outcome
    for argv in commands:
        progress(f"{x.name}: {shlex.join(argv[2:])}")
        res = x.run(argv, check=False, timeout=1800)
        if not res.ok:
            tail = "\n".join((res.stderr.strip() or res.stdout.strip()).splitlines()[-5:])
            simulated = "--simulate" in argv
            raise BootstrapError(
                f"{x.name}: `{shlex.join(argv[2:])}` failed"
                + (" (nothing was installed)" if simulated or argv[3] == "update" else "")
                + f":\n{tail}" + ("\nfix: enable the repository that has these packages "
                                  "(Ubuntu: universe), then run bootstrap again"
                                  if simulated else ""))
    outcome.ran = True
    after = probe(x)
    outcome.probes = 2
    still = [p for p in wanted if p not in after.installed]
    if still:
        raise BootstrapError(f"{x.name}: apt finished but {' '.join(still)} is not installed")
    return outcome


def shell_lines(outcome: Outcome) -> list[str]:
    """The commands as a user would type them (for --dry-run)."""
    return [shlex.join(argv) for argv in outcome.commands]
