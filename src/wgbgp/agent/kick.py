"""Start a BGP connection the moment a tunnel handshakes, instead of at the next
connect-retry (5 s in the rendered configs).

The agent reads `wg show all latest-handshakes` a few times a second (one small command).
A handshake time that changed (a first handshake, a rekey, a peer back after a silence)
opens a window of KICK_WINDOW seconds; inside it, each session that is down and only
waiting for its connect-retry timer is started at once: FRR `clear bgp ADDRESS` (resets
only that neighbour, which is not up anyway), BIRD `birdc restart NAME`. Each session is
kicked at most once per KICK_SPACING seconds. Never touched:
- Established sessions, and sessions mid-handshake (OpenSent/OpenConfirm);
- FRR sessions in Idle: FRR holds them itself (its config-pending hold for about a
  second after `vtysh -b` at start, the idle-hold backoff after a failure), a clear does
  not shorten that and restarts the backoff (measured: bench/agent_convergence.py);
- an FRR session in Connect seen for the first time: its SYN may be on its way right
  now (WireGuard sends queued packets once the handshake completes); only one still in
  Connect at the next look (CONNECT_GRACE later) has lost it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..observe import bird
from ..observe.frr import FrrJsonError, parse_neighbors
from ..transport import Executor

KICK_WINDOW = 15.0   # seconds after a handshake during which down sessions are started
KICK_SPACING = 1.0   # seconds between two kicks of one session
CONNECT_GRACE = 0.5  # seconds an FRR session may sit in Connect before it is kicked

Handshakes = dict[tuple[str, str], int]


def parse_handshakes(text: str) -> Handshakes:
    """`wg show all latest-handshakes` -> {(interface, peer key): unix time, 0 = never}."""
    out: Handshakes = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].isdigit():
            out[(parts[0], parts[1])] = int(parts[2])
    return out


def changed(before: Handshakes | None, now: Handshakes) -> list[tuple[str, str]]:
    """Peers whose handshake time moved (all that have one, on the first look)."""
    if before is None:
        return [k for k, t in now.items() if t]
    return [k for k, t in now.items() if t and t != before.get(k)]


@dataclass
class BgpSession:
    """One session as the kicker sees it: how to name it to its daemon, and its state."""

    daemon: str   # frr | bird
    name: str     # FRR: the neighbour address; BIRD: the protocol name
    address: str
    state: str

    @property
    def waiting(self) -> bool:
        """Down, and waiting for a timer the kick may cut short (see the module doc)."""
        if self.daemon == "bird":
            return self.state not in ("Established", "OpenSent", "OpenConfirm")
        return self.state in ("Active", "Connect")


def frr_sessions(summary_json: str) -> list[BgpSession]:
    """FRR's `show bgp summary json` -> sessions (none when FRR did not answer JSON)."""
    try:
        _, _, neighbours = parse_neighbors(summary_json)
    except FrrJsonError:
        return []
    return [BgpSession("frr", n.address, n.address, n.state) for n in neighbours
            if not n.admin_down]


def bird_sessions(protocols_text: str) -> list[BgpSession]:
    """BIRD's `show protocols all` -> BGP sessions."""
    try:
        protocols = bird.parse_protocols(protocols_text)
    except bird.BirdOutputError:
        return []
    out = []
    for p in protocols:
        if p.proto != "BGP" or (p.state == "down" and "disabled" in p.info.lower()):
            continue
        state = p.fields.get("BGP state") or (p.info.split()[0] if p.info else "Down")
        out.append(BgpSession("bird", p.name, p.fields.get("Neighbor address", ""), state))
    return out


@dataclass
class Kicker:
    """Watches handshakes; starts waiting BGP sessions inside the window a handshake opens."""

    executor: Executor
    daemon: str | None  # frr | bird | None (no BGP here: nothing to kick)
    window: float = KICK_WINDOW
    spacing: float = KICK_SPACING
    last: Handshakes | None = None
    window_until: float = 0.0
    kicked: dict[str, float] = field(default_factory=dict)
    connecting: dict[str, float] = field(default_factory=dict)  # FRR: in Connect since

    def look(self, now: float) -> list[str]:
        """One look; the sessions kicked (as log lines)."""
        if self.daemon is None:
            return []
        res = self.executor.run(["wg", "show", "all", "latest-handshakes"], check=False,
                                timeout=10)
        if not res.ok:
            return []
        current = parse_handshakes(res.stdout)
        if changed(self.last, current):
            self.window_until = now + self.window
        self.last = current
        if now > self.window_until:
            return []
        return self.kick_waiting(now)

    def sessions(self) -> list[BgpSession]:
        if self.daemon == "bird":
            res = self.executor.run(["birdc", "show", "protocols", "all"], check=False,
                                    timeout=10)
            return bird_sessions(res.stdout) if res.ok else []
        res = self.executor.run(["vtysh", "-c", "show bgp summary json"], check=False,
                                timeout=10)
        return frr_sessions(res.stdout) if res.ok else []

    def kick_waiting(self, now: float) -> list[str]:
        """Start every waiting session not kicked in the last `spacing` seconds."""
        done = []
        sessions = self.sessions()
        if sessions and all(not s.waiting for s in sessions):
            self.window_until = 0.0  # everything is up: close the window
            return []
        for s in sessions:
            if s.daemon == "frr" and s.state == "Connect":
                since = self.connecting.setdefault(s.name, now)
                if now - since < CONNECT_GRACE:
                    continue
            else:
                self.connecting.pop(s.name, None)
            if not s.waiting or now - self.kicked.get(s.name, -1e9) < self.spacing:
                continue
            argv = (["birdc", "restart", s.name] if s.daemon == "bird"
                    else ["vtysh", "-c", f"clear bgp {s.address}"])
            if self.executor.run(argv, check=False, timeout=10).ok:
                self.kicked[s.name] = now
                self.connecting.pop(s.name, None)
                done.append(f"started BGP session to {s.address or s.name} (was {s.state}) "
                            "on a fresh handshake")
        return done
