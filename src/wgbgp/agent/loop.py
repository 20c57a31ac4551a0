"""The agent's reconcile loop: keep this machine running its part of the topology.

Each reconcile is apply's own code (`plan_machine`, then `apply_machine` only when the plan
has steps), under the machine's apply lock, so the agent and a `wgbgp apply` never run at
once and the agent does exactly what apply would: repair drift (an interface down, a
route, peer, sysctl or nft table gone), start a dead daemon again (FRR, bgpd, BIRD; a
crashed wireguard-go takes its interface with it, and apply brings it up), apply a new
accepted revision of the topology. A healthy machine costs one probe command and nothing
is reset. Then it follows the hub endpoints that are DNS names (dns.py).

When: at start; on a netlink event (`ip monitor link address route`: an interface, address
or route changed; BGP's own route churn is ignored), at most once a second; and every
`interval` seconds, which also catches what netlink does not tell (a daemon died, a sysctl
or the nft table changed). The source is pulled every `pull_interval` seconds. Between
those, the handshake watch (kick.py) starts BGP sessions as soon as a tunnel handshakes.

Every action is one log line (stderr: the journal under systemd, /run/wgbgp/agent.log
without); the state goes to /run/wgbgp/agent.json for `wgbgp status` and the exporter.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..apply import apply_machine, plan_machine
from ..apply.agentstate import AGENT_CACHE, AGENT_STATE, AgentState
from ..apply.applylock import ApplyLocked, LockUnavailable, apply_lock
from ..apply.changes import mask_output
from ..apply.probe import ProbeError
from ..transport import CommandFailed, Executor, LocalExecutor
from . import dns
from .kick import Kicker
from .source import (
    FileSource,
    Refused,
    Snapshot,
    Source,
    SourceError,
    accept,
    load_good,
    save_good,
)

log = logging.getLogger("wgbgp.agent")

KICK_PERIOD = 0.5       # seconds between two looks at the handshakes
EVENT_SPACING = 1.0     # at most one netlink-triggered reconcile a second
LOCK_WAIT = 5.0         # an apply holds the lock: try again at the next trigger


@dataclass
class Options:
    interval: float = 10.0
    pull_interval: float = 30.0
    kick: bool = True
    lock_wait: float = LOCK_WAIT
    state_path: str = AGENT_STATE
    cache: Path = Path(AGENT_CACHE)


class Agent:
    """One machine's reconciler. Its methods are single steps, so tests drive them."""

    def __init__(self, node: str, source: Source, executor: Executor | None = None,
                 options: Options | None = None, *, clock: Callable[[], float] = time.time,
                 resolver: dns.Resolver = dns.resolve) -> None:
        self.node = node
        self.source = source
        self.x = executor or LocalExecutor(node)
        self.opt = options or Options()
        self.clock = clock
        self.resolver = resolver
        self.good: Snapshot | None = None
        self.state = AgentState(node, pid=os.getpid(), started=clock(),
                                source=source.description)
        self.kicker: Kicker | None = None
        self._said: set[str] = set()  # problems already logged (said once, not every round)

    # --- the topology ----------------------------------------------------------------

    def pull(self) -> bool:
        """Read the source; accept a new revision (True) or refuse it, keeping the last
        good one. A source that cannot be read keeps the last good one too."""
        try:
            text, lock_text, revision = self.source.read()
        except SourceError as exc:
            self.state.source_error = str(exc)
            self._say(f"source unreadable, keeping revision {self.state.revision or '(none)'}"
                      f": {exc}")
            return self._fall_back()
        if self.state.source_error:
            log.info("source readable again: %s", self.source.description)
        self.state.source_error = ""
        if self.good is not None and revision == self.good.revision:
            self.state.refused_revision = self.state.refused_reason = ""
            return False
        if revision == self.state.refused_revision:
            return self._fall_back()
        try:
            snap = accept(text, lock_text, revision, self.node, self._name(revision),
                          self.source.base)
        except Refused as exc:
            self.state.refused_revision, self.state.refused_reason = revision, exc.reason
            self.state.refused_time = self.clock()
            log.error("refused revision %s (keeping %s): %s", revision,
                      self.state.revision or "nothing", exc.reason)
            return self._fall_back()
        self._take(snap)
        try:
            save_good(snap, self.opt.cache)
        except OSError as exc:
            self._say(f"could not keep the good topology in {self.opt.cache}: {exc}")
        return True

    def _name(self, revision: str) -> str:
        return (str(getattr(self.source, "path", "")) or
                f"{getattr(self.source, 'url', '')}@{revision}:{getattr(self.source, 'file', '')}")

    def _take(self, snap: Snapshot, *, from_source: bool = True) -> None:
        before = self.state.revision
        self.good = snap
        self.state.revision = snap.revision
        if from_source:  # the source's own head is good: nothing stands refused
            self.state.refused_revision = self.state.refused_reason = ""
        log.info("running revision %s%s", snap.revision, f" (was {before})" if before else "")
        bgp = next((f.kind for f in snap.files if f.kind in ("frr", "bird")), None)
        if self.opt.kick:
            self.kicker = Kicker(self.x, bgp, last=self.kicker.last if self.kicker else None)

    def _fall_back(self) -> bool:
        """No good topology in memory (a restart while the source is broken): the one kept
        on disk, checked again."""
        if self.good is not None:
            return False
        kept = load_good(self.opt.cache)
        if kept is None:
            return False
        text, lock_text, revision = kept
        try:
            snap = accept(text, lock_text, revision, self.node, f"{self.opt.cache}/good",
                          self.source.base)
        except Refused:
            return False
        log.info("using the last good revision %s kept in %s", revision, self.opt.cache)
        self._take(snap, from_source=False)
        return True

    # --- the machine -----------------------------------------------------------------

    def reconcile(self, why: str) -> bool:
        """One round: plan, repair what drifted (or apply a new revision), follow DNS.

        False when it could not run because an apply holds the machine's lock."""
        try:
            # The lock's holder watches this process: an agent killed mid-round (`wgbgp
            # down` stops it) never leaves the machine locked.
            with apply_lock(self.x, f"wgbgp agent ({self.node})", self.opt.lock_wait,
                            watch=os.getpid() if isinstance(self.x, LocalExecutor)
                            and not self.x.prefix else None):
                if isinstance(self.source, FileSource):
                    # Under the lock: apply hands over a new topology file under the same
                    # lock, so new files are never taken for drift from the old topology.
                    self.pull()
                if self.good is None:
                    self._error("no good topology to run yet: " + (
                        self.state.source_error or self.state.refused_reason
                        or "the source was not read"))
                    self._save()
                    return True
                files = list(self.good.files)
                plan = plan_machine(self.x, files, frr_delta=False)
                if plan.problems:
                    self._error("cannot apply: " + "; ".join(plan.problems))
                elif not plan.noop:
                    result = apply_machine(self.x, files, plan=plan)
                    if result.ok:
                        ran = {s.name for s in result.steps if s.status == "ok"}
                        drifted = {d.step for d in plan.drift}
                        lines = list(result.repaired) + [
                            f"applied: {s.name} ({s.detail})" for s in result.steps
                            if s.status == "ok" and s.name not in drifted]
                        self.state.restarts += sum(1 for d in plan.drift if d.step in ran
                                                   and d.kind in ("daemon", "interface"))
                        self._repaired(lines, why)
                    else:
                        self._error(result.summary().replace("\n", " "))
                actions, problems = dns.follow(self.x, files, self.resolver)
                if actions:
                    self.state.endpoint_updates += len(actions)
                    self._repaired(actions, "DNS")
                for p in problems:
                    self._say(p)
        except ApplyLocked:
            log.info("an apply is running on this machine: reconcile (%s) deferred", why)
            return False
        except (CommandFailed, ProbeError, OSError, LockUnavailable) as exc:
            self._error(f"reconcile ({why}) failed: {mask_output(str(exc))}")
        self.state.last_reconcile = self.clock()
        self.state.reconciles += 1
        self._save()
        return True

    def kick(self, now: float) -> None:
        """One look at the handshakes (kick.py); logs each session started."""
        if self.kicker is None:
            return
        try:
            lines = self.kicker.look(now)
        except (CommandFailed, OSError) as exc:
            self._say(f"handshake watch: {exc}")
            return
        for line in lines:
            log.info("%s", line)
        if lines:
            self.state.bgp_kicks += len(lines)
            self.state.last_kick = self.clock()
            self._save()

    def _repaired(self, lines: list[str], why: str) -> None:
        for line in lines:
            log.info("%s (%s)", line, why)
        self.state.last_repair = self.clock()
        self.state.last_repair_lines = lines[:20]
        self.state.repairs += len(lines)

    def _error(self, message: str) -> None:
        log.error("%s", message)
        self.state.last_error = message
        self.state.last_error_time = self.clock()
        self.state.errors += 1

    def _say(self, message: str) -> None:
        if message not in self._said:
            self._said.add(message)
            log.warning("%s", message)

    def _save(self) -> None:
        try:
            self.x.run(["mkdir", "-p", os.path.dirname(self.opt.state_path)], check=False)
            self.x.write_file(self.opt.state_path, self.state.to_json(), 0o644)
        except (CommandFailed, OSError) as exc:
            self._say(f"cannot write {self.opt.state_path}: {exc}")

    # --- running ---------------------------------------------------------------------

    def run(self, stop: threading.Event, *, watch: bool = True) -> None:
        """Until `stop` is set: the triggers of the module doc."""
        wake = threading.Event()
        monitor = NetlinkWatch(wake) if watch else None
        if monitor is not None:
            monitor.start()
        mono = time.monotonic
        try:
            if not isinstance(self.source, FileSource):
                self.pull()
            why = "start"
            next_reconcile = mono()
            next_pull = mono() + self.opt.pull_interval
            last_event = 0.0
            while not stop.is_set():
                now = mono()
                if now >= next_pull and not isinstance(self.source, FileSource):
                    next_pull = now + self.opt.pull_interval
                    if self.pull():
                        next_reconcile, why = now, "new revision"
                if wake.is_set() and now - last_event >= EVENT_SPACING:
                    wake.clear()
                    last_event = now
                    next_reconcile, why = now, "netlink event"
                if now >= next_reconcile:
                    done = self.reconcile(why)
                    # An apply holds the lock: look again soon, not a whole period later.
                    next_reconcile = mono() + (self.opt.interval if done else 1.0)
                    why = "period" if done else why
                self.kick(mono())
                pause = KICK_PERIOD if self.kicker is not None else 1.0
                stop.wait(max(0.0, min(pause, next_reconcile - mono())))
        finally:
            if monitor is not None:
                monitor.stop()


class NetlinkWatch:
    """`ip monitor link address route` in a thread: sets `wake` on each change that is not
    a routing daemon's own route (BGP churn is not drift)."""

    IGNORE = (" proto bgp", " proto bird", " proto zebra")

    def __init__(self, wake: threading.Event) -> None:
        self.wake = wake
        self.proc: subprocess.Popen[str] | None = None
        self.thread = threading.Thread(target=self._read, name="netlink", daemon=True)

    def start(self) -> None:
        try:
            self.proc = subprocess.Popen(["ip", "monitor", "link", "address", "route"],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         text=True)
        except OSError as exc:
            log.warning("no netlink watch (%s): reconciling on the period only", exc)
            return
        self.thread.start()

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            if not any(tag in line for tag in self.IGNORE):
                self.wake.set()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
