"""Long prefix lists as text, fast: the import list of a hub-mode client.

A client of a route server imports every other client's prefixes, so with N clients each
client's frr.conf (or bird.conf) holds a list of about N entries and the whole network's
configs N^2: 2,000 clients with two prefixes each are 8 million lines. Through a Jinja
loop each line cost about 4 us (the loop, `loop.index`, a filter, the finalizer, and
ipaddress's str(), hashing included); here it costs a few dozen ns, and the text is the
same byte for byte (tests/render/test_render_node.py renders both ways).

The line formats are those the templates wrote: the templates call these as filters
(`frr_prefix_list`, `bird_prefix_set`) where the list goes.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import is_, itemgetter

from ..compile.plan import Prefix

# A prefix's text, by the identity of the prefix object. Plans share their prefix
# objects (every client's list holds the same objects, from the topology), and an
# ipaddress network hashes in Python, as slowly as it formats: id() does not. Each entry
# keeps its object alive, so an id is never reused while it is cached.
_TEXTS: dict[int, tuple[Prefix, str]] = {}
_MAX_TEXTS = 1 << 18
# "ip prefix-list NAME seq 5 permit ", "... seq 10 permit ", ...: by (ip, name).
_HEADS: dict[tuple[str, str], list[str]] = {}


def prefix_text(prefix: Prefix) -> str:
    """str(prefix), remembered by the object's identity."""
    hit = _TEXTS.get(id(prefix))
    if hit is not None and hit[0] is prefix:
        return hit[1]
    if len(_TEXTS) >= _MAX_TEXTS:
        _TEXTS.clear()
    text = str(prefix)
    _TEXTS[id(prefix)] = (prefix, text)
    return text


def _texts(prefixes: Sequence[Prefix], longest: Sequence[int | None], bird: bool
           ) -> list[str]:
    """Each prefix with its longest accepted more-specific (`longest`, per prefix; empty:
    none) as FRR's `P[ le N]` or BIRD's `P[{len,N}]`; a length not longer than the
    prefix's own means exactly it. The common case (every prefix seen before, no
    lengths) runs in C: map() over the cache, one identity check for all."""
    hits = list(map(_TEXTS.get, map(id, prefixes)))
    if None in hits or not all(map(is_, map(itemgetter(0), hits), prefixes)):  # type: ignore[arg-type]
        hits = [(p, prefix_text(p)) for p in prefixes]
    texts: list[str] = list(map(itemgetter(1), hits))  # type: ignore[arg-type]
    if longest and longest.count(None) != len(longest):
        for i, (prefix, n) in enumerate(zip(prefixes, longest, strict=True)):
            if n is not None and n > prefix.prefixlen:
                texts[i] += f"{{{prefix.prefixlen},{n}}}" if bird else f" le {n}"
    return texts


def _heads(ip: str, name: str, count: int) -> list[str]:
    """The first `count` line heads of prefix-list `name`: sequence numbers 5, 10, ..."""
    heads = _HEADS.setdefault((ip, name), [])
    for seq in range(len(heads) + 1, count + 1):
        heads.append(f"{ip} prefix-list {name} seq {seq * 5} permit ")
    return heads[:count]


def frr_prefix_list(prefixes: Sequence[Prefix], longest: Sequence[int | None], ip: str,
                    name: str) -> str:
    """`ip prefix-list NAME seq 5 permit P[ le N]` lines, one per prefix (sequence numbers
    5, 10, ...), joined by newlines, without a final one (the template's line ends it).
    `longest`: per prefix, the longest more-specific accepted (empty: none)."""
    tails = _texts(prefixes, longest, bird=False)
    lines: list[str] = [""] * (3 * len(tails))
    lines[0::3] = _heads(ip, name, len(tails))
    lines[1::3] = tails
    lines[2::3] = ["\n"] * len(tails)
    return "".join(lines[:-1])


def bird_prefix_set(prefixes: Sequence[Prefix], longest: Sequence[int | None]) -> str:
    """The members of a BIRD prefix set, `P` or `P{len,N}`, joined by ", "."""
    return ", ".join(_texts(prefixes, longest, bird=True))
