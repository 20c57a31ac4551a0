"""What the doctor can say: the finding codes, one judged `Check`, and the `Report`. Pure.

This module imports nothing of the doctor, so anything that reports in doctor's words (the
topology-less `live` judge, a web UI, the CLI) can use it without the judges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum, auto
from typing import Any, Literal

SCHEMA = "wgbgp.doctor/1"
Verdict = Literal["ok", "warn", "fail", "skip"]
LAYERS = {0: "machine", 1: "tunnel", 2: "overlay", 3: "bgp", 4: "routes", 5: "data"}


class Code(StrEnum):
    """A kind of finding: its stable name (the value, so JSON and `==` with the plain
    string are unchanged), its layer, and what it means."""

    layer: int
    meaning: str

    # The value is the member's own name (StrEnum would lower-case it).
    @staticmethod
    def _generate_next_value_(name: str, start: int, count: int, last_values: list[Any]
                              ) -> str:
        return name

    def __new__(cls, value: str, layer: int, meaning: str) -> Code:
        member = str.__new__(cls, value)
        member._value_ = value
        member.layer = layer
        member.meaning = meaning
        return member

    MACHINE_UNREACHABLE = auto(), 0, "the machine could not be inspected at all"
    WG_INTERFACE_MISSING = auto(), 1, "the WireGuard interface the topology needs is not up"
    WG_INTERFACE_DOWN = (auto(), 1, "a WireGuard interface exists but is down (ip link): it "
                         "carries nothing, and wg-quick's routes through it are gone")
    WG_KEY_MISMATCH = auto(), 1, "a live public key differs from the topology"
    WG_ENDPOINT_MISMATCH = (auto(), 1, "a client dials a different endpoint than the hub "
                            "listens on")
    WG_ADDRESS_MISSING = auto(), 1, "the interface lacks its tunnel address"
    WG_NO_HANDSHAKE = auto(), 1, "no recent WireGuard handshake with the hub"
    UDP_BLOCKED = (auto(), 1, "handshake packets do not reach the hub although keys and "
                   "endpoint are right")
    NAT_MAPPING_EXPIRED = (auto(), 1, "the hub cannot reach an idle client: its NAT mapping "
                           "expired (no keepalive)")
    WG_NO_KEEPALIVE = auto(), 1, "PersistentKeepalive is off on a client behind NAT"
    ALLOWEDIPS_NARROW = auto(), 1, "a peer's AllowedIPs do not cover addresses it must carry"
    NEIGHBOR_OUTSIDE_ALLOWEDIPS = (auto(), 1, "a BGP neighbour's address is outside every "
                                   "WireGuard peer's AllowedIPs: WireGuard drops the packets")
    HUB_UNREACHABLE = (auto(), 1, "the tunnel is up but the hub's tunnel address does not "
                       "answer")
    CLIENT_UNREACHABLE = auto(), 1, "the hub cannot reach a client's tunnel address"
    HUB_NOT_FORWARDING = auto(), 2, "the hub does not forward between tunnel peers"
    PEER_UNREACHABLE = auto(), 2, "a peer's tunnel address does not answer through the hub"
    BGP_DAEMON_DOWN = auto(), 3, "the BGP daemon (FRR's bgpd, or BIRD) is not running"
    BGP_NOT_CONFIGURED = (auto(), 3, "the BGP daemon runs without the BGP configuration the "
                          "topology needs")
    BGP_NEIGHBOR_MISSING = (auto(), 3, "the neighbour address the topology needs is not "
                            "configured")
    ASN_MISMATCH = auto(), 3, "an AS number differs between the two ends and the topology"
    BGP_TTL = auto(), 3, "eBGP TTL 1 (no multihop) while the path crosses the hub"
    BGP_TCP_BLOCKED = auto(), 3, "TCP port 179 to the neighbour does not answer"
    BGP_SESSION_DOWN = (auto(), 3, "the session is not Established (no more specific cause "
                        "seen)")
    POLICY_MISSING = (auto(), 4, "no import/export policy: the daemon (RFC 8212) exchanges "
                      "no routes")
    PREFIX_NOT_ORIGINATED = auto(), 4, "a machine does not originate a prefix it announces"
    PREFIX_NOT_RECEIVED = auto(), 4, "an expected prefix was not received from its neighbour"
    PREFIX_NOT_INSTALLED = auto(), 4, "a received prefix is not installed in the kernel"
    ANNOUNCED_UNREACHABLE = auto(), 5, "announced addresses do not reach each other"
    MTU_BLACKHOLE = auto(), 5, "full-size packets with DF set are dropped silently"
    MTU_MISMATCH = auto(), 5, "the interface MTU differs from the topology"
    FORWARDING_OFF = auto(), 5, "a client routing a network behind it does not forward"


# By name, in the order above (bottom-up): `wgbgp doctor --codes` lists them so.
CODES: dict[str, Code] = {c.name: c for c in Code}


@dataclass(frozen=True)
class Check:
    """One judged fact about one machine."""

    code: str
    machine: str
    subject: str
    verdict: Verdict
    message: str
    evidence: tuple[str, ...] = ()
    fix: str = ""
    because: str | None = None  # skip: "CODE@machine" of the finding that explains it
    layer: int = -1

    def __post_init__(self) -> None:
        # A Code member is stored as its plain name, so a check compares, prints, pickles
        # and serialises the same however it was made.
        object.__setattr__(self, "code", str(self.code))
        if self.layer < 0:
            object.__setattr__(self, "layer", CODES[self.code].layer)

    @property
    def ref(self) -> str:
        """`CODE@machine`: how a skipped check names the finding that explains it."""
        return f"{self.code}@{self.machine}"

    @property
    def problem(self) -> bool:
        """Whether this check is a finding (a failure or a warning)."""
        return self.verdict in ("fail", "warn")

    def to_json(self) -> dict[str, Any]:
        """The check in the `wgbgp.doctor/1` schema."""
        return {"code": self.code, "machine": self.machine, "subject": self.subject,
                "verdict": self.verdict, "layer": LAYERS[self.layer], "message": self.message,
                "evidence": list(self.evidence), "fix": self.fix, "because": self.because}


@dataclass
class Report:
    """All checks, in the order they were judged (bottom-up)."""

    checks: list[Check] = field(default_factory=list)
    machines: tuple[str, ...] = ()
    unobserved: tuple[str, ...] = ()

    @property
    def findings(self) -> list[Check]:
        """Problems, root causes first: failures before warnings, lower layers first."""
        order = {m: i for i, m in enumerate(self.machines + self.unobserved)}
        probs = [c for c in self.checks if c.problem]
        return sorted(probs, key=lambda c: (c.verdict != "fail", c.layer,
                                             order.get(c.machine, 99)))

    @property
    def healthy(self) -> bool:
        """No check failed (warnings allowed)."""
        return not any(c.verdict == "fail" for c in self.checks)

    @property
    def codes(self) -> list[str]:
        """The findings' codes, root causes first."""
        return [c.code for c in self.findings]

    def to_json(self) -> dict[str, Any]:
        """The report in the `wgbgp.doctor/1` schema."""
        return {"schema": SCHEMA, "healthy": self.healthy, "machines": list(self.machines),
                "unobserved": list(self.unobserved),
                "findings": [c.to_json() for c in self.findings],
                "checks": [c.to_json() for c in self.checks]}
