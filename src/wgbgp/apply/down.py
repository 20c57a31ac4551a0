"""Remove what apply installed on one machine, as steps: `down_steps` decides them from the
manifest and the probed state (pure), `down_machine` runs every one, best effort.

Decisions: tunnels go down (wg-quick down); table inet wgbgp is deleted; FRR (BIRD) is
stopped if wgbgp started it, else (it ran before wgbgp) its original config is put back and
reloaded, leaving it running; sysctl values are set back to what wgbgp found before it
first changed them; every file wgbgp created is removed and every file it replaced is
restored (`.wgbgp-orig`), `.wgbgp-prev` copies included. Private keys in /etc/wgbgp/keys
are kept: the topology still names their public keys.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from ..render import BIRD_CONF, FRR_CONF, RenderedFile
from ..transport import CommandFailed, Executor
from .changes import interface_of, mask_output
from .daemons import Daemons
from .probe import MANIFEST, PENDING, SYSCTL_BEFORE, MachineState, ProbeError, probe
from .results import ApplyResult, Progress, StepResult
from .scripts import UNINSTALL
from .shell import check, sh
from .steps import Step


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


def manifest_daemon(text: str | None, daemon: str) -> str | None:
    """How `daemon` was found by the first apply (started|preexisting), from the manifest."""
    for line in (text or "").splitlines():
        parts = line.split("\t")
        if parts[0] == daemon and len(parts) == 2:
            return parts[1]
    return None


def down_steps(state: MachineState, managed: Sequence[tuple[str, str]], ifaces: Sequence[str],
               how: dict[str, str | None], sysctls: Sequence[str]) -> list[Step]:
    """The steps that remove wgbgp from a machine, in order. Pure.

    `managed` is the files wgbgp installed (path, created|replaced), `how` says how the
    first apply found each daemon (started|preexisting|None), `sysctls` the `key=value`
    settings wgbgp found before it changed them.
    """
    paths = [p for p, _ in managed]
    steps: list[Step] = []
    for iface in ifaces:
        live = state.interfaces.get(iface)
        if live is not None and live.exists:
            steps.append(Step(f"wireguard {iface}", "wg-down", "", iface))
    if state.nft_table:
        steps.append(Step("nftables", "nft-delete", ""))
    running = {"frr": state.frr_running and FRR_CONF in paths,
               "bird": state.bird_running and BIRD_CONF in paths}
    for daemon in ("frr", "bird"):
        if running[daemon] and how[daemon] != "preexisting":
            steps.append(Step(daemon, f"{daemon}-stop", "", daemon))
    if state.systemd:
        units = [u for u, on in state.units.items() if on and (
            u.startswith("wg-quick@") or (u in how and how[u] != "preexisting"))]
        if units:
            steps.append(Step("disable at boot", "disable", "", params={"units": units}))
    if sysctls:
        steps.append(Step("sysctl", "sysctl-restore", "", params={"settings": list(sysctls)}))
    steps.append(Step("remove files", "uninstall", "", params={"managed": list(managed)}))
    # A daemon that ran before wgbgp gets its original config back once the files are.
    for daemon in ("frr", "bird"):
        if running[daemon] and how[daemon] == "preexisting":
            steps.append(Step(daemon, f"{daemon}-reload", "", daemon))
    return steps


class _Down:
    """Performs one down step each; returns its detail, raises on failure."""

    def __init__(self, executor: Executor, state: MachineState) -> None:
        self.x = executor
        self.daemons = Daemons(executor, state.systemd)

    def run(self, step: Step) -> str:
        detail: str = getattr(self, step.action.replace("-", "_"))(step)
        return detail

    def wg_down(self, step: Step) -> str:
        iface = step.target
        res = self.x.run(["wg-quick", "down", iface], check=False, timeout=60)
        if not res.ok:  # e.g. its file is gone: remove the link itself
            self.x.run(["ip", "link", "delete", "dev", iface])
            return f"ip link delete dev {iface}"
        return f"wg-quick down {iface}"

    def nft_delete(self, step: Step) -> str:
        self.x.run(["nft", "delete", "table", "inet", "wgbgp"])
        return "nft delete table inet wgbgp"

    def frr_stop(self, step: Step) -> str:
        return self.daemons.frr_stop()

    def bird_stop(self, step: Step) -> str:
        return self.daemons.bird_stop()

    def disable(self, step: Step) -> str:
        units = step.params["units"]
        self.x.run(["systemctl", "disable", *units])
        return "systemctl disable " + " ".join(units)

    def sysctl_restore(self, step: Step) -> str:
        settings = step.params["settings"]
        self.x.run(["sysctl", "-q", "-w", *settings])
        return "restored " + ", ".join(settings)

    def uninstall(self, step: Step) -> str:
        managed = step.params["managed"]
        res = sh(self.x, UNINSTALL, "wgbgp-uninstall",
                 *[a for p, how in managed for a in (p, how)], check=False)
        check(res, "removing files")
        self.x.run(["rm", "-f", MANIFEST, SYSCTL_BEFORE, PENDING])
        return "; ".join(res.stdout.split("\n")).strip("; ")

    def frr_reload(self, step: Step) -> str:
        delta = self.daemons.frr_reload_installed("frr-reload.py (original config)")
        if delta is None:
            return "no original frr.conf to reload"
        return "reloaded FRR's original config: " + (delta.text() or "no change")

    def bird_reload(self, step: Step) -> str:
        self.daemons.bird_configure("birdc configure (original config)")
        return "reloaded BIRD's original config"


def down_machine(
    executor: Executor, files: Sequence[RenderedFile] = (), *,
    progress: Progress | None = None,
) -> ApplyResult:
    """Remove what apply installed, best effort: every step is tried; the first failure
    is the result's error. `files` adds what the topology renders here, in case the
    manifest lacks it."""
    t0 = time.monotonic()
    name = executor.name
    report = progress or (lambda *a: None)
    result = ApplyResult(name, ok=True)
    try:
        manifest_text = executor.read_file(MANIFEST)
    except Exception as exc:  # noqa: BLE001 - any failure to read it: down cannot start
        return ApplyResult(name, ok=False, failed_step="probe", error=mask_output(str(exc)),
                           seconds=time.monotonic() - t0)
    managed, frr_how = parse_manifest(manifest_text)
    known = {p for p, _ in managed}
    managed += [(f.path, "created") for f in files if f.path not in known]
    if not managed:
        result.notes.append("nothing installed by wgbgp on this machine")
        result.seconds = time.monotonic() - t0
        return result
    ifaces = [interface_of(p) for p, _ in managed if p.startswith("/etc/wireguard/")
              and p.endswith(".conf")]
    how = {"frr": frr_how, "bird": manifest_daemon(manifest_text, "bird")}
    try:
        state = probe(executor, interfaces=ifaces,
                      units=[f"wg-quick@{i}" for i in ifaces]
                      + [d for d in ("frr", "bird") if how[d]])
    except (CommandFailed, ProbeError, OSError) as exc:
        return ApplyResult(name, ok=False, failed_step="probe", error=mask_output(str(exc)),
                           seconds=time.monotonic() - t0)
    before = executor.read_file(SYSCTL_BEFORE)
    sysctls = [line.strip() for line in (before or "").splitlines() if "=" in line]

    down = _Down(executor, state)
    for step in down_steps(state, managed, ifaces, how, sysctls):
        report(name, step.name, "start", "")
        ts = time.monotonic()
        try:
            detail = down.run(step)
        except Exception as exc:  # noqa: BLE001 - best effort: the next steps still run
            msg = mask_output(str(exc))
            result.steps.append(StepResult(step.name, step.action, "failed", msg,
                                           time.monotonic() - ts))
            result.ok = False
            result.failed_step = result.failed_step or step.name
            result.error = result.error or msg
            report(name, step.name, "failed", msg)
        else:
            result.steps.append(StepResult(step.name, step.action, "ok", detail,
                                           time.monotonic() - ts))
            report(name, step.name, "ok", detail)
    result.seconds = time.monotonic() - t0
    return result
