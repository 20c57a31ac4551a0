"""The words and commands of one machine's BGP daemon, for messages and fixes. Pure.

A BIRD node gets BIRD's words and commands, an FRR node FRR's.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Daemon:
    """How one machine's BGP daemon is named, configured and asked."""

    kind: str  # "frr" | "bird"

    @property
    def bird(self) -> bool:
        """Whether the daemon is BIRD (else FRR)."""
        return self.kind == "bird"

    @property
    def name(self) -> str:
        """`BIRD` or `FRR`."""
        return "BIRD" if self.bird else "FRR"

    @property
    def process(self) -> str:
        """The process that speaks BGP (the subject of BGP_DAEMON_DOWN)."""
        return "bird" if self.bird else "bgpd"

    @property
    def conf(self) -> str:
        """The name of the rendered config file."""
        return "bird.conf" if self.bird else "frr.conf"

    def cli(self) -> str:
        """The daemon's command-line client."""
        return "birdc" if self.bird else "vtysh"

    def show_session(self, peer: str, address: object) -> str:
        """The command that shows one session in detail, and where the daemon logs."""
        if self.bird:
            return (f'`birdc show protocols all "{bird_proto(peer)}*"` and BIRD\'s log '
                    f"(syslog)")
        return f"`vtysh -c 'show bgp neighbors {address}'` and FRR's log"

    def start_fix(self, m: str) -> str:
        """How to start the daemon on `m` again, and where to read why it stopped."""
        if self.bird:
            return (f"on {m}: `wgbgp apply` starts BIRD again (`bird -c /etc/bird/bird.conf`, "
                    f"or `systemctl start bird`); `bird -p -c /etc/bird/bird.conf` checks "
                    f"its config, and the system log says why it stopped")
        return (f"on {m}: enable bgpd=yes in /etc/frr/daemons and (re)start FRR "
                f"(`systemctl restart frr` or /usr/lib/frr/frrinit.sh restart); "
                f"its log says why it stopped")

    def neighbor_line(self, address: object, asn: int) -> str:
        """The config line that declares a neighbour at `address` in AS `asn`."""
        return (f"`neighbor {address} as {asn};` in its BGP protocol" if self.bird
                else f"`neighbor {address} remote-as {asn}`")


def bird_proto(peer: str) -> str:
    """The start of the BIRD protocol names wgbgp renders for sessions with `peer`."""
    return peer.replace("-", "_") + "_"


def afi(prefix: object) -> str:
    """The address family of a prefix, as FRR's `address-family` names it."""
    return "ipv6" if getattr(prefix, "version", 4) == 6 else "ipv4"


def ip_keyword(prefix: object) -> str:
    """FRR's keyword for a prefix's family in `show ... route`."""
    return "ipv6" if getattr(prefix, "version", 4) == 6 else "ip"
