"""Read the machines again and again, in threads; the page serves the latest reading.

Two loops, so that a slow doctor (it probes through the tunnels, and a dead tunnel makes
probes wait for their timeouts) never delays what the page shows: statuses and the graph
every `interval` seconds, doctor's report every `doctor_interval` seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..graph import with_status
from .collect import Reading, Source, doctor, statuses
from .draw import DrawError, draw


@dataclass(frozen=True)
class Latest:
    """The newest reading, its SVG, and a version the page polls for."""

    reading: Reading | None = None
    svg: bytes = b""
    version: int = 0
    error: str = ""


class Watcher:
    """The loops and their latest reading (thread-safe)."""

    def __init__(self, source: Source, interval: float = 1.0,
                 doctor_interval: float = 5.0) -> None:
        self.source = source
        self.interval = interval
        self.doctor_interval = doctor_interval
        self._latest = Latest()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._ready = threading.Event()

    def get(self) -> Latest:
        with self._lock:
            return self._latest

    def _publish(self, change: Callable[[Latest], Latest]) -> None:
        with self._lock:
            new = change(self._latest)
            self._latest = replace(new, version=self._latest.version + 1)

    def read_status(self) -> None:
        """Read every machine's status, colour and draw the graph, publish."""
        t0 = time.monotonic()
        status = statuses(self.source)
        graph = with_status(self.source.graph(), status)
        seconds = time.monotonic() - t0
        try:
            svg, error = draw(graph, "svg"), ""
        except DrawError as exc:
            svg, error = b"", str(exc)

        def change(old: Latest) -> Latest:
            r = old.reading
            reading = Reading(time.time(), status, r.doctor if r else None, graph, seconds,
                              r.doctor_seconds if r else None, r.doctor_at if r else None,
                              r.errors if r else {})
            return Latest(reading, svg or old.svg, old.version, error)
        self._publish(change)

    def read_doctor(self) -> None:
        """Run doctor over every machine, publish its report."""
        t0, at = time.monotonic(), time.time()
        errors: dict[str, str] = {}
        report: dict[str, Any] | None
        try:
            report = doctor(self.source)
        except Exception as exc:  # noqa: BLE001 - a watcher thread must not die; the page says why; the statuses still show
            report, errors = None, {"doctor": f"{type(exc).__name__}: {exc}"}
        seconds = time.monotonic() - t0

        def change(old: Latest) -> Latest:
            r = old.reading
            if r is None:
                return old
            return replace(old, reading=replace(
                r, doctor=report if report is not None else r.doctor,
                doctor_seconds=seconds, doctor_at=at if report is not None else r.doctor_at,
                errors=errors))
        self._publish(change)
        self._ready.set()

    def start(self) -> None:
        """Read once (statuses, then doctor) in the loops' threads, and go on."""
        for target, every in ((self.read_status, self.interval),
                              (self.read_doctor, self.doctor_interval)):
            t = threading.Thread(target=self._loop, args=(target, every), daemon=True,
                                 name=f"wgbgp-web-{target.__name__}")
            self._threads.append(t)
            t.start()

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the first doctor report is in (statuses come first)."""
        return self._ready.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def _loop(self, read: Callable[[], None], every: float) -> None:
        if read == self.read_doctor:
            # The first doctor run waits for the first statuses, so the page has a body.
            while self.get().reading is None and not self._stop.wait(0.05):
                pass
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                read()
            except Exception as exc:  # noqa: BLE001 - keep serving the last reading; say why it is old
                why = f"reading failed: {type(exc).__name__}: {exc}"

                def failed(old: Latest, why: str = why) -> Latest:
                    return replace(old, error=why)
                self._publish(failed)
            self._stop.wait(max(0.0, every - (time.monotonic() - started)))
