"""Which steps apply runs on one machine, and why. Pure: a function of the change set and
the probed state, so `plan` shows exactly what `apply` will do, and tests check ordering
without a machine.

Order: validate -> write files -> sysctl -> nftables -> WireGuard (per interface) -> FRR or
BIRD -> enable at boot. Files are checked by their own tools before any is written; kernel settings
and the firewall come before the tunnel they protect; BGP comes last because it runs over
the tunnel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import ip_interface
from typing import Any

from ..programs import install_hint
from ..render import BIRD_CONF, FRR_CONF
from .changes import (
    FRR_DAEMONS,
    ChangeSet,
    FileChange,
    WgInterface,
    bgp_asn,
    manifest_entries,
    parse_wg_quick,
    sysctl_settings,
)
from .drift import (
    Drift,
    address_drift,
    frr_missing,
    link_drift,
    peer_drift,
    route_drift,
    sysctl_drift,
)
from .probe import MANIFEST, MachineState

# Each BGP daemon's files that apply installs: its config first.
DAEMON_FILES = {"frr": (FRR_CONF, FRR_DAEMONS), "bird": (BIRD_CONF,)}


@dataclass(frozen=True)
class Step:
    """One named step. `action` says what runs; `reason` says why, for people."""

    name: str
    # validate write sysctl nftables wg-up wg-sync retire frr-start frr-restart frr-reload
    # bird-start bird-reload enable
    action: str
    reason: str
    target: str = ""
    params: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "action": self.action, "reason": self.reason,
                "target": self.target}


@dataclass(frozen=True)
class StepPlan:
    steps: tuple[Step, ...]
    problems: tuple[str, ...]  # preflight: nothing may run while any is present
    notes: tuple[str, ...]
    drift: tuple[Drift, ...] = ()  # live state that differs from unchanged files


def wg_interfaces(changes: ChangeSet) -> dict[str, tuple[FileChange, WgInterface]]:
    out = {}
    for c in changes.of_kind("wireguard"):
        wg = parse_wg_quick(c.path, c.new_text)
        out[wg.name] = (c, wg)
    return out


def address_ops(want: WgInterface, live_addresses: tuple[str, ...],
                live_mtu: int | None) -> list[tuple[str, str]]:
    """`ip` operations that make a live interface's addresses and MTU match its file."""
    desired = {str(ip_interface(a)) for a in want.addresses}
    live = {str(ip_interface(a)) for a in live_addresses}
    ops: list[tuple[str, str]] = []
    for a in sorted(live - desired):
        if ip_interface(a).ip.is_link_local:
            continue  # the kernel's own IPv6 link-local address
        ops.append(("addr-del", a))
    ops += [("addr-add", a) for a in sorted(desired - live)]
    if want.mtu is not None and want.mtu != live_mtu:
        ops.append(("mtu", str(want.mtu)))
    return ops


def preflight(changes: ChangeSet, state: MachineState) -> list[str]:
    """What must be fixed on the machine before anything can be applied."""
    problems = []
    kinds = {c.kind for c in changes.changes}
    if "wireguard" in kinds:
        missing = [t for t in ("wg", "wg-quick", "ip") if not state.has(t)]
        if missing:
            problems.append(f"{', '.join(missing)} not found: {install_hint(missing)}")
        for _, (_, wg) in wg_interfaces(changes).items():
            if wg.key_file and not wg.inline_key and not state.keys.get(wg.key_file, False):
                problems.append(
                    f"private key {wg.key_file} is missing: run `wgbgp keygen` on this machine "
                    "and put its public key in the topology")
    if "frr" in kinds:
        frr = ("vtysh", "frrinit.sh", "frr-reload.py")
        missing = [t for t in frr if not state.has(t)]
        daemons = state.files.get(FRR_DAEMONS)
        if missing or daemons is None or not daemons.exists:
            problems.append("FRR is not installed (need vtysh, /usr/lib/frr/frrinit.sh, "
                            f"frr-reload.py and /etc/frr/daemons): {install_hint(frr)}")
    needs = [("bird", ("bird", "birdc")), ("nftables", ("nft",)), ("sysctl", ("sysctl",)),
             (None, ("base64", "sha256sum"))]
    for kind, tools in needs:
        missing = [t for t in tools if not state.has(t)] if kind is None or kind in kinds else []
        if missing:
            problems.append(f"{', '.join(missing)} not found: {install_hint(missing)}")
    return problems


def plan_steps(changes: ChangeSet, state: MachineState, *, enable_at_boot: bool = True,
               userspace_fallback: bool = True) -> StepPlan:
    """The steps for one machine. An unchanged, running machine gets none.

    Live state is compared too (drift.py): where a file is unchanged but the machine no
    longer runs what it says (an interface down, a route or peer missing, a sysctl or the
    nft table reset, a daemon dead), the step that applies that file runs again, and the
    drift it repairs is listed in `StepPlan.drift`.
    """
    steps: list[Step] = []
    notes: list[str] = []
    drift: list[Drift] = []
    problems = preflight(changes, state)
    # A previous apply stopped midway (lost connection, crash): files may be new while the
    # live state is old, so every live step runs once more even where files look unchanged.
    force = state.pending
    if force:
        notes.append("a previous apply did not finish: re-applying the live state")

    to_check = [c for c in changes.changed
                if c.content_changed and c.kind in ("frr", "bird", "nftables", "wireguard")]
    if to_check:
        steps.append(Step("validate", "validate",
                          "check " + ", ".join(c.path for c in to_check) + " before writing",
                          params={"files": to_check}))
    if changes.changed:
        steps.append(Step("write files", "write",
                          ", ".join(f"{c.action} {c.path}" for c in changes.changed),
                          params={"files": list(changes.changed)}))

    for c in changes.of_kind("sysctl"):
        found: list[Drift] = ([] if c.content_changed else
                              sysctl_drift(sysctl_settings(c.new_text), state, "sysctl"))
        drift += found
        if c.content_changed or force or found:
            steps.append(Step("sysctl", "sysctl", f"{c.path} changed" if c.content_changed
                              else "re-apply after unfinished apply" if force
                              else "live values differ: " + "; ".join(d.present for d in found),
                              c.path, {"keys": [k for k, _ in sysctl_settings(c.new_text)]}))

    for c in changes.of_kind("nftables"):
        if not c.content_changed and not state.nft_table:
            drift.append(Drift("nftables", "inet wgbgp", "table inet wgbgp {be} not loaded",
                               "nftables"))
        if c.content_changed or not state.nft_table or force:
            why = (f"{c.path} changed" if c.content_changed else
                   "table inet wgbgp is not loaded" if not state.nft_table else
                   "re-apply after unfinished apply")
            steps.append(Step("nftables", "nftables", why, c.path,
                              {"table_existed": state.nft_table}))

    for name, (c, wg) in wg_interfaces(changes).items():
        live = state.interfaces.get(name)
        sname = f"wireguard {name}"
        if live is None or not live.exists:
            if live is not None and not c.content_changed and c.action != "create":
                drift.append(Drift("interface", name, f"{name} {{be}} missing", sname))
            steps.append(Step(sname, "wg-up", f"interface {name} is not up",
                              name, {"userspace_fallback": userspace_fallback}))
            continue
        ops = address_ops(wg, live.addresses, live.mtu)
        found = []
        if not c.content_changed:
            found += link_drift(name, live, sname)
            found += address_drift(name, ops, sname)
            shown = state.wg_config.get(name)
            if shown is not None:
                found += peer_drift(name, c.new_text, shown, sname)
                if wg.table == "auto" and name in state.routes:
                    found += route_drift(name, c.new_text, state.routes[name], sname)
        drift += found
        if live.up is False:
            ops = [("up", "1"), *ops]
        if c.content_changed or force or found:
            why = (f"{c.path} changed: update {name} in place (wg syncconf)"
                   if c.content_changed or force else
                   f"live state differs from {c.path}: " + "; ".join(d.present for d in found)
                   + f"; re-sync {name} (wg syncconf, routes)")
            steps.append(Step(
                sname, "wg-sync",
                why + (f"; {', '.join(f'{o} {a}' for o, a in ops if o != 'up')}"
                       if any(o != "up" for o, _ in ops) else ""),
                name, {"path": c.path, "key_file": "" if wg.inline_key else (wg.key_file or ""),
                       "table": wg.table, "ops": ops,
                       "undo_ops": address_ops(
                           WgInterface(name, live.addresses, live.mtu, wg.table, None, False),
                           wg.addresses, wg.mtu)}))

    steps += retire_steps(changes, state)

    frr = changes.get(FRR_CONF)
    if frr is not None:
        asn = bgp_asn(frr.new_text)
        daemons = changes.get(FRR_DAEMONS)
        # Daemons the installed /etc/frr/daemons enables (what FRR started with): a change
        # to that file takes effect at FRR's next start (note below), it is no drift.
        installed = state.files.get(FRR_DAEMONS)
        missing = frr_missing(state, installed.text if installed is not None else None)
        if not state.frr_running:
            if not frr.content_changed and frr.action != "create":
                drift.append(Drift("daemon", "frr", "FRR {be} not running", "frr"))
            steps.append(Step("frr", "frr-start", "FRR is not running", params={"asn": asn}))
        elif not state.bgpd_running:
            drift.append(Drift("daemon", "bgpd", "bgpd {be} not running", "frr"))
            steps.append(Step("frr", "frr-restart",
                              "FRR runs without bgpd: restart it so that bgpd starts",
                              params={"asn": asn}))
        elif missing:
            drift += [Drift("daemon", d, f"{d} {{be}} not running", "frr") for d in missing]
            steps.append(Step("frr", "frr-restart",
                              f"FRR runs without {', '.join(missing)}: restart it",
                              params={"asn": asn}))
        elif frr.content_changed or force:
            steps.append(Step("frr", "frr-reload",
                              f"{frr.path} changed: reload (frr-reload.py, only the delta)"
                              if frr.content_changed else "re-apply after unfinished apply",
                              params={"asn": asn}))
        if daemons is not None and daemons.content_changed and state.bgpd_running:
            notes.append("enabled daemons in /etc/frr/daemons take effect at FRR's next start")

    bird = changes.get(BIRD_CONF)
    if bird is not None:
        if not state.bird_running:
            if not bird.content_changed and bird.action != "create":
                drift.append(Drift("daemon", "bird", "BIRD {be} not running", "bird"))
            steps.append(Step("bird", "bird-start", "BIRD is not running"))
        elif bird.content_changed or force:
            steps.append(Step("bird", "bird-reload",
                              f"{bird.path} changed: reload (birdc configure; unchanged "
                              "sessions stay up)" if bird.content_changed
                              else "re-apply after unfinished apply"))

    if enable_at_boot:
        units = [f"wg-quick@{name}" for name in wg_interfaces(changes)]
        if frr is not None:
            units.append("frr")
        if bird is not None:
            units.append("bird")
        if state.systemd:
            todo = [u for u in units if not state.units.get(u, False)]
            if todo:
                steps.append(Step("enable at boot", "enable", "systemctl enable " + " ".join(todo),
                                  params={"units": todo}))
        elif units:
            notes.append("no systemd on this machine: nothing enabled at boot; run "
                         "`wgbgp apply` again after a reboot")
    if changes.of_kind("nftables") and state.systemd and enable_at_boot:
        notes.append("table inet wgbgp is not restored at boot by wg-quick or FRR: include "
                     "/etc/wgbgp/nftables.nft from /etc/nftables.conf, or apply after a reboot")
    return StepPlan(tuple(steps), tuple(problems), tuple(notes), tuple(drift))


def retire_steps(changes: ChangeSet, state: MachineState) -> list[Step]:
    """A BGP daemon wgbgp installed a config for, which the rendered files no longer have
    (the node switched between FRR and BIRD, or stopped speaking BGP): stop it (or, if
    it ran before wgbgp, give it back its original config) and put its files away, before
    the new daemon starts (both would listen on TCP 179)."""
    manifest = state.files.get(MANIFEST)
    files, daemons = manifest_entries(manifest.text if manifest is not None else None)
    steps = []
    for daemon, paths in DAEMON_FILES.items():
        conf = paths[0]
        if conf not in files or changes.get(conf) is not None:
            continue
        how = daemons.get(daemon, "started")
        running = state.frr_running if daemon == "frr" else state.bird_running
        name = "FRR" if daemon == "frr" else "BIRD"
        what = ("give it back its original config" if how == "preexisting" else
                f"stop {name}" if running else f"{name} is not running")
        steps.append(Step(
            f"retire {daemon}", "retire",
            f"{conf} is no longer rendered here (the machine's BGP daemon changed): {what}, "
            f"then remove or restore {', '.join(p for p in paths if p in files)}",
            daemon, {"how": how, "running": running,
                     "paths": [p for p in paths if p in files]}))
    return steps
