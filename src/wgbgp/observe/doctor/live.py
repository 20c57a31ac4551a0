"""Doctor without a topology: judge what a machine shows on its own. Pure.

Without the topology nothing can be compared with an intent, so only self-evident
problems are reported: peers without a recent handshake, BGP sessions that are not
Established (with the daemon's own reason), sessions without policy, bgpd (or BIRD) not
answering.
"""

from __future__ import annotations

from ..gather import Observation
from ..wireguard import REJECT_AFTER_TIME
from .findings import Check, Code, Report


def diagnose_live(observation: Observation) -> Report:
    """Judge each machine of `observation` by what it shows on its own."""
    checks: list[Check] = []
    for m, status in observation.statuses.items():
        for iface in status.interfaces:
            for peer in iface.peers:
                age = peer.handshake_age(status.time)
                subject = f"{iface.name} peer {peer.public_key}"
                if age is not None and age <= REJECT_AFTER_TIME:
                    checks.append(Check(Code.WG_NO_HANDSHAKE, m, subject, "ok",
                                        f"handshake {int(age)} s ago"))
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
            if iface.peers and all(p.keepalive is None for p in iface.peers) \
                    and len(iface.peers) == 1 and iface.peers[0].endpoint:
                checks.append(Check(
                    Code.WG_NO_KEEPALIVE, m, f"{iface.name} peer {iface.peers[0].public_key}",
                    "warn", "no PersistentKeepalive towards the only peer (behind NAT the "
                            "mapping expires when idle)", (),
                    "set `PersistentKeepalive = 25` for that peer"))
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
            continue
        for n in status.bgp.neighbors:
            subject = f"session with {n.name}"
            if not n.established:
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
                    else "apply a prefix-list or route-map in both directions (RFC 8212)"))
    return Report(checks, tuple(observation.statuses), ())
