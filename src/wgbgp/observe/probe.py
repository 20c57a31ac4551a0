"""Active probes (ping, TCP connect) run on a machine, and the parsing of their output.

A probe is described by a `ProbeSpec` (what to send, from where, and why), run through an
executor, and kept as a `ProbeResult` with its raw output. Parsing the output is pure.
No JSON exists for ping, so its summary line is read:
    "3 packets transmitted, 2 received, 33.3333% packet loss, time 402ms"
and local errors such as "ping: local error: message too long, mtu=1420".

The TCP probe needs no extra tool: bash's /dev/tcp, bounded by `timeout`
(exit 0 = connected, "Connection refused" = nothing listening, 124 = no answer).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

from ..transport import CommandResult, Executor, capture

# IPv4 header (20) + ICMP header (8): ping's payload for a packet of a given size.
ICMP_OVERHEAD = 28
PING_COUNT = 3
TCP_TIMEOUT = 3

Purpose = Literal[
    "hub",        # client -> hub tunnel address (the tunnel works)
    "peer",       # client -> peer tunnel address (the hub forwards)
    "client",     # hub -> client tunnel address (the hub can reach it: NAT mapping open)
    "bgp",        # TCP 179 to a BGP neighbour
    "announced",  # own announced address -> peer's announced address
    "mtu",        # full-size packet, DF set
    "mtu-search",  # bisection for the largest packet that passes, DF set
]


@dataclass(frozen=True)
class ProbeSpec:
    """One probe: run on `machine`, towards `target` (an address of `target_machine`)."""

    machine: str
    kind: Literal["ping", "tcp"]
    purpose: Purpose
    target: str
    target_machine: str | None = None
    source: str | None = None  # source address (ping -I)
    size: int | None = None  # ICMP payload bytes; packet = size + 28
    df: bool = False
    port: int | None = None

    def argv(self) -> list[str]:
        if self.kind == "tcp":
            return ["timeout", str(TCP_TIMEOUT), "bash", "-c", 'exec 3<>"/dev/tcp/$0/$1"',
                    self.target, str(self.port)]
        argv = ["ping", "-n", "-q", "-c", str(PING_COUNT), "-i", "0.2", "-W", "1"]
        if self.source:
            argv += ["-I", self.source]
        if self.df:
            argv += ["-M", "do"]
        if self.size is not None:
            argv += ["-s", str(self.size)]
        return [*argv, self.target]

    @property
    def packet_size(self) -> int | None:
        return self.size + ICMP_OVERHEAD if self.size is not None else None

    def describe(self) -> str:
        if self.kind == "tcp":
            return f"TCP {self.target}:{self.port}"
        what = f"ping {self.target}"
        if self.source:
            what += f" from {self.source}"
        if self.size is not None:
            what += f" ({self.packet_size}-byte packets{', DF' if self.df else ''})"
        return what

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ProbeResult:
    """A probe and what came back."""

    spec: ProbeSpec
    output: CommandResult

    @property
    def sent(self) -> int:
        return parse_ping(self.output)[0] if self.spec.kind == "ping" else 1

    @property
    def received(self) -> int:
        if self.spec.kind == "tcp":
            return 1 if self.output.returncode == 0 else 0
        return parse_ping(self.output)[1]

    @property
    def ok(self) -> bool:
        return self.received > 0

    @property
    def refused(self) -> bool:
        """TCP: something answered, with a reset (nothing listening on that port)."""
        return self.spec.kind == "tcp" and "refused" in self.output.stderr.lower()

    @property
    def detail(self) -> str:
        """The result in a few words, for evidence."""
        if self.spec.kind == "tcp":
            if self.ok:
                return "connected"
            if self.refused:
                return "connection refused (nothing listening)"
            if self.output.returncode == 124:
                return f"no answer within {TCP_TIMEOUT} s"
            return self.output.error
        sent, received, error = parse_ping(self.output)
        if error:
            return error
        return f"{received}/{sent} replies"

    def evidence(self) -> str:
        return f"{self.spec.machine}: {self.spec.describe()}: {self.detail}"

    def to_json(self) -> dict[str, Any]:
        return {"spec": self.spec.to_json(), "output": self.output.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProbeResult:
        return cls(ProbeSpec(**data["spec"]), CommandResult.from_json(data["output"]))


_PING_ERRORS = ("local error", "message too long", "cannot assign requested address",
                "network is unreachable", "bind", "unknown host", "invalid argument",
                "name or service not known")
_STATS = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")


def ping_counts(text: str) -> tuple[int, int] | None:
    """(sent, received) from iputils ping's summary line; None when there is none."""
    m = _STATS.search(text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def parse_ping(output: CommandResult) -> tuple[int, int, str | None]:
    """(sent, received, local error or None) from iputils ping output."""
    text = output.stdout + "\n" + output.stderr
    counts = ping_counts(text)
    sent, received = counts or (0, 0)
    error = None
    for line in text.splitlines():
        if any(pattern in line.lower() for pattern in _PING_ERRORS):
            error = line.strip().removeprefix("ping: ")
            break
    if counts is None and error is None and output.returncode != 0:
        error = output.error
    return sent, received, error


def run_probe(executor: Executor, spec: ProbeSpec) -> ProbeResult:
    """Run one probe on its machine."""
    timeout = TCP_TIMEOUT + 5 if spec.kind == "tcp" else PING_COUNT * 1.5 + 5
    return ProbeResult(spec, capture(executor, spec.argv(), timeout))
