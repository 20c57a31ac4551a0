"""Plan, apply and remove wgbgp's configuration on one machine, through an executor.

`plan_machine` probes the machine (one command) and computes the change set and the steps.
The probe also reads live state (link state, `wg showconf`, routes, sysctls, nft, daemons);
where it drifted from unchanged files (drift.py), the step that applies them runs again and
apply reports each repair as one `repaired: ...` line (`ApplyResult.repaired`).
`apply_machine` runs those steps; if one fails, every step already done is undone (files
restored from their `.wgbgp-prev` copies first, then the live state rolled back in reverse),
and the result names the step and the reason. `down_machine` removes what apply installed.

Commands (see also scripts.py):
- WireGuard up:    wg-quick up IFACE   (WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 in its
                   environment, so wireguard-go is used only where the kernel module is missing)
- WireGuard sync:  wg-quick strip | (PrivateKey inserted from the key file on the machine) |
                   wg syncconf IFACE /dev/stdin; then `ip address`/`ip link set mtu`/routes
- WireGuard down:  wg-quick down IFACE
- FRR start:       /usr/lib/frr/frrinit.sh start   (systemctl start frr under systemd)
- FRR reload:      frr-reload.py --test, then --reload, on a staged copy (OS-derived lines
                   pinned, private --confdir so frr-reload never rewrites frr.conf)
- FRR stop:        /usr/lib/frr/frrinit.sh stop    (systemctl stop frr under systemd)
- BIRD start:      bird -c /etc/bird/bird.conf -P /run/bird/bird.pid [-u bird -g bird]
                   (systemctl start bird under systemd); waits until birdc answers
- BIRD reload:     birdc configure "/etc/bird/bird.conf" (checked by `bird -p -c` before the
                   file is written): protocols whose config is unchanged keep their sessions
- BIRD stop:       birdc down   (systemctl stop bird under systemd)
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..render import BIRD_CONF, FRR_CONF, RenderedFile
from ..transport import CommandFailed, CommandResult, Executor
from ..words import plural
from .changes import (
    FRR_DAEMONS,
    ChangeSet,
    FileChange,
    FrrDelta,
    compute_changes,
    daemons_file,
    interface_of,
    mask_output,
    parse_frr_reload_test,
    parse_wg_quick,
    pin_os_lines,
    sysctl_settings,
)
from .drift import Drift
from .probe import MANIFEST, PENDING, SYSCTL_BEFORE, MachineState, ProbeError, probe
from .scripts import (
    BIRD_CONFIGURE,
    BIRD_START,
    BIRD_STOP,
    FRR_RELOAD,
    FRR_SERVICE,
    INSTALL,
    NOTE_BIRD,
    RESTORE,
    RETIRE,
    SYSCTL,
    UNINSTALL,
    UNRETIRE,
    VALIDATE,
    WG_SYNC,
)
from .steps import Step, plan_steps

FRRINIT = "/usr/lib/frr/frrinit.sh"
USERSPACE_ENV = "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1"
FRR_START_TIMEOUT = 30.0
BIRD_START_TIMEOUT = 10.0

Progress = Callable[[str, str, str, str], None]  # machine, step name, status, detail
Status = Literal["ok", "failed", "undone", "undo-failed"]


class StepFailed(Exception):
    """A step failed; `undo` (if any) reverts what it did before failing."""

    def __init__(self, message: str, undo: Callable[[], None] | None = None) -> None:
        super().__init__(message)
        self.undo = undo


@dataclass
class StepResult:
    name: str
    action: str
    status: Status
    detail: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"name": self.name, "action": self.action, "status": self.status,
                "detail": self.detail, "seconds": round(self.seconds, 3)}


@dataclass
class MachinePlan:
    """What apply would do on one machine: file changes, steps, and why."""

    machine: str
    changes: ChangeSet
    state: MachineState
    steps: tuple[Step, ...]
    problems: tuple[str, ...]
    notes: tuple[str, ...]
    frr_delta: FrrDelta | None = None
    drift: tuple[Drift, ...] = ()  # live state that differs from the (unchanged) files

    @property
    def noop(self) -> bool:
        return not self.steps and not self.problems

    def describe(self) -> str:
        """Readable plan: diff (keys masked), then the steps."""
        out = [f"== {self.machine}: {self.changes.summary()}"]
        if not self.changes.empty:
            out.append(self.changes.diff().rstrip("\n"))
        for p in self.problems:
            out.append(f"cannot apply: {p}")
        for d in self.drift:
            out.append(f"drift: {d.present} (would repair: {d.step})")
        for s in self.steps:
            out.append(f"would {s.name}: {s.reason}")
        if self.frr_delta is not None:
            out.append("FRR would change: " + (self.frr_delta.text() if not self.frr_delta.empty
                                               else "nothing in the running config"))
        for n in self.notes:
            out.append(f"note: {n}")
        if self.noop:
            out.append("nothing to change")
        return "\n".join(out) + "\n"

    def to_dict(self) -> dict:
        return {
            "machine": self.machine, "noop": self.noop, "changes": self.changes.to_dict(),
            "steps": [s.to_dict() for s in self.steps], "problems": list(self.problems),
            "notes": list(self.notes), "state": self.state.to_dict(),
            "drift": [d.to_dict() for d in self.drift],
            "frr_delta": None if self.frr_delta is None else
            {"delete": list(self.frr_delta.delete), "add": list(self.frr_delta.add)},
        }


@dataclass
class ApplyResult:
    """The outcome of apply (or down) on one machine."""

    machine: str
    ok: bool
    steps: list[StepResult] = field(default_factory=list)
    plan: MachinePlan | None = None
    failed_step: str | None = None
    error: str | None = None
    rolled_back: bool | None = None  # None: nothing needed undoing
    rollback_errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)  # "repaired: ..." lines, one a drift
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return any(s.status == "ok" for s in self.steps)

    def summary(self) -> str:
        if self.ok:
            done = [s.name for s in self.steps if s.status == "ok"]
            return "\n".join([f"{self.machine}: " + ("applied: " + ", ".join(done) if done
                                                    else "no changes")
                              + f" ({self.seconds:.2f} s)",
                              *(f"    {line}" for line in self.repaired)])
        back = ("; previous configuration restored" if self.rolled_back else
                "; ROLLBACK INCOMPLETE: " + "; ".join(self.rollback_errors)
                if self.rolled_back is False else "; nothing was changed")
        # One line names the step, the cause and what became of the machine; a long cause
        # (e.g. FRR's output) continues on indented lines below it.
        first, *rest = (self.error or "failed").splitlines() or ["failed"]
        return "\n".join([f"{self.machine}: FAILED at step {self.failed_step}: {first}{back}",
                          *(f"    {line}" for line in rest)])

    def to_dict(self) -> dict:
        return {
            "machine": self.machine, "ok": self.ok, "changed": self.changed,
            "failed_step": self.failed_step, "error": self.error,
            "rolled_back": self.rolled_back, "rollback_errors": self.rollback_errors,
            "steps": [s.to_dict() for s in self.steps], "notes": self.notes,
            "repaired": self.repaired, "seconds": round(self.seconds, 3),
            "plan": None if self.plan is None else self.plan.to_dict(),
        }


# --- helpers ---------------------------------------------------------------------------

def _b64_lines(texts: Sequence[str]) -> str:
    return "".join(base64.b64encode(t.encode("utf-8")).decode("ascii") + "\n" for t in texts)


def _sh(executor: Executor, script: str, name: str, *args: str, input: str | None = None,
        check: bool = True, timeout: float | None = 120) -> CommandResult:
    return executor.run(["sh", "-c", script, name, *args], input=input, check=check,
                        timeout=timeout)


def _why(result: CommandResult) -> str:
    text = mask_output(result.stderr.strip() or result.stdout.strip())
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-12:]) if lines else f"exit code {result.returncode}"


def _check(result: CommandResult, what: str, undo: Callable[[], None] | None = None) -> None:
    if not result.ok:
        raise StepFailed(f"{what} failed: {_why(result)}", undo)


def _bird_stop(executor: Executor, state: MachineState) -> str:
    if state.systemd:
        executor.run(["systemctl", "stop", "bird"], timeout=120)
        return "systemctl stop bird"
    _check(_sh(executor, BIRD_STOP, "wgbgp-bird-stop", check=False), "birdc down")
    return "birdc down"


def manifest_daemon(text: str | None, daemon: str) -> str | None:
    """How `daemon` was found by the first apply (started|preexisting), from the manifest."""
    for line in (text or "").splitlines():
        parts = line.split("\t")
        if parts[0] == daemon and len(parts) == 2:
            return parts[1]
    return None


def _frr_service(state: MachineState, verb: str) -> list[str]:
    return ["systemctl", verb, "frr"] if state.systemd else [FRRINIT, verb]


# --- plan ------------------------------------------------------------------------------

def plan_machine(
    executor: Executor, files: Sequence[RenderedFile], *, frr_delta: bool = True,
    enable_at_boot: bool = True, userspace_fallback: bool = True,
) -> MachinePlan:
    """Probe the machine and work out what apply would do. Changes nothing.

    With `frr_delta`, a planned FRR reload also asks frr-reload.py (--test) which lines of
    the running config would change.
    """
    paths = [f.path for f in files]
    has_frr = any(f.kind == "frr" for f in files)
    wgs = [parse_wg_quick(f.path, f.text) for f in files if f.kind == "wireguard"]
    keys = sorted({w.key_file for w in wgs if w.key_file and not w.inline_key})
    has_bird = any(f.kind == "bird" for f in files)
    units = ([f"wg-quick@{w.name}" for w in wgs] + (["frr"] if has_frr else [])
             + (["bird"] if has_bird else []))
    # The manifest too: a daemon config wgbgp installed and no longer renders is retired.
    # Live facts to compare with the files: each tunnel's `wg showconf` and routes, and the
    # current value of every sysctl the files set.
    sysctls = sorted({k for f in files if f.kind == "sysctl" for k, _ in sysctl_settings(f.text)})
    state = probe(executor, files=paths, raw=([FRR_DAEMONS] if has_frr else []) + [MANIFEST],
                  interfaces=[w.name for w in wgs], keys=keys, units=units,
                  wireguard=[w.name for w in wgs], sysctls=sysctls)
    wanted = list(files)
    if has_frr:
        daemons = daemons_file(state.files.get(FRR_DAEMONS))
        if daemons is not None:
            wanted.append(daemons)
    changes = compute_changes(wanted, state.files, executor.name)
    sp = plan_steps(changes, state, enable_at_boot=enable_at_boot,
                    userspace_fallback=userspace_fallback)
    delta = None
    if frr_delta and not sp.problems and any(s.action == "frr-reload" for s in sp.steps):
        frr = changes.get(FRR_CONF)
        assert frr is not None
        delta = _frr_test(executor, frr.new_text)
    return MachinePlan(executor.name, changes, state, sp.steps, sp.problems, sp.notes, delta,
                       sp.drift)


def _frr_test(executor: Executor, text: str) -> FrrDelta:
    running = executor.run(["vtysh", "-c", "show running-config"]).stdout
    res = _sh(executor, FRR_RELOAD, "wgbgp-frr-reload", "test", input=pin_os_lines(text, running))
    return parse_frr_reload_test(res.stdout)


# --- apply -----------------------------------------------------------------------------

class _Runner:
    """Runs the steps of one plan and knows how to undo each."""

    def __init__(self, executor: Executor, plan: MachinePlan) -> None:
        self.x = executor
        self.plan = plan
        self.state = plan.state
        self.notes: list[str] = []
        self.cleanup: list[str] = []  # files to remove once every step succeeded

    # Each method performs one step, returning (detail, undo). On failure it raises
    # StepFailed carrying the undo for whatever it did change.

    def validate(self, step: Step) -> tuple[str, None]:
        files: list[FileChange] = step.params["files"]
        args: list[str] = []
        for c in files:
            name = {"frr": "frr.conf", "bird": "bird.conf", "nftables": "nftables.nft"}.get(
                c.kind, interface_of(c.path))
            args += [c.kind, name]
        res = _sh(self.x, VALIDATE, "wgbgp-validate", *args,
                  input=_b64_lines([c.new_text for c in files]), check=False)
        if not res.ok:
            raise StepFailed(mask_output(res.stdout.strip() or res.stderr.strip()))
        return f"{plural(len(files), 'file')} accepted by their tools", None

    def write(self, step: Step) -> tuple[str, Callable[[], None]]:
        files: list[FileChange] = step.params["files"]
        args = [MANIFEST]
        for c in files:
            owner = ("frr:frr" if c.kind.startswith("frr") else
                     "bird:bird" if c.kind == "bird" else "")
            args += [c.path, f"{c.mode:o}", owner]

        def undo() -> None:
            pairs = [a for c in files for a in (c.path, c.action)]
            _check(_sh(self.x, RESTORE, "wgbgp-restore", *pairs, check=False), "restore files")

        res = _sh(self.x, INSTALL, "wgbgp-install", *args,
                  input=_b64_lines([c.new_text for c in files]), check=False)
        _check(res, "writing files", undo)
        return ", ".join(f"{c.action}d {c.path}" for c in files), undo

    def sysctl(self, step: Step) -> tuple[str, Callable[[], None]]:
        res = _sh(self.x, SYSCTL, "wgbgp-sysctl", step.target, SYSCTL_BEFORE,
                  *step.params["keys"], check=False)
        old = [line.split("\t", 2)[1:] for line in res.stdout.splitlines()
               if line.startswith("old\t")]

        def undo() -> None:
            if old:
                self.x.run(["sysctl", "-q", "-w", *(f"{k}={v}" for k, v in old)])

        _check(res, f"sysctl -p {step.target}", undo)
        return f"sysctl -p {step.target}", undo

    def nftables(self, step: Step) -> tuple[str, Callable[[], None]]:
        existed = step.params["table_existed"]

        def undo() -> None:
            if existed:
                self.x.run(["nft", "-f", step.target])  # the restored previous file
            else:
                self.x.run(["nft", "delete", "table", "inet", "wgbgp"], check=False)

        _check(self.x.run(["nft", "-f", step.target], check=False), f"nft -f {step.target}",
               undo)
        return f"nft -f {step.target}", undo

    def wg_up(self, step: Step) -> tuple[str, Callable[[], None]]:
        iface = step.target
        argv = ["wg-quick", "up", iface]
        if step.params.get("userspace_fallback"):
            argv = ["env", USERSPACE_ENV, *argv]

        def undo() -> None:
            self.x.run(["ip", "link", "delete", "dev", iface], check=False)

        res = self.x.run(argv, check=False, timeout=60)
        _check(res, f"wg-quick up {iface}", undo)
        if "userspace implementation" in res.stderr:
            self.notes.append(f"{iface}: no WireGuard kernel module, running wireguard-go "
                              "(userspace)")
        return f"wg-quick up {iface}", undo

    def wg_sync(self, step: Step) -> tuple[str, Callable[[], None]]:
        iface, p = step.target, step.params
        flat = [a for op in p["ops"] for a in op]

        def undo() -> None:
            back = [a for op in p["undo_ops"] for a in op]
            _check(_sh(self.x, WG_SYNC, "wgbgp-wg-sync", iface, p["path"], p["key_file"],
                       p["table"], *back, check=False), f"re-sync {iface}")

        res = _sh(self.x, WG_SYNC, "wgbgp-wg-sync", iface, p["path"], p["key_file"], p["table"],
                  *flat, check=False)
        _check(res, f"wg syncconf {iface}", undo)
        extra = [line for line in res.stdout.splitlines()
                 if line.startswith(("route ", "link up"))]
        return "; ".join([f"wg syncconf {iface}", *(f"{o} {a}" for o, a in p["ops"]), *extra]), undo

    def _service(self, verb: str, how: str, asn: int | None) -> CommandResult:
        """`frrinit.sh VERB` (or `systemctl VERB frr`), then wait for bgpd: one command."""
        tenths = str(int(FRR_START_TIMEOUT * 10))
        return _sh(self.x, FRR_SERVICE, "wgbgp-frr-service", MANIFEST, how, verb,
                   "1" if self.state.systemd else "0", tenths, "" if asn is None else str(asn),
                   check=False, timeout=FRR_START_TIMEOUT + 150)

    def frr_start(self, step: Step) -> tuple[str, Callable[[], None]]:
        def undo() -> None:
            self.x.run(_frr_service(self.state, "stop"), check=False, timeout=120)

        argv = _frr_service(self.state, "start")
        _check(self._service("start", "started", step.params.get("asn")), " ".join(argv), undo)
        return " ".join(argv), undo

    def _reload_to(self, text: str, note: bool = False) -> tuple[FrrDelta, CommandResult]:
        running = self.x.run(["vtysh", "-c", "show running-config"]).stdout
        res = _sh(self.x, FRR_RELOAD, "wgbgp-frr-reload", "reload", *([MANIFEST] if note else []),
                  input=pin_os_lines(text, running), check=False, timeout=300)
        return parse_frr_reload_test(res.stdout.split("==reload", 1)[0]), res

    def _undo_reload(self) -> None:
        text = self.x.read_file(FRR_CONF)  # already restored by the files' undo
        if text is None:
            raise StepFailed(f"{FRR_CONF} is missing: cannot reload the previous config")
        _, res = self._reload_to(text)
        _check(res, "frr-reload.py (previous config)")

    def frr_reload(self, step: Step) -> tuple[str, Callable[[], None]]:
        frr = self.plan.changes.get(FRR_CONF)
        assert frr is not None
        delta, res = self._reload_to(frr.new_text, note=True)
        _check(res, "frr-reload.py", self._undo_reload)
        if "==soft-in failed" in res.stdout:
            self.notes.append("`clear bgp ipv4 unicast * soft in` failed after the reload: "
                              "prefixes newly allowed in may arrive only after a session reset")
        if delta.empty:
            return "running config already matches: nothing reloaded", self._undo_reload
        cleared = [line.split(None, 1)[1] for line in res.stdout.splitlines()
                   if line.startswith("==cleared ")]
        restarted = (f"; restarted {plural(len(cleared), 'session')} that were not "
                     "Established: " + ", ".join(cleared) if cleared else "")
        return (f"frr-reload.py applied {plural(len(delta.delete), 'deletion')}, "
                f"{plural(len(delta.add), 'addition')}{restarted}\n" + delta.text()
                ), self._undo_reload

    def frr_restart(self, step: Step) -> tuple[str, Callable[[], None]]:
        argv = _frr_service(self.state, "restart")
        _check(self._service("restart", "preexisting", step.params.get("asn")), " ".join(argv),
               self._undo_reload)
        return " ".join(argv), self._undo_reload

    def bird_start(self, step: Step) -> tuple[str, Callable[[], None]]:
        _sh(self.x, NOTE_BIRD, "wgbgp-note", MANIFEST, "started", check=False)

        def undo() -> None:
            _bird_stop(self.x, self.state)

        if self.state.systemd:
            argv = ["systemctl", "start", "bird"]
            _check(self.x.run(argv, check=False, timeout=120), " ".join(argv), undo)
            return " ".join(argv), undo
        tenths = str(int(BIRD_START_TIMEOUT * 10))
        res = _sh(self.x, BIRD_START, "wgbgp-bird-start", BIRD_CONF, tenths, check=False,
                  timeout=BIRD_START_TIMEOUT + 30)
        _check(res, f"bird -c {BIRD_CONF}", undo)
        return f"bird -c {BIRD_CONF}", undo

    def _bird_configure(self) -> CommandResult:
        return _sh(self.x, BIRD_CONFIGURE, "wgbgp-bird-configure", BIRD_CONF, check=False)

    def _undo_bird(self) -> None:
        _check(self._bird_configure(), "birdc configure (previous config)")

    def bird_reload(self, step: Step) -> tuple[str, Callable[[], None]]:
        _sh(self.x, NOTE_BIRD, "wgbgp-note", MANIFEST, "preexisting", check=False)
        res = self._bird_configure()
        _check(res, "birdc configure", self._undo_bird)
        answer = [line for line in res.stdout.splitlines() if line.startswith("Reconfig")]
        return f"birdc configure: {answer[-1] if answer else 'done'}", self._undo_bird

    def retire(self, step: Step) -> tuple[str, Callable[[], None]]:
        """Stop the BGP daemon this machine no longer runs (or give it back its original
        config, if it ran before wgbgp), and put its files away as `down` would."""
        daemon, how, paths = step.target, step.params["how"], step.params["paths"]
        stop = step.params["running"] and how != "preexisting"
        done: list[str] = []

        def start_again() -> None:
            if daemon == "frr":
                _check(self.x.run(_frr_service(self.state, "start"), check=False,
                                  timeout=FRR_START_TIMEOUT + 150), "restart FRR")
            elif self.state.systemd:
                _check(self.x.run(["systemctl", "start", "bird"], check=False, timeout=120),
                       "systemctl start bird")
            else:
                _check(_sh(self.x, BIRD_START, "wgbgp-bird-start", BIRD_CONF,
                           str(int(BIRD_START_TIMEOUT * 10)), check=False,
                           timeout=BIRD_START_TIMEOUT + 30), "restart BIRD")

        def undo() -> None:
            if "files" in done:
                _check(_sh(self.x, UNRETIRE, "wgbgp-unretire", MANIFEST, *paths, check=False),
                       "put back the retired files")
            if "stopped" in done:
                start_again()
            elif "reloaded" in done:  # its wgbgp config again, files being back
                if daemon == "frr":
                    self._undo_reload()
                else:
                    self._undo_bird()

        if stop:
            if daemon == "frr":
                argv = _frr_service(self.state, "stop")
                _check(self.x.run(argv, check=False, timeout=180), " ".join(argv))
                if self.state.systemd:
                    self.x.run(["systemctl", "disable", "frr"], check=False)
            else:
                _bird_stop(self.x, self.state)
                if self.state.systemd:
                    self.x.run(["systemctl", "disable", "bird"], check=False)
            done.append("stopped")
        res = _sh(self.x, RETIRE, "wgbgp-retire", MANIFEST, daemon, *paths, check=False)
        _check(res, f"putting away {', '.join(paths)}", undo)
        done.append("files")
        self.cleanup += [MANIFEST + ".wgbgp-retired", *(p + ".wgbgp-retired" for p in paths)]
        detail = [line for line in res.stdout.splitlines() if line.strip()]
        if how == "preexisting" and step.params["running"]:
            # It ran before wgbgp: it keeps running, with the config it had then.
            if daemon == "frr":
                text = self.x.read_file(FRR_CONF)
                if text:
                    _, r = self._reload_to(text)
                    _check(r, "frr-reload.py (FRR's original config)", undo)
            else:
                _check(self._bird_configure(), "birdc configure (BIRD's original config)", undo)
            done.append("reloaded")
            detail.append(f"{'FRR' if daemon == 'frr' else 'BIRD'} ran before wgbgp: it keeps "
                          "running with its original config")
            self.notes.append(f"{'FRR' if daemon == 'frr' else 'BIRD'} ran here before wgbgp "
                              "and keeps running with its original config; if that config "
                              "speaks BGP, it competes for TCP port 179")
        elif stop:
            detail.insert(0, "stopped FRR" if daemon == "frr" else "stopped BIRD")
        return "; ".join(detail), undo

    def enable(self, step: Step) -> tuple[str, Callable[[], None]]:
        units = step.params["units"]

        def undo() -> None:
            self.x.run(["systemctl", "disable", *units], check=False)

        _check(self.x.run(["systemctl", "enable", *units], check=False), "systemctl enable",
               undo)
        return "systemctl enable " + " ".join(units), undo

    def run(self, step: Step) -> tuple[str, Callable[[], None] | None]:
        method = getattr(self, step.action.replace("-", "_"))
        return method(step)


def apply_machine(
    executor: Executor, files: Sequence[RenderedFile], *, enable_at_boot: bool = True,
    userspace_fallback: bool = True, progress: Progress | None = None,
    plan: MachinePlan | None = None,
) -> ApplyResult:
    """Make one machine run `files`: write what changed, then change only the live state
    that depends on it. An unchanged machine costs one probe command and changes nothing.

    On failure the previous files are restored and the live state rolled back; the result
    names the failed step and why. Never raises for machine-side failures.
    """
    t0 = time.monotonic()
    name = executor.name
    report = progress or (lambda *a: None)
    result = ApplyResult(name, ok=False)
    try:
        if plan is None:
            report(name, "probe", "start", "")
            plan = plan_machine(executor, files, frr_delta=False, enable_at_boot=enable_at_boot,
                                userspace_fallback=userspace_fallback)
    except (CommandFailed, ProbeError, OSError) as exc:
        result.failed_step, result.error = "probe", mask_output(str(exc))
        result.seconds = time.monotonic() - t0
        report(name, "probe", "failed", result.error)
        return result
    result.plan = plan
    result.notes = list(plan.notes)
    if plan.problems:
        result.failed_step, result.error = "preflight", "; ".join(plan.problems)
        result.seconds = time.monotonic() - t0
        report(name, "preflight", "failed", result.error)
        return result

    runner = _Runner(executor, plan)
    done: list[tuple[StepResult, Callable[[], None]]] = []
    files_undo: tuple[StepResult, Callable[[], None]] | None = None
    failure: str | None = None
    for step in plan.steps:
        report(name, step.name, "start", step.reason)
        ts = time.monotonic()
        try:
            detail, undo = runner.run(step)
        except Exception as exc:  # noqa: BLE001 - any failure (incl. a lost SSH link) rolls back
            undo = exc.undo if isinstance(exc, StepFailed) else None
            failure = mask_output(str(exc))
            sr = StepResult(step.name, step.action, "failed", failure, time.monotonic() - ts)
            result.steps.append(sr)
            report(name, step.name, "failed", failure)
            result.failed_step = step.name
            result.error = failure
            if undo is not None:
                if step.action == "write":
                    files_undo = (sr, undo)
                else:
                    done.append((sr, undo))
            break
        sr = StepResult(step.name, step.action, "ok", mask_output(detail), time.monotonic() - ts)
        result.steps.append(sr)
        report(name, step.name, "ok", sr.detail)
        if undo is not None:
            if step.action == "write":
                files_undo = (sr, undo)
            else:
                done.append((sr, undo))

    if failure is None:
        if plan.steps or plan.state.pending:
            try:
                executor.run(["rm", "-f", PENDING, *runner.cleanup])
            except Exception as exc:  # noqa: BLE001
                result.notes.append(f"could not clear {PENDING}: {mask_output(str(exc))}")
        result.ok = True
        ran = {s.name for s in result.steps if s.status == "ok"}
        result.repaired = [d.line() for d in plan.drift if d.step in ran]
    else:
        _rollback(result, files_undo, done, executor, report)
    result.notes += runner.notes
    result.seconds = time.monotonic() - t0
    return result


def _rollback(result: ApplyResult, files_undo, done, executor: Executor,
              report: Callable[..., None]) -> None:
    """Restore files first, then undo live steps newest first (each uses restored files)."""
    if files_undo is None and not done:
        result.rolled_back = None
        return
    errors: list[str] = []
    order = ([files_undo] if files_undo else []) + list(reversed(done))
    for sr, undo in order:
        report(result.machine, f"undo {sr.name}", "start", "")
        try:
            undo()
        except Exception as exc:  # noqa: BLE001
            msg = f"undo {sr.name}: {mask_output(str(exc))}"
            errors.append(msg)
            if sr.status == "ok":
                sr.status = "undo-failed"
            report(result.machine, f"undo {sr.name}", "failed", msg)
        else:
            if sr.status == "ok":
                sr.status = "undone"
            report(result.machine, f"undo {sr.name}", "ok", "")
    result.rollback_errors = errors
    result.rolled_back = not errors
    if not errors:
        try:
            executor.run(["rm", "-f", PENDING])
        except Exception as exc:  # noqa: BLE001
            result.notes.append(f"could not clear {PENDING}: {mask_output(str(exc))}")


# --- down ------------------------------------------------------------------------------

def parse_manifest(text: str | None) -> tuple[list[tuple[str, str]], str | None]:
    """(files as (path, created|replaced), how FRR was found) from the manifest. Pure."""
    files: list[tuple[str, str]] = []
    frr = None
    for line in (text or "").splitlines():
        parts = line.split("\t")
        if parts[0] == "file" and len(parts) == 3 and parts[1] not in (p for p, _ in files):
            files.append((parts[1], parts[2]))
        elif parts[0] == "frr" and len(parts) == 2 and frr is None:
            frr = parts[1]
    return files, frr


def down_machine(
    executor: Executor, files: Sequence[RenderedFile] = (), *,
    progress: Progress | None = None,
) -> ApplyResult:
    """Remove what apply installed, best effort (every step is tried; errors are collected).

    Decisions: tunnels go down (wg-quick down); table inet wgbgp is deleted; FRR is stopped
    if wgbgp started it, else (FRR ran before wgbgp) its original frr.conf is put back and
    reloaded, leaving FRR running; sysctl values are set back to what wgbgp found before it
    first changed them; every file wgbgp created is removed and every file it replaced is
    restored (`.wgbgp-orig`), `.wgbgp-prev` copies included. Private keys in
    /etc/wgbgp/keys are kept: the topology still names their public keys.
    """
    t0 = time.monotonic()
    name = executor.name
    report = progress or (lambda *a: None)
    result = ApplyResult(name, ok=True)
    try:
        manifest_text = executor.read_file(MANIFEST)
    except Exception as exc:  # noqa: BLE001
        return ApplyResult(name, ok=False, failed_step="probe", error=mask_output(str(exc)),
                           seconds=time.monotonic() - t0)
    managed, frr_how = parse_manifest(manifest_text)
    known = {p for p, _ in managed}
    managed += [(f.path, "created") for f in files if f.path not in known]
    if not managed:
        result.notes.append("nothing installed by wgbgp on this machine")
        result.seconds = time.monotonic() - t0
        return result
    paths = [p for p, _ in managed]
    ifaces = [interface_of(p) for p in paths if p.startswith("/etc/wireguard/")
              and p.endswith(".conf")]
    try:
        bird_how = manifest_daemon(manifest_text, "bird")
        state = probe(executor, interfaces=ifaces,
                      units=[f"wg-quick@{i}" for i in ifaces] + (["frr"] if frr_how else [])
                      + (["bird"] if bird_how else []))
    except (CommandFailed, ProbeError, OSError) as exc:
        return ApplyResult(name, ok=False, failed_step="probe", error=mask_output(str(exc)),
                           seconds=time.monotonic() - t0)

    def step(sname: str, action: str, fn: Callable[[], str]) -> None:
        report(name, sname, "start", "")
        ts = time.monotonic()
        try:
            detail = fn()
        except Exception as exc:  # noqa: BLE001
            msg = mask_output(str(exc))
            result.steps.append(StepResult(sname, action, "failed", msg, time.monotonic() - ts))
            result.ok = False
            result.failed_step = result.failed_step or sname
            result.error = result.error or msg
            report(name, sname, "failed", msg)
        else:
            result.steps.append(StepResult(sname, action, "ok", detail, time.monotonic() - ts))
            report(name, sname, "ok", detail)

    for iface in ifaces:
        live = state.interfaces.get(iface)
        if live is not None and live.exists:
            def wg_down(iface: str = iface) -> str:
                res = executor.run(["wg-quick", "down", iface], check=False, timeout=60)
                if not res.ok:  # e.g. its file is gone: remove the link itself
                    executor.run(["ip", "link", "delete", "dev", iface])
                    return f"ip link delete dev {iface}"
                return f"wg-quick down {iface}"
            step(f"wireguard {iface}", "wg-down", wg_down)
    if state.nft_table:
        step("nftables", "nft-delete",
             lambda: (executor.run(["nft", "delete", "table", "inet", "wgbgp"]),
                      "nft delete table inet wgbgp")[1])
    frr_managed = FRR_CONF in paths
    if frr_managed and state.frr_running:
        if frr_how == "preexisting":
            pass  # handled after the files are restored: reload FRR's original config
        else:
            def frr_stop() -> str:
                argv = _frr_service(state, "stop")
                executor.run(argv, timeout=180)
                return " ".join(argv)
            step("frr", "frr-stop", frr_stop)
    bird_managed = BIRD_CONF in paths
    if bird_managed and state.bird_running and bird_how != "preexisting":
        step("bird", "bird-stop", lambda: _bird_stop(executor, state))
    if state.systemd:
        units = [u for u, on in state.units.items() if on and (u.startswith("wg-quick@")
                 or (u == "frr" and frr_how != "preexisting")
                 or (u == "bird" and bird_how != "preexisting"))]
        if units:
            step("disable at boot", "disable",
                 lambda: (executor.run(["systemctl", "disable", *units]),
                          "systemctl disable " + " ".join(units))[1])

    before = executor.read_file(SYSCTL_BEFORE)
    if before:
        settings = [line.strip() for line in before.splitlines() if "=" in line]
        step("sysctl", "sysctl-restore",
             lambda: (executor.run(["sysctl", "-q", "-w", *settings]),
                      "restored " + ", ".join(settings))[1])

    def uninstall() -> str:
        res = _sh(executor, UNINSTALL, "wgbgp-uninstall",
                  *[a for p, how in managed for a in (p, how)], check=False)
        _check(res, "removing files")
        executor.run(["rm", "-f", MANIFEST, SYSCTL_BEFORE, PENDING])
        return "; ".join(res.stdout.split("\n")).strip("; ")
    step("remove files", "uninstall", uninstall)

    if frr_managed and state.frr_running and frr_how == "preexisting":
        def frr_back() -> str:
            text = executor.read_file(FRR_CONF)
            if not text:
                return "no original frr.conf to reload"
            runner = _Runner(executor, MachinePlan(name, ChangeSet(name, ()), state, (), (), ()))
            delta, res = runner._reload_to(text)
            _check(res, "frr-reload.py (original config)")
            return "reloaded FRR's original config: " + (delta.text() or "no change")
        step("frr", "frr-reload", frr_back)
    if bird_managed and state.bird_running and bird_how == "preexisting":
        def bird_back() -> str:
            res = _sh(executor, BIRD_CONFIGURE, "wgbgp-bird-configure", BIRD_CONF, check=False)
            _check(res, "birdc configure (original config)")
            return "reloaded BIRD's original config"
        step("bird", "bird-reload", bird_back)
    result.seconds = time.monotonic() - t0
    return result


__all__ = ["ApplyResult", "MachinePlan", "StepResult", "apply_machine", "down_machine",
           "parse_manifest", "plan_machine"]
