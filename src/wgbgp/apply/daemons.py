"""Starting, stopping and reloading FRR and BIRD on one machine: the one place that knows
the commands, their timeouts and how each failure reads.

Commands (the scripts are in scripts.py):
- FRR start:       /usr/lib/frr/frrinit.sh start   (systemctl start frr under systemd),
                   then wait until bgpd answers
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

from collections.abc import Callable

from ..render import BIRD_CONF, FRR_CONF
from ..transport import CommandResult, Executor
from .changes import FrrDelta, parse_frr_reload_test, pin_os_lines
from .probe import MANIFEST
from .scripts import BIRD_CONFIGURE, BIRD_START, BIRD_STOP, FRR_RELOAD, FRR_SERVICE, NOTE_BIRD
from .shell import check, sh

FRRINIT = "/usr/lib/frr/frrinit.sh"
FRR_START_TIMEOUT = 30.0
BIRD_START_TIMEOUT = 10.0

Undo = Callable[[], None] | None


class Daemons:
    """FRR and BIRD on the machine behind `executor`; `systemd` picks systemctl over the
    daemons' own init scripts."""

    def __init__(self, executor: Executor, systemd: bool) -> None:
        self.x = executor
        self.systemd = systemd

    # --- FRR -------------------------------------------------------------------------

    def frr_argv(self, verb: str) -> list[str]:
        """The command that starts/stops/restarts FRR here."""
        return ["systemctl", verb, "frr"] if self.systemd else [FRRINIT, verb]

    def frr_service(self, verb: str, how: str, asn: int | None, undo: Undo = None) -> str:
        """`frrinit.sh VERB` (or `systemctl VERB frr`), then wait for bgpd: one command.
        Notes in the manifest that wgbgp found FRR `how` (started|preexisting)."""
        tenths = str(int(FRR_START_TIMEOUT * 10))
        res = sh(self.x, FRR_SERVICE, "wgbgp-frr-service", MANIFEST, how, verb,
                 "1" if self.systemd else "0", tenths, "" if asn is None else str(asn),
                 check=False, timeout=FRR_START_TIMEOUT + 150)
        argv = " ".join(self.frr_argv(verb))
        check(res, argv, undo)
        return argv

    def frr_start(self, what: str = "restart FRR") -> None:
        """Start FRR again (nothing noted in the manifest): undoing a stop."""
        check(self.x.run(self.frr_argv("start"), check=False,
                         timeout=FRR_START_TIMEOUT + 150), what)

    def frr_stop(self, checked: bool = True) -> str:
        """Stop FRR; unless `checked`, a failure is ignored (an undo's best effort)."""
        argv = self.frr_argv("stop")
        res = self.x.run(argv, check=False, timeout=180)
        if checked:
            check(res, " ".join(argv))
        return " ".join(argv)

    def frr_reload(self, text: str, note: bool = False) -> tuple[FrrDelta, CommandResult]:
        """Make the running FRR match `text` (frr-reload.py); with `note`, the manifest
        records that wgbgp reloaded an FRR it found running."""
        running = self.x.run(["vtysh", "-c", "show running-config"]).stdout
        res = sh(self.x, FRR_RELOAD, "wgbgp-frr-reload", "reload", *([MANIFEST] if note else []),
                 input=pin_os_lines(text, running), check=False, timeout=300)
        return parse_frr_reload_test(res.stdout.split("==reload", 1)[0]), res

    def frr_reload_installed(self, what: str, undo: Undo = None) -> FrrDelta | None:
        """Reload FRR with the frr.conf now on disk (restored or original); None if there
        is none."""
        text = self.x.read_file(FRR_CONF)
        if not text:
            return None
        delta, res = self.frr_reload(text)
        check(res, what, undo)
        return delta

    def frr_test(self, text: str) -> FrrDelta:
        """Which lines of the running config a reload to `text` would change."""
        running = self.x.run(["vtysh", "-c", "show running-config"]).stdout
        res = sh(self.x, FRR_RELOAD, "wgbgp-frr-reload", "test",
                 input=pin_os_lines(text, running))
        return parse_frr_reload_test(res.stdout)

    # --- BIRD ------------------------------------------------------------------------

    def bird_note(self, how: str) -> None:
        """Record in the manifest how wgbgp found BIRD (started|preexisting)."""
        sh(self.x, NOTE_BIRD, "wgbgp-note", MANIFEST, how, check=False)

    def bird_start(self, what: str | None = None, undo: Undo = None) -> str:
        """Start BIRD and wait until birdc answers; `what` names a failure."""
        if self.systemd:
            argv = "systemctl start bird"
            check(self.x.run(argv.split(), check=False, timeout=120), what or argv, undo)
            return argv
        tenths = str(int(BIRD_START_TIMEOUT * 10))
        res = sh(self.x, BIRD_START, "wgbgp-bird-start", BIRD_CONF, tenths, check=False,
                 timeout=BIRD_START_TIMEOUT + 30)
        check(res, what or f"bird -c {BIRD_CONF}", undo)
        return f"bird -c {BIRD_CONF}"

    def bird_stop(self) -> str:
        """Stop BIRD (systemctl stop bird, or birdc down)."""
        if self.systemd:
            self.x.run(["systemctl", "stop", "bird"], timeout=120)
            return "systemctl stop bird"
        check(sh(self.x, BIRD_STOP, "wgbgp-bird-stop", check=False), "birdc down")
        return "birdc down"

    def bird_configure(self, what: str, undo: Undo = None) -> CommandResult:
        """`birdc configure` with the bird.conf on disk; `what` names a failure."""
        res = sh(self.x, BIRD_CONFIGURE, "wgbgp-bird-configure", BIRD_CONF, check=False)
        check(res, what, undo)
        return res

    # --- either ----------------------------------------------------------------------

    def stop(self, daemon: str) -> str:
        """Stop `daemon` (frr|bird); returns the command that did it."""
        return self.frr_stop() if daemon == "frr" else self.bird_stop()

    def disable(self, daemon: str) -> None:
        """Under systemd, no longer start `daemon` at boot (best effort)."""
        if self.systemd:
            self.x.run(["systemctl", "disable", daemon], check=False)

    def name(self, daemon: str) -> str:
        """How messages name `daemon`."""
        return "FRR" if daemon == "frr" else "BIRD"
