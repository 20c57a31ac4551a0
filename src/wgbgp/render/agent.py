"""The agent's systemd unit (`wgbgp-agent.service`). Pure: text from a template.

Rendered only for machines that run systemd (apply decides: see apply/agentinstall.py);
without systemd apply starts the agent itself and nothing is rendered.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

from .files import _env

AGENT_UNIT_TEMPLATE = "wgbgp-agent.service.j2"


def render_agent_unit(node: str, command: Sequence[str], *, source: str = "",
                      environment: Mapping[str, str] | None = None) -> str:
    """The unit that runs `command` (the agent's argv) for `node`, restarted when it dies."""
    return _env().get_template(AGENT_UNIT_TEMPLATE).render(
        node=node, command=shlex.join(command), source=source,
        environment=sorted((environment or {}).items()))
