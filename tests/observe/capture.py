"""Capture doctor fixtures from real wireguard-go and FRR on the throwaway rig (root).

    python tests/observe/capture.py [SCENARIO...]     # default: all

Each scenario injects one fault into a healthy rig, waits for the network to show it,
gathers an Observation exactly as `wgbgp doctor` does, saves it with the rig's topology to
tests/observe/fixtures/doctor/<scenario>.json, and removes the fault again.
Private keys never reach the fixtures (the collector redacts `wg show all dump`).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # labwait

from obsrig import Rig

from labwait import wait_until
from wgbgp.model.keys import generate_private_key, public_key
from wgbgp.observe import gather
from wgbgp.transport import CommandFailed

FIXTURES = Path(__file__).parent / "fixtures" / "doctor"


def bgp_states(rig: Rig) -> list[str]:
    """Each session's state; "Routes" for one Established that has received its prefixes."""
    states = []
    for n in ("laptop", "friend"):
        try:
            data = json.loads(rig.vtysh(n, "show bgp summary json"))
            states += ["Routes" if p["state"] == "Established" and p.get("pfxRcd") else
                       p["state"] for p in data["ipv4Unicast"]["peers"].values()]
        except (CommandFailed, KeyError, json.JSONDecodeError):  # not up yet
            states.append("down")
    return states


def wait(cond: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
    """labwait.wait_until, but the capture goes on after a timeout: it records the state
    it finds, and says it timed out."""
    try:
        wait_until(what, cond, timeout)
    except AssertionError as exc:
        print(f"  ({exc})")


def sessions_down(rig: Rig) -> bool:
    return all(s not in ("Established", "Routes") for s in bgp_states(rig))


def sessions_up(rig: Rig) -> bool:
    return all(s == "Routes" for s in bgp_states(rig))


def vty(rig: Rig, node: str, *lines: str) -> None:
    rig.vtysh(node, "configure terminal", *lines)


def restart_tunnel(rig: Rig, node: str) -> None:
    ex = rig.nodes[node].executor()
    ex.run(["wg-quick", "down", "wg-vps"])
    ex.run(["wg-quick", "up", "wg-vps"])


def key(rig: Rig, node: str) -> str:
    return public_key(rig.keys[node])


# -- faults: (inject, remove, settle) ----------------------------------------------------

def f_healthy(rig: Rig):
    return (lambda: None), (lambda: None), (lambda: sessions_up(rig))


def f_hub_not_forwarding(rig: Rig):
    hub = rig.nodes["vps"].executor()
    return (lambda: hub.run(["sysctl", "-qw", "net.ipv4.ip_forward=0"]),
            lambda: hub.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"]),
            lambda: sessions_down(rig))


def f_hub_firewall(rig: Rig):
    hub = rig.nodes["vps"].executor()
    rule = ["nft", "insert", "rule", "inet", "wgbgp", "forward", "iifname", "wg-vps", "oifname",
            "wg-vps", "drop"]
    return (lambda: hub.run(rule),
            lambda: hub.run(["nft", "-f", "/etc/wgbgp/nftables.nft"]),
            lambda: sessions_down(rig))


def f_ttl1(rig: Rig):
    return (lambda: (vty(rig, "laptop", "router bgp 65010", "no neighbor MESH ebgp-multihop"),
                     rig.vtysh("laptop", "clear bgp *")),
            lambda: (vty(rig, "laptop", "router bgp 65010", "neighbor MESH ebgp-multihop 2"),
                     rig.vtysh("laptop", "clear bgp *")),
            lambda: sessions_down(rig))


def f_hub_allowedips_narrow(rig: Rig):
    hub = rig.nodes["vps"].executor()
    k = key(rig, "laptop")
    return (lambda: hub.run(["wg", "set", "wg-vps", "peer", k, "allowed-ips", "10.0.0.10/32"]),
            lambda: hub.run(["wg", "set", "wg-vps", "peer", k, "allowed-ips",
                             "10.0.0.10/32,100.100.100.1/32"]),
            lambda: True)


def f_client_allowedips_narrow(rig: Rig):
    ex = rig.nodes["laptop"].executor()
    k = key(rig, "vps")
    return (lambda: ex.run(["wg", "set", "wg-vps", "peer", k, "allowed-ips", "10.0.0.1/32"]),
            lambda: ex.run(["wg", "set", "wg-vps", "peer", k, "allowed-ips",
                            "0.0.0.0/0,::/0"]),
            lambda: sessions_down(rig))


def f_udp_blocked(rig: Rig):
    hub = rig.nodes["vps"].executor()

    def inject():
        hub.run(["nft", "add table inet fault; add chain inet fault in "
                 "{ type filter hook input priority -10; }; "
                 "add rule inet fault in iifname c1 udp dport 51820 drop"])
        restart_tunnel(rig, "laptop")

    return (inject, lambda: hub.run(["nft", "delete", "table", "inet", "fault"]),
            lambda: sessions_down(rig))


def f_wrong_key(rig: Rig):
    hub = rig.nodes["vps"].executor()
    k = key(rig, "laptop")
    wrong = public_key(generate_private_key())

    def inject():
        hub.run(["wg", "set", "wg-vps", "peer", k, "remove"])
        hub.run(["wg", "set", "wg-vps", "peer", wrong, "allowed-ips",
                 "10.0.0.10/32,100.100.100.1/32"])
        restart_tunnel(rig, "laptop")

    def remove():
        hub.run(["wg", "set", "wg-vps", "peer", wrong, "remove"])
        hub.run(["wg", "set", "wg-vps", "peer", k, "allowed-ips",
                 "10.0.0.10/32,100.100.100.1/32"])

    return inject, remove, lambda: sessions_down(rig)


def f_udp_blocked_recent(rig: Rig):
    """As udp_blocked, but the client's last handshake is still recent (< 180 s)."""
    hub = rig.nodes["vps"].executor()
    return (lambda: hub.run(["nft", "add table inet fault; add chain inet fault in "
                             "{ type filter hook input priority -10; }; "
                             "add rule inet fault in iifname c1 udp dport 51820 drop"]),
            lambda: hub.run(["nft", "delete", "table", "inet", "fault"]),
            lambda: (time.sleep(3) or True))


def f_wrong_key_recent(rig: Rig):
    """As wrong_key, but the client's last handshake is still recent (< 180 s)."""
    hub = rig.nodes["vps"].executor()
    k = key(rig, "laptop")
    wrong = public_key(generate_private_key())

    def inject():
        hub.run(["wg", "set", "wg-vps", "peer", k, "remove"])
        hub.run(["wg", "set", "wg-vps", "peer", wrong, "allowed-ips",
                 "10.0.0.10/32,100.100.100.1/32"])

    def remove():
        hub.run(["wg", "set", "wg-vps", "peer", wrong, "remove"])
        hub.run(["wg", "set", "wg-vps", "peer", k, "allowed-ips",
                 "10.0.0.10/32,100.100.100.1/32"])

    return inject, remove, lambda: (time.sleep(3) or True)


def f_nat_expired(rig: Rig):
    """Client `laptop` behind a stateful firewall with a 3 s UDP timeout, no keepalive."""
    ex = rig.nodes["laptop"].executor()
    k = key(rig, "vps")

    def inject():
        ex.run(["nft", "add table inet fault; add chain inet fault in "
                "{ type filter hook input priority -10; }; "
                "add rule inet fault in iifname eth0 ct state new drop"])
        ex.run(["sysctl", "-qw", "net.netfilter.nf_conntrack_udp_timeout=3",
                "net.netfilter.nf_conntrack_udp_timeout_stream=3"])
        ex.run(["wg", "set", "wg-vps", "peer", k, "persistent-keepalive", "0"])

    def remove():
        ex.run(["nft", "delete", "table", "inet", "fault"])
        ex.run(["wg", "set", "wg-vps", "peer", k, "persistent-keepalive", "25"])
        ex.run(["sysctl", "-qw", "net.netfilter.nf_conntrack_udp_timeout=30",
                "net.netfilter.nf_conntrack_udp_timeout_stream=120"])

    return inject, remove, lambda: (time.sleep(8) or True)


def f_asn_mismatch(rig: Rig):
    return (lambda: vty(rig, "laptop", "router bgp 65010", "neighbor 10.0.0.2 remote-as 65099"),
            lambda: vty(rig, "laptop", "router bgp 65010", "neighbor 10.0.0.2 remote-as 65020"),
            lambda: sessions_down(rig) and time.sleep(6) is None)


def f_policy_missing(rig: Rig):
    af = ("router bgp 65010", "address-family ipv4 unicast")
    return (lambda: (vty(rig, "laptop", *af, "no neighbor MESH prefix-list OWN out",
                         "no neighbor 10.0.0.2 prefix-list FROM-friend in"),
                     rig.vtysh("laptop", "clear bgp * soft")),
            lambda: (vty(rig, "laptop", *af, "neighbor MESH prefix-list OWN out",
                         "neighbor 10.0.0.2 prefix-list FROM-friend in"),
                     rig.vtysh("laptop", "clear bgp * soft")),
            lambda: (time.sleep(3) or True))


def f_mtu_blackhole(rig: Rig):
    hub = rig.nodes["vps"].executor()
    return (lambda: hub.run(["nft", "add table inet fault; "
                             "add chain inet fault in { type filter hook input priority -10; }; "
                             "add chain inet fault out "
                             "{ type filter hook output priority -10; }; "
                             "add rule inet fault in iifname c1 meta length > 1400 drop; "
                             "add rule inet fault out oifname c1 meta length > 1400 drop"]),
            lambda: hub.run(["nft", "delete", "table", "inet", "fault"]),
            lambda: True)


def f_frr_down(rig: Rig):
    return (lambda: rig.stop_frr("laptop"), lambda: rig.start_frr("laptop"),
            lambda: sessions_down(rig))


def f_neighbor_address(rig: Rig):
    return (lambda: vty(rig, "laptop", "router bgp 65010", "no neighbor 10.0.0.2",
                        "neighbor 10.0.0.3 remote-as 65020", "neighbor 10.0.0.3 peer-group MESH",
                        "neighbor 10.0.0.3 description friend"),
            lambda: vty(rig, "laptop", "router bgp 65010", "no neighbor 10.0.0.3",
                        "neighbor 10.0.0.2 remote-as 65020", "neighbor 10.0.0.2 peer-group MESH",
                        "neighbor 10.0.0.2 description friend", "address-family ipv4 unicast",
                        "neighbor 10.0.0.2 prefix-list FROM-friend in"),
            lambda: sessions_down(rig))


SCENARIOS = {name[2:]: f for name, f in globals().items() if name.startswith("f_")}


def capture(rig: Rig, name: str) -> None:
    print(f"{name}: injecting")
    inject, remove, settle = SCENARIOS[name](rig)
    inject()
    try:
        wait(settle, 60, f"{name} to show")
        obs = gather(rig.executors(), rig.plans)
        data = {"scenario": name, "topology": rig.topology_text, **obs.to_json()}
        FIXTURES.mkdir(parents=True, exist_ok=True)
        (FIXTURES / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n")
        print(f"{name}: saved, {len(obs.probes)} probes")
    finally:
        remove()
        wait(lambda: sessions_up(rig), 60, "sessions to recover")


def main(names: list[str]) -> None:
    rig = Rig("capture")
    rig.up()
    try:
        rig.wait_established(60)
        for name in names or list(SCENARIOS):
            capture(rig, name)
    finally:
        rig.down()


if __name__ == "__main__":
    main(sys.argv[1:])
