"""Doctor without a topology: judge what a machine shows on its own. Pure.

Without the topology (and without the intent apply leaves) nothing can be compared with
a plan, so what is reported is what the machine shows by itself: the configuration
mistakes of `local` (an interface down, a neighbour outside every AllowedIPs, no
keepalive behind NAT, TTL 1 through a hub, no outbound policy, a network without a
route), then peers without a recent handshake, BGP sessions that are not Established
(with the daemon's own reason), sessions without policy, bgpd (or BIRD) not answering.
A symptom that one of those mistakes explains is skipped `because` of it.
"""

from __future__ import annotations

from ..gather import Observation
from ..status import MachineStatus
from ..wireguard import REJECT_AFTER_TIME
from .findings import Check, Code, Report
from .local import covering, judge_local


def diagnose_live(observation: Observation) -> Report:
    """Judge each machine of `observation` by what it shows on its own."""
    checks: list[Check] = []
    for m, status in observation.statuses.items():
        local = judge_local(m, status)
        checks += [c for c in local if c.layer <= 1]
        checks += handshakes(m, status, local)
        checks += sessions(m, status, local)
        checks += [c for c in local if c.layer > 1 and c not in checks]
    return Report(checks, tuple(observation.statuses), ())


def _skip(code: str, m: str, subject: str, cause: Check) -> Check:
    return Check(code, m, subject, "skip", f"not judged: {cause.code} on {m} explains it",
                 because=cause.ref)


def handshakes(m: str, status: MachineStatus, local: list[Check]) -> list[Check]:
    """A recent handshake with each peer we dial (a peer that dials us may be offline)."""
    checks = []
    for iface in status.interfaces:
        down = next((c for c in local if c.code == Code.WG_INTERFACE_DOWN
                     and c.subject == f"interface {iface.name}"), None)
        for peer in iface.peers:
            age = peer.handshake_age(status.time)
            subject = f"{iface.name} peer {peer.public_key}"
            if age is not None and age <= REJECT_AFTER_TIME:
                checks.append(Check(Code.WG_NO_HANDSHAKE, m, subject, "ok",
                                    f"handshake {int(age)} s ago"))
                continue
            # WireGuard handshakes only when it has something to send: with no keepalive
            # and every neighbour outside AllowedIPs, it never has.
            outside = next((c for c in local if c.code == Code.NEIGHBOR_OUTSIDE_ALLOWEDIPS
                            and iface.name in c.message), None)
            cause = down or (outside if peer.keepalive is None else None)
            if cause:
                checks.append(_skip(Code.WG_NO_HANDSHAKE, m, subject, cause))
                continue
            # A peer we dial (keepalive set, like a client's hub) must be up; a peer
            # that dials us (a hub's client) may simply be offline.
            dialled = peer.keepalive is not None or len(iface.peers) == 1
            checks.append(Check(
                Code.WG_NO_HANDSHAKE, m, subject, "fail" if dialled else "warn",
                f"no recent handshake with peer {peer.public_key} on {iface.name}",
                (f"latest handshake: {'never' if age is None else f'{int(age)} s ago'}",
                 f"endpoint {peer.endpoint or '(none)'}, {peer.tx_bytes} bytes sent, "
                 f"{peer.rx_bytes} received"),
                "check the peer is up, its Endpoint and both public keys, and that UDP "
                "is not blocked; pass the topology to doctor for a precise diagnosis"))
    return checks


def sessions(m: str, status: MachineStatus, local: list[Check]) -> list[Check]:
    """The BGP daemon answers, and each session is Established with policy both ways."""
    checks: list[Check] = []
    err = status.errors.get("bgp", "")
    bird = status.bgp_daemon == "bird"
    if status.bgp is None:
        if status.bgp_asked and err and "command not found" not in err:
            # No FRR daemon at all may be intended (a hub); FRR without bgpd is not.
            nothing = "any daemons" in err
            checks.append(Check(Code.BGP_DAEMON_DOWN, m, "bgpd", "warn" if nothing else "fail",
                                f"bgpd is not answering on {m}", (f"vtysh: {err}",),
                                "if this machine speaks BGP: start FRR with bgpd enabled "
                                "in /etc/frr/daemons (or BIRD, if it runs BIRD: "
                                "`bird -c /etc/bird/bird.conf`)"))
        return checks
    for n in status.bgp.neighbors:
        subject = f"session with {n.name}"
        if not n.established:
            cause = next((c for c in local if c.verdict == "fail" and (
                c.subject in (f"neighbour {n.address}", f"session with {n.address}")
                or (c.code == Code.WG_INTERFACE_DOWN and any(
                    c.subject == f"interface {i.name}"
                    for i, _, _ in covering(status, n.address))))), None)
            if cause:
                checks.append(_skip(Code.BGP_SESSION_DOWN, m, subject, cause))
                continue
            note = n.last_notification or ""
            code = Code.ASN_MISMATCH if "bad peer as" in note.lower() else Code.BGP_SESSION_DOWN
            checks.append(Check(
                code, m, subject, "fail", f"session with {n.address} is {n.state}",
                tuple(x for x in (f"last reset: {n.last_reset}" if n.last_reset else "",
                                  f"last notification: {note}" if note else "",
                                  f"ebgp-multihop: {n.multihop}" if n.multihop else "")
                      if x),
                ("compare `neighbor ... as` and `multihop` (2 through a hub) on both "
                 "ends (`birdc show protocols all`); " if bird else
                 "compare remote-as and ebgp-multihop (2 through a hub) on both ends; ")
                + "pass the topology to doctor for a precise diagnosis"))
            continue
        checks.append(Check(Code.BGP_SESSION_DOWN, m, subject, "ok", "Established"))
        if n.policy_in is False or n.policy_out is False:
            blocked = (n.policy_in is False and not n.prefixes_received) or (
                n.policy_out is False and not n.prefixes_sent)
            checks.append(Check(
                Code.POLICY_MISSING, m, subject, "fail" if blocked else "warn",
                f"no {'import' if n.policy_in is False else 'export'} policy for "
                f"{n.address}",
                (f"{n.prefixes_received} received, {n.prefixes_sent} sent",),
                "give the channel an import and an export filter (RFC 8212)" if bird
                else f"apply a prefix-list or route-map in both directions (RFC 8212): "
                     f"`neighbor {n.address} route-map NAME in|out`"))
    return checks
