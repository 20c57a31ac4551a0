"""The lab picks its own addresses around the topology's (issue 15 point 1). Pure."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from wgbgp.lab.fromtopology import choose_ranges, spec_for
from wgbgp.lab.spec import LabRanges, LabSpec, LabSpecError
from wgbgp.lab.underlay import plan_underlay
from wgbgp.model import parse

TOPOLOGY = """\
network: {{name: anyt, overlay: {overlay}}}
hubs:
  vps: {{endpoint: {hub}:51820}}
nodes:
  home-server: {{asn: 65301, announce: [{lan}]}}
  roamer: {{asn: 65302, announce: [{other}]}}
lab:
  nodes:
    home-server: {{home_nat: true}}
"""


def _spec(overlay: str = "10.40.0.0/24", hub: str = "203.0.113.40",
          lan: str = "192.168.201.0/24", other: str = "100.100.31.1/32") -> LabSpec:
    topology, _ = parse(TOPOLOGY.format(overlay=overlay, hub=hub, lan=lan, other=other),
                        "t.yaml")
    return spec_for(topology, "anyt")


def _lab_addresses(spec: LabSpec) -> list[IPv4Network]:
    plan = plan_underlay(spec)
    out = [IPv4Network(a) for a in (*plan.address.values(), *plan.carrier_ip.values(),
                                    *plan.mgmt_ip.values(), *plan.gateway.values())]
    return [n for n in out if n.network_address not in {h.public_ip for h in spec.hubs}]


def test_defaults_are_the_first_choices() -> None:
    assert choose_ranges([]) == LabRanges()


def test_a_home_lan_announcement_moves_the_labs_home_range() -> None:
    spec = _spec()
    lan = IPv4Network("192.168.201.0/24")
    assert not spec.ranges.homes.overlaps(lan)
    assert not any(a.overlaps(lan) for a in _lab_addresses(spec))
    # The home router's LAN still exists, from the range the lab chose instead.
    assert plan_underlay(spec).address["home-server"] in spec.ranges.homes


@pytest.mark.parametrize("hub", ["198.18.0.1", "198.18.5.10", "198.19.0.5", "198.51.100.1",
                                 "192.0.2.10", "203.0.113.1", "8.8.8.8"])
def test_hubs_at_assorted_public_addresses(hub: str) -> None:
    spec = _spec(hub=hub)
    plan = plan_underlay(spec)
    assert plan.public_ip("vps") == IPv4Address(hub)
    assert IPv4Network(f"{hub}/32") not in _lab_addresses(spec)
    assert all(not net.overlaps(IPv4Network(f"{hub}/32"))
               for net in spec.ranges.named().values())


def test_an_overlay_in_cgnat_space_moves_the_subscribers() -> None:
    spec = _spec(overlay="100.64.0.0/10", other="10.99.0.1/32")
    assert not spec.ranges.subscribers.overlaps(IPv4Network("100.64.0.0/10"))
    plan_underlay(spec)


def test_the_ranges_travel_with_the_spec() -> None:
    spec = _spec(hub="198.19.0.5")
    assert spec.ranges.mgmt != LabRanges().mgmt
    assert LabSpec.from_dict(spec.to_dict()) == spec
    old = spec.to_dict()
    del old["ranges"]  # a lab started before ranges were recorded: the old fixed plan
    assert LabSpec.from_dict(old).ranges == LabRanges()


def test_nothing_free_is_a_clear_error() -> None:
    everything = [IPv4Network("0.0.0.0/1"), IPv4Network("128.0.0.0/1")]
    with pytest.raises(LabSpecError, match="no free range for the lab's inet_gw"):
        choose_ranges(everything)
