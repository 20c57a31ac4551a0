"""The address lock file beside a topology (`friends.yaml` -> `friends.yaml.lock`).

The format and the decisions are in model/lock.py; here it is read and written.
`WGBGP_LOCK=off` turns it off (read-only checkouts, CI on files that are not yours).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..model import Topology
from ..model.lock import Lock, LockError, current, lock_text, parse_lock


def lock_path(topology: Path) -> Path:
    return topology.with_name(topology.name + ".lock")


def enabled() -> bool:
    return os.environ.get("WGBGP_LOCK", "").lower() not in ("off", "0", "no", "false")


def read_lock(topology: Path) -> tuple[Lock | None, str | None]:
    """(the lock beside `topology`, or None; a problem to warn about, or None)."""
    if not enabled():
        return None, None
    path = lock_path(topology)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}"
    try:
        return parse_lock(text), None
    except LockError as exc:
        return None, f"{path} is not an address lock ({exc}); it is rewritten from the topology"


def write_lock(topology_path: Path, topology: Topology, previous: Lock | None,
               deployed: list[str] | tuple[str, ...] = ()) -> str | None:
    """Record the topology's host numbers (and `deployed` machines' addresses) beside
    it, when they changed. Returns a problem to warn about, or None."""
    if not enabled():
        return None
    path = lock_path(topology_path)
    lock = current(topology, previous, deployed)
    text = lock_text(lock, topology_path.name)
    try:
        if path.exists() and path.read_text(encoding="utf-8") == text:
            return None
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        return (f"cannot record tunnel addresses in {path}: {exc.strerror}; without it, "
                "removing or reordering machines can renumber others")
    return None
