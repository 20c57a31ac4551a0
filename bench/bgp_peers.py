"""Many minimal BGP speakers in one process: the clients of a route-server benchmark.

Standalone (standard library only), run inside a lab machine:
    python3 bgp_peers.py HUB_ADDRESS PEERS.json [--passive]
PEERS.json: [{"address": "10.0.0.5", "asn": 4200000005, "prefix": "100.64.5.0/24"}, ...].
Each peer binds its own source address, opens one eBGP session to HUB_ADDRESS:179 (with
--passive: listens on its address, port 179, for the hub to connect, as a real client's
daemon does, so that a hub restart is not paced by the hub's listen queue)
(4-octet AS, IPv4 unicast), announces its prefix with itself as next hop, then keeps the
session alive (KEEPALIVE every 10 s) and discards, unparsed, whatever the hub sends. It
prints "established N" when the count changes, and runs until killed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import struct
import sys

MARKER = b"\xff" * 16
AS_TRANS = 23456
HOLD = 30
OPEN_WAIT = 10  # s for the TCP connection, then for the hub's OPEN and KEEPALIVE


def message(kind: int, body: bytes) -> bytes:
    return MARKER + struct.pack("!HB", 19 + len(body), kind) + body


def open_message(asn: int, router_id: str) -> bytes:
    caps = (b"\x01\x04\x00\x01\x00\x01"          # multiprotocol: IPv4 unicast
            + b"\x41\x04" + struct.pack("!I", asn)  # 4-octet AS
            + b"\x02\x00")                          # route refresh
    params = b"\x02" + bytes([len(caps)]) + caps
    body = struct.pack("!BHH4sB", 4, asn if asn < 65536 else AS_TRANS, HOLD,
                       ipaddress.IPv4Address(router_id).packed, len(params)) + params
    return message(1, body)


def update_message(asn: int, next_hop: str, prefix: str) -> bytes:
    net = ipaddress.IPv4Network(prefix)
    origin = b"\x40\x01\x01\x00"                                   # IGP
    as_path = b"\x40\x02\x06\x02\x01" + struct.pack("!I", asn)     # AS_SEQUENCE [asn]
    nh = b"\x40\x03\x04" + ipaddress.IPv4Address(next_hop).packed
    attrs = origin + as_path + nh
    nbytes = (net.prefixlen + 7) // 8
    nlri = bytes([net.prefixlen]) + net.network_address.packed[:nbytes]
    return message(2, struct.pack("!H", 0) + struct.pack("!H", len(attrs)) + attrs + nlri)


KEEPALIVE = message(4, b"")


class Counter:
    def __init__(self) -> None:
        self.established = 0
        self.shown = -1

    def show(self) -> None:
        if self.established != self.shown:
            self.shown = self.established
            print(f"established {self.established}", flush=True)


async def read_message(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    header = await reader.readexactly(19)
    length, kind = struct.unpack("!HB", header[16:19])
    return kind, await reader.readexactly(length - 19)


async def keepalive(writer: asyncio.StreamWriter) -> None:
    while True:
        await asyncio.sleep(10)
        writer.write(KEEPALIVE)
        await writer.drain()


async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, p: dict,
                  counter: Counter) -> None:
    """One BGP session on an open connection, whoever opened it, until it closes."""
    up = False
    try:
        writer.write(open_message(p["asn"], p["address"]))
        # Bounded, as a BGP speaker's timers bound it: a hub that drops connections from
        # a full listen queue (BIRD's is 8 deep) leaves a client believing it is
        # connected and waiting for an OPEN that never comes; retry instead.
        kind, _ = await asyncio.wait_for(read_message(reader), OPEN_WAIT)
        if kind != 1:
            raise ConnectionError("no OPEN")
        writer.write(KEEPALIVE)
        while (await asyncio.wait_for(read_message(reader), OPEN_WAIT))[0] != 4:
            pass
        up = True
        counter.established += 1
        counter.show()
        writer.write(update_message(p["asn"], p["address"], p["prefix"]))
        await writer.drain()
        task = asyncio.create_task(keepalive(writer))
        try:
            # Discard what the hub sends unparsed, until it closes: a route server of N
            # clients sends each of them N-1 routes (25 million UPDATEs for 5,000), and
            # parsing them here would make this process, not the hub, the limit. A
            # NOTIFICATION is followed by the hub closing the connection.
            while await reader.read(1 << 16):
                pass
        finally:
            task.cancel()
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()
    if up:
        counter.established -= 1
        counter.show()


async def peer(hub: str, p: dict, counter: Counter) -> None:
    """Active: connect to the hub, and again 2 s after every failure."""
    while True:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                hub, 179, local_addr=(p["address"], 0)), OPEN_WAIT)
        except (TimeoutError, OSError):
            await asyncio.sleep(2)
            continue
        await session(reader, writer, p, counter)
        await asyncio.sleep(2)


async def listen(p: dict, counter: Counter) -> asyncio.Server:
    """Passive: accept the hub's connections on this client's address, port 179, as a
    client's BGP daemon does (the hub connects out to every client it has configured)."""
    async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await session(reader, writer, p, counter)
    return await asyncio.start_server(accepted, p["address"], 179, backlog=16)


async def main() -> None:
    hub, path = sys.argv[1], sys.argv[2]
    passive = "--passive" in sys.argv[3:]
    with open(path) as fh:
        peers = json.load(fh)
    counter = Counter()
    counter.show()
    if passive:
        servers = [await listen(p, counter) for p in peers]
        await asyncio.gather(*(s.serve_forever() for s in servers))
    else:
        await asyncio.gather(*(peer(hub, p, counter) for p in peers))


if __name__ == "__main__":
    asyncio.run(main())
