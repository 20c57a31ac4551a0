"""Polling, not sleeping: lab tests wait for a condition, bounded, and say what they waited
for. On a loaded machine a fixed sleep is either too short (flaky) or too long (slow)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(what: str, condition: Callable[[], T], timeout: float = 60,
               interval: float = 0.5, detail: Callable[[], object] | None = None) -> T:
    """Poll `condition` until it returns something true, and return that; AssertionError
    naming `what` (and `detail()`, if given) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            extra = f": {detail()}" if detail is not None else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{extra}")
        time.sleep(interval)


def stays(what: str, condition: Callable[[], object], duration: float,
          interval: float = 0.5, detail: Callable[[], object] | None = None) -> None:
    """Assert that `condition` holds at every poll for `duration` seconds."""
    deadline = time.monotonic() + duration
    while True:
        if not condition():
            extra = f": {detail()}" if detail is not None else ""
            raise AssertionError(f"{what} stopped holding{extra}")
        if time.monotonic() > deadline:
            return
        time.sleep(interval)
