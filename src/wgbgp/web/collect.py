"""Read every reachable machine at once: status (as `status --json`) and doctor's report
(as `doctor --json`), with observe's own functions, and the live graph of both.

`Source` is what a live view watches: the executors that reach the machines, the plans,
and how to draw it (topology mode, a lab's underlay).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from ..compile import Plan
from ..graph import Graph, Underlay, build_graph, with_status, with_underlay
from ..observe.doctor import diagnose
from ..observe.exporter import peer_names
from ..observe.gather import gather
from ..observe.status import collect
from ..transport import Executor


@dataclass
class Source:
    """The machines a live view reads, and what they should be."""

    name: str  # the network or lab name, for titles
    executors: Mapping[str, Executor]
    plans: dict[str, Plan]
    mode: Literal["mesh", "hub"] = "mesh"
    underlay: Underlay | None = None
    # Doctor sends probes (pings, TCP connects) through the tunnels; off: status only.
    probe: bool = True

    def graph(self) -> Graph:
        g = build_graph(self.plans, self.mode)
        return with_underlay(g, self.underlay) if self.underlay else g


@dataclass(frozen=True)
class Reading:
    """The latest of everything: JSON in the `status --json` and `doctor --json` schemas,
    and the graph coloured by the statuses."""

    taken_at: float
    statuses: dict[str, dict[str, Any]]
    doctor: dict[str, Any] | None
    graph: Graph
    seconds: float = 0.0  # how long reading the statuses took
    doctor_seconds: float | None = None
    doctor_at: float | None = None  # when that report was taken
    errors: dict[str, str] = field(default_factory=dict)


def statuses(source: Source) -> dict[str, dict[str, Any]]:
    """Every machine's `status --json` document, read in parallel."""
    names = peer_names(source.plans)
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = {n: pool.submit(collect, x, source.plans.get(n))
                   for n, x in source.executors.items()}
        return {n: f.result().to_json(names) for n, f in futures.items()}


def doctor(source: Source) -> dict[str, Any]:
    """Doctor's report over every machine (`doctor --json`), probes as the source says."""
    return diagnose(gather(dict(source.executors), source.plans, probe=source.probe),
                    source.plans).to_json()


def read(source: Source, *, with_doctor: bool = True) -> Reading:
    """Status of every machine, doctor's report over all of them, the live graph."""
    t0 = time.monotonic()
    status = statuses(source)
    seconds = time.monotonic() - t0
    report = doctor(source) if with_doctor else None
    now = time.time()
    return Reading(now, status, report, with_status(source.graph(), status), seconds,
                   time.monotonic() - t0 - seconds if with_doctor else None,
                   now if with_doctor else None)
