"""One apply at a time on a machine: a lock on the machine, taken through the executor.

Two `wgbgp apply` runs (or an apply and the agent) on one machine at once would interleave
their file writes and daemon reloads. The lock is `flock` on /run/wgbgp/apply.lock, held
by a small process left on the machine (`sleep`, with the lock's file descriptor open)
for as long as the apply runs; releasing kills it. Decisions:
- The second apply waits up to `wait` seconds, then refuses with a message that names the
  holder (who, since when): nothing of it ran, so nothing is half-written.
- A holder whose apply died (a lost SSH connection, a crash) frees the lock by itself
  after HOLD_MAX seconds, far longer than any apply; a rebooted machine has a fresh /run.
- The lock lives in /run: runtime state, gone at boot, as flock's own locks are.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from ..transport import Executor
from .scripts import PATH_LINE

LOCK = "/run/wgbgp/apply.lock"
HOLD_MAX = 1800  # seconds a holder keeps the lock if nobody releases it
DEFAULT_WAIT = 60.0

# Args: LOCK WHO WAIT_SECONDS HOLD_MAX [WATCH_PID]. Prints `locked PID` (the holder) or,
# exit 75, `busy OWNER-LINE` (the current holder's pid, who, since).
ACQUIRE = PATH_LINE + r"""
l=$1; who=$2; wait=$3; hold=$4; watch=${5:-}
mkdir -p "$(dirname "$l")"
ready="$l.ready.$$"
rm -f "$ready"
# The holder: takes the lock on fd 9 (waiting at most $wait s), writes who holds it, says
# so through $ready, then keeps fd 9 open: the lock lives as long as the holder does.
# setsid and no inherited pipes: it outlives this command (and an SSH session), and the
# executor does not wait for it. With WATCH_PID (a process on this machine: the agent)
# it lets go as soon as that process is gone, so a killed agent never keeps the lock.
setsid sh -c '
  exec 9>>"$1"
  flock -w "$3" 9 || exit 75
  printf "%s\t%s\t%s\n" "$$" "$2" "$(date -u +%FT%TZ)" > "$1.owner"
  : > "$4"
  if [ -z "$6" ]; then exec sleep "$5"; fi
  n=0
  while [ "$n" -lt "$5" ] && kill -0 "$6" 2>/dev/null; do sleep 1 9>&-; n=$((n + 1)); done
' wgbgp-lock-holder "$l" "$who" "$wait" "$ready" "$hold" "$watch" \
  </dev/null >/dev/null 2>&1 &
holder=$!
while kill -0 "$holder" 2>/dev/null; do
  if [ -e "$ready" ]; then rm -f "$ready"; echo "locked $holder"; exit 0; fi
  sleep 0.05
done
rm -f "$ready"
printf 'busy\t%s\n' "$(cat "$l.owner" 2>/dev/null)"
exit 75
"""

# Args: LOCK PID. Ends the holder (only if it is still ours) and clears the owner line.
RELEASE = PATH_LINE + r"""
l=$1; pid=$2
owner=$(cut -f1 "$l.owner" 2>/dev/null || true)
if [ "$owner" = "$pid" ]; then rm -f "$l.owner"; fi
kill "$pid" 2>/dev/null || true
"""


class ApplyLocked(Exception):
    """Another apply holds the machine's lock (and did not let go within the wait)."""

    def __init__(self, machine: str, owner: str, waited: float) -> None:
        parts = owner.split("\t")
        who = parts[1] if len(parts) > 1 and parts[1] else "another wgbgp apply"
        since = f" since {parts[2]}" if len(parts) > 2 and parts[2] else ""
        pid = f", pid {parts[0]}" if parts and parts[0] else ""
        super().__init__(
            f"another apply is running on {machine} ({who}{since}{pid} holds {LOCK}); "
            f"waited {waited:g} s, nothing was changed. Run this apply again once it is done "
            f"(a holder whose apply died lets go by itself within {HOLD_MAX // 60} min)")
        self.owner = owner


class LockUnavailable(Exception):
    """The lock command itself did not run (machine unreachable, no flock there)."""


def holder_name(what: str) -> str:
    """Who takes the lock, as the refused apply will read it: `wgbgp apply from HOST
    (pid N)`."""
    return f"wgbgp {what} from {socket.gethostname()} (pid {os.getpid()})"


def acquire(executor: Executor, who: str, wait: float = DEFAULT_WAIT,
            watch: int | None = None) -> str:
    """Take the machine's apply lock; the holder's pid (for `release`). ApplyLocked when
    another apply kept it for `wait` seconds. `watch`: a pid on that machine (the agent's
    own) whose end frees the lock at once."""
    res = executor.run(["sh", "-c", ACQUIRE, "wgbgp-lock", LOCK, who.replace("\t", " "),
                        f"{max(0.0, wait):g}", str(HOLD_MAX),
                        *([str(watch)] if watch else [])],
                       check=False, timeout=wait + 30)
    for line in res.stdout.splitlines():
        if line.startswith("locked "):
            return line.split()[1]
        if line.startswith("busy"):
            raise ApplyLocked(executor.name, line.partition("\t")[2], wait)
    if res.returncode == 75:
        raise ApplyLocked(executor.name, "", wait)
    if not res.ok:
        # Not busy: the command did not run (unreachable machine, no flock there). The
        # caller decides; apply goes on and fails at its probe with the real reason.
        raise LockUnavailable(f"could not take {LOCK} on {executor.name}: {res.error}")
    return ""


def release(executor: Executor, holder: str) -> None:
    """Let go of the lock `acquire` took (best effort: a dead holder already let go)."""
    if holder:
        executor.run(["sh", "-c", RELEASE, "wgbgp-unlock", LOCK, holder], check=False,
                     timeout=30)


@contextmanager
def apply_lock(executor: Executor, who: str, wait: float = DEFAULT_WAIT,
               watch: int | None = None) -> Iterator[None]:
    """Hold the machine's apply lock for the body (ApplyLocked if it stays busy,
    LockUnavailable if the lock command could not run)."""
    holder = acquire(executor, who, wait, watch)
    try:
        yield
    finally:
        release(executor, holder)
