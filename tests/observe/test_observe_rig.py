"""Collectors against real wireguard-go and FRR on the throwaway rig (obsrig.py).

Part of the default suite (root and the tools required, else skipped): a three-machine
network is up in a few seconds, and this is where the parsers meet the real tools'
current output rather than the captured fixtures.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from obsrig import Rig

from wgbgp.observe import collect, diagnose, gather

pytestmark = pytest.mark.real_tools("wg", "wg-quick", "wireguard-go", "vtysh", "nft",
                                    "nsenter", "unshare", root=True)


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    r = Rig(f"t{os.getpid() % 10**6}")
    r.up()
    try:
        r.wait_established(60)
        yield r
    finally:
        r.down()


def test_collect_reads_the_real_daemons(rig: Rig) -> None:
    for name, plan in rig.plans.items():
        status = collect(rig.nodes[name].executor(), plan)
        assert not status.errors, status.errors
        (iface,) = status.interfaces
        assert iface.name == "wg-vps" and len(iface.peers) == len(plan.tunnels[0].peers)
        assert status.mtus["wg-vps"] == plan.tunnels[0].mtu
        if plan.bgp:
            assert status.bgp is not None and status.bgp.asn == plan.bgp.asn
            (n,) = status.bgp.neighbors
            assert n.established and n.multihop == 2 and n.policy_in and n.policy_out


def test_doctor_healthy_then_hub_not_forwarding(rig: Rig) -> None:
    report = diagnose(gather(rig.executors(), rig.plans), rig.plans)
    assert report.healthy and not report.findings, report.codes
    hub = rig.nodes["vps"].executor()
    hub.run(["sysctl", "-qw", "net.ipv4.ip_forward=0"])
    try:
        report = diagnose(gather(rig.executors(), rig.plans), rig.plans)
    finally:
        hub.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    assert report.codes == ["HUB_NOT_FORWARDING"], report.codes
