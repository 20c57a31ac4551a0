"""A fake machine at the process boundary: records every command apply runs and answers
like a Debian host would (probe output computed from its fake files and live state)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

from wgbgp.apply.changes import mask_secrets, parse_wg_quick, sysctl_settings
from wgbgp.apply.drift import parse_wg_config
from wgbgp.apply.probe import sysctl_key
from wgbgp.transport import CommandFailed, CommandResult

DEBIAN_DAEMONS = "bgpd=no\nospfd=no\nbfdd=no\nvtysh_enable=yes\nbgpd_options=\"   -A 127.0.0.1\"\n"
TOOLS = ("wg", "wg-quick", "ip", "nft", "sysctl", "vtysh", "base64", "sha256sum", "systemctl",
         "frrinit.sh", "frr-reload.py")


@dataclass
class FakeMachine:
    name: str = "fake"
    files: dict[str, tuple[str, int]] = field(default_factory=dict)  # path -> (text, mode)
    interfaces: dict[str, tuple[int, list[str]]] = field(default_factory=dict)  # mtu, addrs
    frr_running: bool = False
    nft_table: bool = False
    systemd: bool = False
    enabled_units: set[str] = field(default_factory=set)
    missing_tools: set[str] = field(default_factory=set)
    fail: dict[str, str] = field(default_factory=dict)  # command key -> error message
    frr_delta: str = "\nLines To Add\n============\nrouter bgp 65010\n network 1.2.3.0/24\n"
    log: list[tuple[str, ...]] = field(default_factory=list)
    stdins: list[str] = field(default_factory=list)
    prev: dict[str, tuple[str, int]] = field(default_factory=dict)
    services: list[tuple[str, str]] = field(default_factory=list)  # (verb, how) FRR was run
    # Live WireGuard and kernel facts, kept as wg-quick, `wg syncconf` and sysctl set them
    # (an interface set by hand in `interfaces` has none: the probe then reports none).
    showconf: dict[str, str] = field(default_factory=dict)
    routes: dict[str, list[str]] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)
    sysctls: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.files.setdefault("/etc/frr/daemons", (DEBIAN_DAEMONS, 0o640))

    # --- the Executor interface ---
    def run(self, argv, *, input=None, check=True, timeout=60) -> CommandResult:
        argv = list(argv)
        self.log.append(tuple(argv))
        if input is not None:
            self.stdins.append(input)
        key = self.key(argv)
        if key in self.fail:
            res = CommandResult(tuple(argv), 1, "", self.fail[key])
        else:
            res = self.answer(key, argv, input or "")
        if check and not res.ok:
            raise CommandFailed(res, self.name)
        return res

    def read_file(self, path):
        self.log.append(("cat", path))
        f = self.files.get(path)
        return None if f is None else f[0]

    def write_file(self, path, text, mode=0o644):
        self.files[path] = (text, mode)

    # --- helpers ---
    @staticmethod
    def key(argv: list[str]) -> str:
        """A short name for a command: the script name for `sh -c`, else the argv head."""
        if argv[:2] == ["sh", "-c"]:
            return argv[3]
        if argv[0] == "env":
            argv = argv[2:]
        return " ".join(argv[:2])

    @property
    def keys(self) -> list[str]:
        return [self.key(list(a)) for a in self.log if a[0] != "cat"]

    def ok(self, argv, out="", err="") -> CommandResult:
        return CommandResult(tuple(argv), 0, out, err)

    def probe_output(self, args: list[str]) -> str:
        out = [f"tool\t{t}\t{0 if t in self.missing_tools else 1}" for t in TOOLS]
        out.append(f"systemd\t{int(self.systemd)}")
        out.append(f"pending\t{int('/etc/wgbgp/apply-pending' in self.files)}")
        if self.frr_running:
            out += ["daemon\twatchfrr\t100", "daemon\tzebra\t101", "daemon\tbgpd\t102",
                    "daemon\tstaticd\t103", "daemon\tbfdd\t104"]
        out.append(f"nft\t{int(self.nft_table)}")
        for tag, arg in zip(args[::2], args[1::2], strict=True):
            if tag in "FR":
                f = self.files.get(arg)
                if f is None:
                    out += [f"file\t{arg}\t0", ""]
                else:
                    text, mode = f
                    shown = mask_secrets(text) if tag == "F" else text
                    digest = hashlib.sha256(text.encode()).hexdigest()
                    out += [f"file\t{arg}\t1\t{mode:o}\t{digest}",
                            base64.b64encode(shown.encode()).decode()]
            elif tag == "I":
                if arg in self.interfaces:
                    mtu, addrs = self.interfaces[arg]
                    out.append(f"iface\t{arg}\t1\t{mtu}\t{int(arg not in self.down)}")
                    out += [f"addr\t{arg}\t{a}" for a in addrs]
                else:
                    out.append(f"iface\t{arg}\t0")
            elif tag == "W":
                if arg in self.showconf and arg in self.interfaces:
                    out += [f"wgconf\t{arg}\t1",
                            base64.b64encode(mask_secrets(self.showconf[arg]).encode()).decode()]
                    out += [f"route\t{arg}\t{r}" for r in self.routes.get(arg, [])]
                elif arg in self.interfaces:
                    out += [f"wgconf\t{arg}\t0", ""]
            elif tag == "S":
                key = sysctl_key(arg)
                if key in self.sysctls:
                    out.append(f"sysctl\t{arg}\t{self.sysctls[key]}")
            elif tag == "K":
                out.append(f"key\t{arg}\t{int(arg in self.files)}")
            elif tag == "U":
                out.append(f"unit\t{arg}\t{int(arg in self.enabled_units)}")
        out.append("end")
        return "\n".join(out) + "\n"

    def wg_from_file(self, iface: str) -> None:
        """The live interface as wg-quick (or `wg syncconf` + routes) makes it from its file."""
        path = f"/etc/wireguard/{iface}.conf"
        f = self.files.get(path)
        if f is None:
            return
        wg = parse_wg_quick(path, f[0])
        self.interfaces[iface] = (wg.mtu or 1420, list(wg.addresses))
        self.showconf[iface] = f[0]
        self.routes[iface] = ([a for p in parse_wg_config(f[0]).peers.values()
                               for a in sorted(p.allowed_ips) if not a.endswith("/0")]
                              if wg.table == "auto" else [])

    def answer(self, key: str, argv: list[str], stdin: str) -> CommandResult:
        if key == "wgbgp-probe":
            return self.ok(argv, self.probe_output(argv[4:]))
        if key == "wgbgp-lock":  # applylock.ACQUIRE: the holder's pid
            return self.ok(argv, "locked 4242\n")
        if key == "wgbgp-install":
            args = argv[5:]
            datas = stdin.splitlines()
            self.files["/etc/wgbgp/apply-pending"] = ("x", 0o644)
            for (path, mode, _owner), data in zip(
                    zip(args[::3], args[1::3], args[2::3], strict=True), datas, strict=True):
                if path in self.files:
                    self.prev[path] = self.files[path]
                self.files[path] = (base64.b64decode(data).decode(), int(mode, 8))
            return self.ok(argv)
        if key == "wgbgp-restore":
            args = argv[4:]
            for path, action in zip(args[::2], args[1::2], strict=True):
                if action == "create":
                    self.files.pop(path, None)
                else:
                    self.files[path] = self.prev[path]
            return self.ok(argv)
        if key == "rm -f":
            for p in argv[2:]:
                self.files.pop(p, None)
            return self.ok(argv)
        if key == "wg-quick up":
            self.interfaces[argv[-1]] = (1420, [])
            self.wg_from_file(argv[-1])
            return self.ok(argv, "", "[!] Missing WireGuard kernel module. Falling back to slow "
                                     "userspace implementation.")
        if key == "wgbgp-wg-sync":  # IFACE SRC KEYFILE TABLE OPS...
            self.wg_from_file(argv[4])
            ops = argv[8:]
            if ("up", "1") in zip(ops[::2], ops[1::2], strict=True):
                self.down.discard(argv[4])
        if key == "wgbgp-sysctl":  # FILE BEFORE KEYS...
            f = self.files.get(argv[4])
            if f is not None:
                self.sysctls.update(sysctl_settings(f[0]))
        if key == "wgbgp-frr-service":  # MANIFEST HOW VERB SYSTEMD TENTHS ASN
            self.frr_running = True
            self.services.append((argv[6], "systemd" if argv[7] == "1" else "frrinit"))
        if key in ("/usr/lib/frr/frrinit.sh stop", "systemctl stop"):
            self.frr_running = False
        if key == "nft -f":
            self.nft_table = True
        if key == "systemctl enable":
            self.enabled_units |= set(argv[2:])
        if key == "vtysh -c":
            return self.ok(argv, "frr version 8.4.4\nhostname box\nno ipv6 forwarding\n")
        if key == "wgbgp-frr-reload":
            return self.ok(argv, self.frr_delta + ("==reload\n==reloaded\n"
                                                   if argv[4] == "reload" else ""))
        return self.ok(argv)
