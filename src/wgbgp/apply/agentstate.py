"""Where the agent (`wgbgp agent`) lives on a machine, and the state it reports.

Here, in apply, because apply installs and starts the agent and observe reads its state
(`wgbgp status`, the exporter); the agent itself sits above both. The state file is JSON
in /run (runtime: gone at boot, as the agent process is), public data only: times, the
source revision, the last repair lines and errors (apply's messages are masked already).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

AGENT_RUN = "/run/wgbgp"
AGENT_PID = f"{AGENT_RUN}/agent.pid"
AGENT_STATE = f"{AGENT_RUN}/agent.json"
AGENT_LOG = f"{AGENT_RUN}/agent.log"          # without systemd: the agent's stderr
AGENT_DIR = "/etc/wgbgp/agent"                  # what apply leaves for the agent
AGENT_TOPOLOGY = f"{AGENT_DIR}/topology.yaml"   # the topology apply applied (public)
AGENT_LOCK = f"{AGENT_TOPOLOGY}.lock"           # its address lock (stable addresses)
AGENT_CACHE = "/var/lib/wgbgp/agent"            # --source git: the clone, the last good copy
AGENT_UNIT = "/etc/systemd/system/wgbgp-agent.service"


@dataclass
class AgentState:
    """What `wgbgp status` shows and the exporter exports about the agent."""

    node: str
    pid: int = 0
    started: float = 0.0
    source: str = ""
    revision: str = ""            # the topology running: git commit, or file sha256[:12]
    last_reconcile: float = 0.0   # unix time of the last finished reconcile
    reconciles: int = 0
    last_repair: float = 0.0
    last_repair_lines: list[str] = field(default_factory=list)
    repairs: int = 0
    last_error: str = ""
    last_error_time: float = 0.0
    errors: int = 0
    refused_revision: str = ""    # a newer topology that failed check, and why
    refused_reason: str = ""
    refused_time: float = 0.0
    source_error: str = ""        # the source could not be read (unreachable, invalid)
    bgp_kicks: int = 0            # sessions started on a fresh handshake
    last_kick: float = 0.0
    endpoint_updates: int = 0     # DNS endpoints followed
    restarts: int = 0             # daemons started again (FRR, BIRD, wireguard-go)

    def to_json(self) -> str:
        """The state file's text."""
        return json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> AgentState:
        """The inverse of `to_json`; ValueError when the text is not an agent state."""
        data: Any = json.loads(text)
        if not isinstance(data, dict) or "node" not in data:
            raise ValueError("not an agent state file")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def read_agent_state(text: str | None) -> AgentState | None:
    """The agent's state from the state file's text (None: no agent, or unreadable)."""
    if not text:
        return None
    try:
        return AgentState.from_json(text)
    except (ValueError, TypeError):
        return None
