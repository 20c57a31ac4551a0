"""Doctor: from what was observed to what is wrong, why, and how to fix it. Pure.

Input: an `Observation` (snapshots of the machines we could reach, probe results) and
the plans of the whole topology. Output: a `Report` of checks, bottom-up in layers:

    1 tunnel   the WireGuard interface, keys, endpoint, handshake, keepalive/NAT, hub ping
    2 overlay  a peer's tunnel address answers through the hub (the hub forwards)
    3 bgp      daemon, neighbour config (address, ASN, TTL), TCP 179, session Established
    4 routes   policy (RFC 8212), each expected prefix received and installed
    5 data     announced address to announced address, full-size packets (MTU)

Each check has a stable code, a verdict (ok/warn/fail/skip), evidence and a fix. A
layer is only judged where the layers below it work: a session that is down because
there is no handshake is `skip`, `because` the handshake finding, so the first failing
finding is the root cause and symptoms are not reported as separate problems.
Configuration facts that break a layer (a key, AllowedIPs, ip_forward, a missing
daemon) are checked on every machine regardless and are what symptoms are blamed on.

The modules: `findings` (codes, `Check`, `Report`), `context` (what the judges share),
one module per layer (`tunnel` and `handshake`, `forwarding`, `bgp`, `routes`,
`datapath`), `run` (their order), and `live` (the doctor without a topology).
"""

from .findings import CODES, LAYERS, SCHEMA, Check, Code, Report, Verdict
from .live import diagnose_live
from .run import diagnose

__all__ = ["CODES", "LAYERS", "SCHEMA", "Check", "Code", "Report", "Verdict", "diagnose",
           "diagnose_live"]
