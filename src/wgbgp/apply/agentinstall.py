"""Install, start and stop the agent (`wgbgp agent`) on a machine, through the executor.

apply leaves the topology it applied (public: keys are public, secrets are only named) in
/etc/wgbgp/agent, with its address lock, and runs `wgbgp agent /etc/wgbgp/agent/topology.yaml
--node NAME` there:
- with systemd: as the unit wgbgp-agent.service (rendered by render/agent.py), enabled and
  started (`Restart=always`: systemd restarts it);
- without systemd: detached (setsid), its pid in /run/wgbgp/agent.pid, stderr appended to
  /run/wgbgp/agent.log. Idempotent: a running agent is left alone (it re-reads the topology
  file by itself), a dead one (stale pid file) is started again.
Which command runs it: where this executor runs commands on this host (locally, or in a
lab machine, which sees this host's files), this Python with the wgbgp package that runs
now; elsewhere the `wgbgp` installed on the machine. When the machine has none, the
agent is not started and apply says so (a note, not a failure).
"""

from __future__ import annotations

import base64
import sys
from dataclasses import dataclass
from pathlib import Path

from ..render.agent import render_agent_unit
from ..transport import Executor, LocalExecutor
from .agentstate import (
    AGENT_DIR,
    AGENT_LOCK,
    AGENT_LOG,
    AGENT_PID,
    AGENT_STATE,
    AGENT_TOPOLOGY,
    AGENT_UNIT,
)
from .applylock import LOCK
from .scripts import PATH_LINE

# Args: PIDFILE LOG UNIT -- ARGV...; stdin: the unit's text, one base64 line.
# Prints one line: `enabled` (systemd), `started PID`, `running PID`, or `missing PROGRAM`.
START = PATH_LINE + r"""
pidf=$1; log=$2; unit=$3; shift 3; [ "$1" = -- ] && shift
data=; IFS= read -r data || true
prog=$1; [ "$prog" != env ] || prog=$3
if ! command -v "$prog" >/dev/null 2>&1; then echo "missing $prog"; exit 0; fi
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  mkdir -p "$(dirname "$unit")"
  t=$(mktemp "$unit.XXXXXX"); printf '%s' "$data" | base64 -d > "$t"; chmod 644 "$t"
  if cmp -s "$t" "$unit"; then rm -f "$t"; else mv -f "$t" "$unit"; systemctl daemon-reload; fi
  systemctl enable --now wgbgp-agent.service >/dev/null 2>&1 || exit 1
  echo enabled; exit 0
fi
mkdir -p "$(dirname "$pidf")" "$(dirname "$log")"
p=$(cat "$pidf" 2>/dev/null || true)
if [ -n "$p" ] && kill -0 "$p" 2>/dev/null \
   && tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q ' agent '; then
  echo "running $p"; exit 0
fi
cd /
setsid "$@" </dev/null >>"$log" 2>&1 &
echo $! > "$pidf"
echo "started $!"
"""

# Args: PIDFILE STATE UNIT LOCK DIR. Stops the agent (systemd unit or pid file), waits
# until it is gone, lets go of an apply lock it may have held, and removes its files.
STOP = PATH_LINE + r"""
pidf=$1; state=$2; unit=$3; lock=$4; dir=$5
if [ -e "$unit" ] && [ -d /run/systemd/system ]; then
  systemctl disable --now wgbgp-agent.service >/dev/null 2>&1 || true
  rm -f "$unit"; systemctl daemon-reload; echo "stopped wgbgp-agent.service"
fi
p=$(cat "$pidf" 2>/dev/null || true)
if [ -n "$p" ] && kill -0 "$p" 2>/dev/null \
   && tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q ' agent '; then
  kill "$p"; n=50
  while [ "$n" -gt 0 ] && kill -0 "$p" 2>/dev/null; do sleep 0.1; n=$((n - 1)); done
  kill -0 "$p" 2>/dev/null && kill -9 "$p"
  echo "stopped agent (pid $p)"
fi
# An agent killed in the middle of a repair leaves its lock holder behind: end it.
case $(cut -f2 "$lock.owner" 2>/dev/null) in
"wgbgp agent"*) kill "$(cut -f1 "$lock.owner")" 2>/dev/null || true; rm -f "$lock.owner" ;;
esac
rm -f "$pidf" "$state"
rm -rf "$dir"
"""


@dataclass(frozen=True)
class AgentInstall:
    """How the agent was installed: `how` is enabled|started|running|missing."""

    how: str
    detail: str
    pid: int = 0

    @property
    def changed(self) -> bool:
        return self.how in ("enabled", "started")


def agent_command(executor: Executor, node: str, topology: str = AGENT_TOPOLOGY,
                  extra: tuple[str, ...] = ()) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) that run the agent for `node` on the machine behind `executor`."""
    args = ["agent", topology, "--node", node, *extra]
    if isinstance(executor, LocalExecutor):
        # This host's files (a lab machine sees them too): the wgbgp running now.
        package_root = str(Path(__file__).resolve().parents[2])
        return [sys.executable, "-m", "wgbgp", *args], {"PYTHONPATH": package_root}
    return ["wgbgp", *args], {}


def install_agent(executor: Executor, node: str, topology_text: str,
                  lock_text: str | None = None, *, extra: tuple[str, ...] = ()
                  ) -> AgentInstall:
    """Leave the topology for the agent and make sure the agent runs (see module doc)."""
    executor.run(["mkdir", "-p", AGENT_DIR])
    executor.write_file(AGENT_TOPOLOGY, topology_text, 0o644)
    if lock_text is not None:
        executor.write_file(AGENT_LOCK, lock_text, 0o644)
    else:
        executor.run(["rm", "-f", AGENT_LOCK])
    command, env = agent_command(executor, node, extra=extra)
    argv = ["env", *(f"{k}={v}" for k, v in env.items()), *command] if env else command
    unit = render_agent_unit(node, command, environment=env)
    res = executor.run(["sh", "-c", START, "wgbgp-agent-start", AGENT_PID, AGENT_LOG,
                        AGENT_UNIT, "--", *argv],
                       input=base64.b64encode(unit.encode()).decode() + "\n", check=False)
    words = (res.stdout.strip().splitlines() or [""])[-1].split()
    if not res.ok or not words:
        return AgentInstall("failed", f"agent not started: {res.error}")
    how = words[0]
    pid = int(words[1]) if len(words) > 1 and words[1].isdigit() else 0
    detail = {
        "enabled": "agent enabled and started (systemd unit wgbgp-agent.service)",
        "started": f"started agent (no systemd), pid {pid}; log {AGENT_LOG}",
        "running": f"agent already running, pid {pid}",
        "missing": f"agent not started: {' '.join(words[1:])} is not installed on "
                   f"{executor.name} (install wgbgp there, then apply again)",
    }.get(how, f"agent: {res.stdout.strip()}")
    return AgentInstall(how, detail, pid)


def stop_agent(executor: Executor) -> str:
    """Stop the agent and remove what apply left for it; what was done ('' if nothing)."""
    res = executor.run(["sh", "-c", STOP, "wgbgp-agent-stop", AGENT_PID, AGENT_STATE,
                        AGENT_UNIT, LOCK, AGENT_DIR], check=False, timeout=60)
    return "; ".join(line for line in res.stdout.splitlines() if line.strip())
