"""The steps apply runs, one method each: each performs its step on the machine and
returns (detail, undo); on failure it raises StepFailed carrying the undo for whatever it
did change. The runner (runner.py) orders them and rolls back.

Commands besides the daemons' (daemons.py) and the scripts (scripts.py):
- WireGuard up:    wg-quick up IFACE   (WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 in its
                   environment, so wireguard-go is used only where the kernel module is missing)
- WireGuard sync:  wg-quick strip | (PrivateKey inserted from the key file on the machine) |
                   wg syncconf IFACE /dev/stdin; then `ip address`/`ip link set mtu`/routes
"""

from __future__ import annotations

from collections.abc import Callable

from ..render import FRR_CONF
from ..transport import Executor
from ..words import plural
from .changes import FileChange, interface_of, mask_output
from .daemons import Daemons
from .probe import MANIFEST, SYSCTL_BEFORE
from .results import MachinePlan
from .scripts import INSTALL, RESTORE, RETIRE, SYSCTL, UNRETIRE, VALIDATE, WG_SYNC
from .shell import StepFailed, b64_lines, check, sh
from .steps import Step

USERSPACE_ENV = "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1"

Undo = Callable[[], None]


class Actions:
    """Runs the steps of one plan and knows how to undo each."""

    def __init__(self, executor: Executor, plan: MachinePlan) -> None:
        self.x = executor
        self.plan = plan
        self.state = plan.state
        self.daemons = Daemons(executor, plan.state.systemd)
        self.notes: list[str] = []
        self.cleanup: list[str] = []  # files to remove once every step succeeded

    def run(self, step: Step) -> tuple[str, Undo | None]:
        """Perform `step` by the method named after its action."""
        method = getattr(self, step.action.replace("-", "_"))
        result: tuple[str, Undo | None] = method(step)
        return result

    def validate(self, step: Step) -> tuple[str, None]:
        files: list[FileChange] = step.params["files"]
        args: list[str] = []
        for c in files:
            name = {"frr": "frr.conf", "bird": "bird.conf", "nftables": "nftables.nft"}.get(
                c.kind, interface_of(c.path))
            args += [c.kind, name]
        res = sh(self.x, VALIDATE, "wgbgp-validate", *args,
                 input=b64_lines([c.new_text for c in files]), check=False)
        if not res.ok:
            raise StepFailed(mask_output(res.stdout.strip() or res.stderr.strip()))
        return f"{plural(len(files), 'file')} accepted by their tools", None

    def write(self, step: Step) -> tuple[str, Undo]:
        files: list[FileChange] = step.params["files"]
        args = [MANIFEST]
        for c in files:
            owner = ("frr:frr" if c.kind.startswith("frr") else
                     "bird:bird" if c.kind == "bird" else "")
            args += [c.path, f"{c.mode:o}", owner]

        def undo() -> None:
            pairs = [a for c in files for a in (c.path, c.action)]
            check(sh(self.x, RESTORE, "wgbgp-restore", *pairs, check=False), "restore files")

        res = sh(self.x, INSTALL, "wgbgp-install", *args,
                 input=b64_lines([c.new_text for c in files]), check=False)
        check(res, "writing files", undo)
        return ", ".join(f"{c.action}d {c.path}" for c in files), undo

    def sysctl(self, step: Step) -> tuple[str, Undo]:
        res = sh(self.x, SYSCTL, "wgbgp-sysctl", step.target, SYSCTL_BEFORE,
                 *step.params["keys"], check=False)
        old = [line.split("\t", 2)[1:] for line in res.stdout.splitlines()
               if line.startswith("old\t")]

        def undo() -> None:
            if old:
                self.x.run(["sysctl", "-q", "-w", *(f"{k}={v}" for k, v in old)])

        check(res, f"sysctl -p {step.target}", undo)
        return f"sysctl -p {step.target}", undo

    def nftables(self, step: Step) -> tuple[str, Undo]:
        existed = step.params["table_existed"]

        def undo() -> None:
            if existed:
                self.x.run(["nft", "-f", step.target])  # the restored previous file
            else:
                self.x.run(["nft", "delete", "table", "inet", "wgbgp"], check=False)

        check(self.x.run(["nft", "-f", step.target], check=False), f"nft -f {step.target}",
              undo)
        return f"nft -f {step.target}", undo

    def wg_up(self, step: Step) -> tuple[str, Undo]:
        iface = step.target
        argv = ["wg-quick", "up", iface]
        if step.params.get("userspace_fallback"):
            argv = ["env", USERSPACE_ENV, *argv]

        def undo() -> None:
            self.x.run(["ip", "link", "delete", "dev", iface], check=False)

        res = self.x.run(argv, check=False, timeout=60)
        check(res, f"wg-quick up {iface}", undo)
        if "userspace implementation" in res.stderr:
            self.notes.append(f"{iface}: no WireGuard kernel module, running wireguard-go "
                              "(userspace)")
        return f"wg-quick up {iface}", undo

    def wg_sync(self, step: Step) -> tuple[str, Undo]:
        iface, p = step.target, step.params
        flat = [a for op in p["ops"] for a in op]

        def undo() -> None:
            back = [a for op in p["undo_ops"] for a in op]
            check(sh(self.x, WG_SYNC, "wgbgp-wg-sync", iface, p["path"], p["key_file"],
                     p["table"], *back, check=False), f"re-sync {iface}")

        res = sh(self.x, WG_SYNC, "wgbgp-wg-sync", iface, p["path"], p["key_file"], p["table"],
                 *flat, check=False)
        check(res, f"wg syncconf {iface}", undo)
        extra = [line for line in res.stdout.splitlines()
                 if line.startswith(("route ", "link up"))]
        return "; ".join([f"wg syncconf {iface}", *(f"{o} {a}" for o, a in p["ops"]), *extra]), undo

    # --- FRR and BIRD ----------------------------------------------------------------

    def _undo_reload(self) -> None:
        # frr.conf is already restored by the files' undo.
        if self.daemons.frr_reload_installed("frr-reload.py (previous config)") is None:
            raise StepFailed(f"{FRR_CONF} is missing: cannot reload the previous config")

    def _undo_bird(self) -> None:
        self.daemons.bird_configure("birdc configure (previous config)")

    def frr_start(self, step: Step) -> tuple[str, Undo]:
        def undo() -> None:
            self.daemons.frr_stop(checked=False)

        return self.daemons.frr_service("start", "started", step.params.get("asn"), undo), undo

    def frr_reload(self, step: Step) -> tuple[str, Undo]:
        frr = self.plan.changes.get(FRR_CONF)
        assert frr is not None
        delta, res = self.daemons.frr_reload(frr.new_text, note=True)
        check(res, "frr-reload.py", self._undo_reload)
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

    def frr_restart(self, step: Step) -> tuple[str, Undo]:
        return (self.daemons.frr_service("restart", "preexisting", step.params.get("asn"),
                                         self._undo_reload), self._undo_reload)

    def bird_start(self, step: Step) -> tuple[str, Undo]:
        self.daemons.bird_note("started")

        def undo() -> None:
            self.daemons.bird_stop()

        return self.daemons.bird_start(undo=undo), undo

    def bird_reload(self, step: Step) -> tuple[str, Undo]:
        self.daemons.bird_note("preexisting")
        res = self.daemons.bird_configure("birdc configure", self._undo_bird)
        answer = [line for line in res.stdout.splitlines() if line.startswith("Reconfig")]
        return f"birdc configure: {answer[-1] if answer else 'done'}", self._undo_bird

    def retire(self, step: Step) -> tuple[str, Undo]:
        """Stop the BGP daemon this machine no longer runs (or give it back its original
        config, if it ran before wgbgp), and put its files away as `down` would."""
        daemon, how, paths = step.target, step.params["how"], step.params["paths"]
        stop = step.params["running"] and how != "preexisting"
        d, label = self.daemons, self.daemons.name(daemon)
        done: list[str] = []

        def undo() -> None:
            if "files" in done:
                check(sh(self.x, UNRETIRE, "wgbgp-unretire", MANIFEST, *paths, check=False),
                      "put back the retired files")
            if "stopped" in done:
                if daemon == "frr":
                    d.frr_start()
                else:
                    d.bird_start("restart BIRD")
            elif "reloaded" in done:  # its wgbgp config again, files being back
                if daemon == "frr":
                    self._undo_reload()
                else:
                    self._undo_bird()

        if stop:
            d.stop(daemon)
            d.disable(daemon)
            done.append("stopped")
        res = sh(self.x, RETIRE, "wgbgp-retire", MANIFEST, daemon, *paths, check=False)
        check(res, f"putting away {', '.join(paths)}", undo)
        done.append("files")
        self.cleanup += [MANIFEST + ".wgbgp-retired", *(p + ".wgbgp-retired" for p in paths)]
        detail = [line for line in res.stdout.splitlines() if line.strip()]
        if how == "preexisting" and step.params["running"]:
            # It ran before wgbgp: it keeps running, with the config it had then.
            if daemon == "frr":
                d.frr_reload_installed("frr-reload.py (FRR's original config)", undo)
            else:
                d.bird_configure("birdc configure (BIRD's original config)", undo)
            done.append("reloaded")
            detail.append(f"{label} ran before wgbgp: it keeps running with its original config")
            self.notes.append(f"{label} ran here before wgbgp and keeps running with its "
                              "original config; if that config speaks BGP, it competes for "
                              "TCP port 179")
        elif stop:
            detail.insert(0, f"stopped {label}")
        return "; ".join(detail), undo

    def enable(self, step: Step) -> tuple[str, Undo]:
        units = step.params["units"]

        def undo() -> None:
            self.x.run(["systemctl", "disable", *units], check=False)

        check(self.x.run(["systemctl", "enable", *units], check=False), "systemctl enable",
              undo)
        return "systemctl enable " + " ".join(units), undo
