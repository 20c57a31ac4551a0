"""faults.parse_ping: the outage measure of the failover tests and benchmark. Pure."""

from __future__ import annotations

import pytest

from wgbgp.lab.faults import parse_ping

OUTPUT = """\
PING 100.100.32.1 (100.100.32.1) from 100.100.31.1 : 56(84) bytes of data.
[1700000000.000100] 64 bytes from 100.100.32.1: icmp_seq=1 ttl=63 time=0.9 ms
[1700000000.100100] 64 bytes from 100.100.32.1: icmp_seq=2 ttl=63 time=0.9 ms
[1700000001.000200] 64 bytes from 100.100.32.1: icmp_seq=11 ttl=63 time=0.9 ms
[1700000001.100200] 64 bytes from 100.100.32.1: icmp_seq=12 ttl=63 time=0.9 ms

--- 100.100.32.1 ping statistics ---
12 packets transmitted, 4 received, 66.6667% packet loss, time 1100ms
"""


def test_outage_is_lost_times_interval_and_gap_is_measured():
    r = parse_ping(OUTPUT, 0.1)
    assert (r.sent, r.received, r.lost) == (12, 4, 8)
    assert r.outage == pytest.approx(0.8)
    assert r.longest_gap == pytest.approx(0.8, abs=1e-3)


def test_not_ping_output():
    with pytest.raises(ValueError):
        parse_ping("connect: Network is unreachable\n", 0.1)
