"""Read one machine's state in a single round trip: files (hashed, keys masked) and live facts.

The probe is a POSIX shell script run through the executor, so it works the same locally,
in a lab namespace and over SSH. Its output is line-based and parsed by `parse_probe`, which
is pure (and unit-tested on canned output).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..transport import Executor
from .changes import CurrentFile

STATE_DIR = "/etc/wgbgp"
MANIFEST = f"{STATE_DIR}/manifest"          # what wgbgp installed (for `down`)
PENDING = f"{STATE_DIR}/apply-pending"      # present while an apply is midway
SYSCTL_BEFORE = f"{STATE_DIR}/sysctl-before"  # values before wgbgp first set them

# Arguments: a sequence of `F path` (file to hash; masked text returned), `R path` (file
# returned whole: not secret), `I iface` (interface facts), `K path` (key file exists?),
# `W iface` (`wg showconf`, keys masked, and the routes via the interface), `S path` (a
# sysctl's value, by its /proc/sys path: see sysctl_path), `U unit` (systemd unit enabled?).
PROBE_SCRIPT = r"""
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C
t='	'
mask='s/^([[:space:]]*(PrivateKey|PresharedKey)[[:space:]]*=[[:space:]]*).+$/\1(hidden)/I'
pw='s/^([[:space:]]*(neighbor[[:space:]]+[^[:space:]]+[[:space:]]+|enable[[:space:]]+)?'
pw="${pw}password[[:space:]]+).+$/\1(hidden)/"
for tool in wg wg-quick ip nft sysctl vtysh base64 sha256sum systemctl bird birdc; do
  if command -v "$tool" >/dev/null 2>&1; then ok=1; else ok=0; fi
  echo "tool$t$tool$t$ok"
done
for f in frrinit.sh frr-reload.py; do
  if [ -x "/usr/lib/frr/$f" ]; then echo "tool$t$f${t}1"; else echo "tool$t$f${t}0"; fi
done
if [ -d /run/systemd/system ]; then echo "systemd${t}1"; else echo "systemd${t}0"; fi
if [ -e /etc/wgbgp/apply-pending ]; then echo "pending${t}1"; else echo "pending${t}0"; fi
for d in watchfrr zebra bgpd staticd bfdd; do
  p=$(cat "/var/run/frr/$d.pid" 2>/dev/null || true)
  if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then echo "daemon$t$d$t$p"; fi
done
if command -v birdc >/dev/null 2>&1 \
   && birdc -s /run/bird/bird.ctl show status >/dev/null 2>&1; then echo "bird${t}1"; fi
if command -v nft >/dev/null 2>&1 && nft list table inet wgbgp >/dev/null 2>&1; then
  echo "nft${t}1"; else echo "nft${t}0"; fi
sysctls=
while [ $# -ge 2 ]; do
  what=$1; arg=$2; shift 2
  case $what in
  F|R)
    if [ -f "$arg" ]; then
      mode=$(stat -c %a "$arg"); sum=$(sha256sum < "$arg"); sum=${sum%% *}
      echo "file$t$arg${t}1$t$mode$t$sum"
      if [ "$what" = F ]; then
        sed -E -e "$mask" -e "$pw" "$arg" | base64 | tr -d '\n'
      else
        base64 < "$arg" | tr -d '\n'
      fi
      echo
    else
      echo "file$t$arg${t}0"; echo
    fi ;;
  I)
    if link=$(ip -o link show dev "$arg" 2>/dev/null); then
      # one sed: "MTU FLAGS" (flags as in <POINTOPOINT,NOARP,UP,LOWER_UP>)
      mf=$(printf '%s\n' "$link" | sed -n 's/^[0-9]*: [^<]*<\([^>]*\)>.* mtu \([0-9]*\).*/\2 \1/p')
      mtu=${mf%% *}; flags=${mf#* }
      case ",$flags," in *,UP,*) up=1 ;; *) up=0 ;; esac
      echo "iface$t$arg${t}1$t$mtu$t$up"
      ip -o addr show dev "$arg" 2>/dev/null | while read -r _ _ fam addr _; do
        case $fam in inet|inet6) echo "addr$t$arg$t$addr";; esac
      done
    else
      echo "iface$t$arg${t}0"
    fi ;;
  W)
    if conf=$(wg showconf "$arg" 2>/dev/null); then
      echo "wgconf$t$arg${t}1"
      printf '%s\n' "$conf" | sed -E -e "$mask" | base64 | tr -d '\n'; echo
      for p in -4 -6; do
        ip $p route show dev "$arg" 2>/dev/null | while read -r dst _; do
          if [ "$dst" = default ]; then
            if [ $p = -4 ]; then dst=0.0.0.0/0; else dst=::/0; fi
          fi
          echo "route$t$arg$t$dst"
        done
      done
    else
      echo "wgconf$t$arg${t}0"; echo
    fi ;;
  S) sysctls="$sysctls $arg" ;;  # /proc/sys paths, read all at once below
  K)
    if [ -s "$arg" ]; then echo "key$t$arg${t}1"; else echo "key$t$arg${t}0"; fi ;;
  U)
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ] \
       && systemctl is-enabled --quiet "$arg" 2>/dev/null; then
      echo "unit$t$arg${t}1"; else echo "unit$t$arg${t}0"; fi ;;
  esac
done
# One process for every sysctl (the shell's `read` cannot read /proc/sys: it reads a byte
# at a time, and those files answer only a read from offset 0). A missing key prints nothing.
if [ -n "$sysctls" ]; then
  grep -H '' $sysctls 2>/dev/null | while IFS= read -r line; do
    echo "sysctl$t${line%%:*}$t${line#*:}"
  done
fi
echo "end"
"""


@dataclass(frozen=True)
class LiveInterface:
    name: str
    exists: bool
    mtu: int | None = None
    addresses: tuple[str, ...] = ()
    up: bool | None = None  # administratively UP; None: not reported


@dataclass
class MachineState:
    """What the probe saw on one machine."""

    files: dict[str, CurrentFile] = field(default_factory=dict)
    interfaces: dict[str, LiveInterface] = field(default_factory=dict)
    daemons: dict[str, int] = field(default_factory=dict)  # running FRR daemon -> pid
    tools: dict[str, bool] = field(default_factory=dict)
    keys: dict[str, bool] = field(default_factory=dict)     # key file -> present
    units: dict[str, bool] = field(default_factory=dict)    # systemd unit -> enabled
    nft_table: bool = False
    bird_running: bool = False  # BIRD answers on /run/bird/bird.ctl
    systemd: bool = False
    pending: bool = False
    # `W iface`: the interface's `wg showconf` (keys masked), None when it did not answer;
    # and the destinations of the routes via it (main table, as `ip route` prints them).
    wg_config: dict[str, str | None] = field(default_factory=dict)
    routes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sysctls: dict[str, str] = field(default_factory=dict)   # `S key` -> live value

    @property
    def frr_running(self) -> bool:
        return any(d in self.daemons for d in ("watchfrr", "zebra", "bgpd"))

    @property
    def bgpd_running(self) -> bool:
        return "bgpd" in self.daemons

    def has(self, tool: str) -> bool:
        return self.tools.get(tool, False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "interfaces": {n: {"up": i.exists, "link_up": i.up, "mtu": i.mtu,
                               "addresses": list(i.addresses)}
                           for n, i in self.interfaces.items()},
            "frr_daemons": dict(self.daemons), "bird_running": self.bird_running,
            "nft_table": self.nft_table,
            "systemd": self.systemd, "pending": self.pending,
            "missing_tools": sorted(t for t, ok in self.tools.items() if not ok),
        }


class ProbeError(Exception):
    """The probe's output could not be read (truncated, or not our script's)."""


def probe_args(
    files: Iterable[str] = (), raw: Iterable[str] = (), interfaces: Iterable[str] = (),
    keys: Iterable[str] = (), units: Iterable[str] = (), wireguard: Iterable[str] = (),
    sysctls: Iterable[str] = (),
) -> list[str]:
    args: list[str] = []
    sysctls = [sysctl_path(k) for k in sysctls]
    for tag, items in (("F", files), ("R", raw), ("I", interfaces), ("K", keys), ("U", units),
                       ("W", wireguard), ("S", sysctls)):
        for item in items:
            args += [tag, item]
    return args


def sysctl_path(key: str) -> str:
    """`net.ipv4.ip_forward` -> `/proc/sys/net/ipv4/ip_forward` (as sysctl(8) maps it: a
    `/` in a key, e.g. a VLAN interface `eth0.5` written `eth0/5`, becomes a `.`)."""
    return "/proc/sys/" + "/".join(part.replace("/", ".") for part in key.split("."))


def sysctl_key(path: str) -> str:
    """The inverse of sysctl_path."""
    rel = path.removeprefix("/proc/sys/")
    return ".".join(part.replace(".", "/") for part in rel.split("/"))


def parse_probe(output: str) -> MachineState:
    """Parse PROBE_SCRIPT output. Pure."""
    lines = output.splitlines()
    if "end" not in lines:
        raise ProbeError("probe output is incomplete (no end marker)")
    state = MachineState()
    addrs: dict[str, list[str]] = {}
    routes: dict[str, list[str]] = {}
    i = 0
    while i < len(lines):
        parts = lines[i].split("\t")
        tag = parts[0]
        if tag == "end":
            break
        if tag == "tool":
            state.tools[parts[1]] = parts[2] == "1"
        elif tag == "systemd":
            state.systemd = parts[1] == "1"
        elif tag == "pending":
            state.pending = parts[1] == "1"
        elif tag == "bird":
            state.bird_running = parts[1] == "1"
        elif tag == "nft":
            state.nft_table = parts[1] == "1"
        elif tag == "daemon":
            state.daemons[parts[1]] = int(parts[2])
        elif tag == "file":
            path = parts[1]
            i += 1
            payload = lines[i] if i < len(lines) else ""
            if parts[2] == "1":
                text = base64.b64decode(payload).decode("utf-8", errors="replace")
                state.files[path] = CurrentFile(path, True, int(parts[3], 8), parts[4], text)
            else:
                state.files[path] = CurrentFile(path, False)
        elif tag == "iface":
            name = parts[1]
            exists = parts[2] == "1"
            mtu = int(parts[3]) if exists and len(parts) > 3 and parts[3] else None
            up = parts[4] == "1" if exists and len(parts) > 4 and parts[4] else None
            state.interfaces[name] = LiveInterface(name, exists, mtu, up=up)
        elif tag == "wgconf":
            i += 1
            payload = lines[i] if i < len(lines) else ""
            state.wg_config[parts[1]] = (
                base64.b64decode(payload).decode("utf-8", errors="replace")
                if parts[2] == "1" else None)
            routes.setdefault(parts[1], [])
        elif tag == "route":
            routes.setdefault(parts[1], []).append(parts[2])
        elif tag == "sysctl":
            state.sysctls[sysctl_key(parts[1])] = " ".join(" ".join(parts[2:]).split())
        elif tag == "addr":
            addrs.setdefault(parts[1], []).append(parts[2])
        elif tag == "key":
            state.keys[parts[1]] = parts[2] == "1"
        elif tag == "unit":
            state.units[parts[1]] = parts[2] == "1"
        i += 1
    for name, found in addrs.items():
        iface = state.interfaces.get(name)
        if iface is not None:
            state.interfaces[name] = LiveInterface(name, iface.exists, iface.mtu, tuple(found),
                                                   iface.up)
    state.routes = {name: tuple(found) for name, found in routes.items()}
    return state


def probe(
    executor: Executor, *, files: Sequence[str] = (), raw: Sequence[str] = (),
    interfaces: Sequence[str] = (), keys: Sequence[str] = (), units: Sequence[str] = (),
    wireguard: Sequence[str] = (), sysctls: Sequence[str] = (),
) -> MachineState:
    """Run the probe on a machine (one command)."""
    args = probe_args(files, raw, interfaces, keys, units, wireguard, sysctls)
    result = executor.run(["sh", "-c", PROBE_SCRIPT, "wgbgp-probe", *args], timeout=60)
    return parse_probe(result.stdout)
