"""What apply would change on one machine, computed from text alone. Pure.

The machine's current files arrive as `CurrentFile` records made *on the machine* (see
`probe`): a SHA-256 of the real content decides whether a file changed, and a copy with
every private key masked serves for the diff. So a key inside an existing file never
leaves the machine, and change detection stays exact.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_interface
from typing import Any, Literal

from ..render import RenderedFile

MASK = "(hidden)"
# A WireGuard secret in a config: `PrivateKey = ...` or `PresharedKey = ...`.
_SECRET_LINE = re.compile(r"^([ \t]*(?:PrivateKey|PresharedKey)[ \t]*=[ \t]*)(.*?)([ \t]*)$",
                          re.IGNORECASE | re.MULTILINE)
# wg(8) quotes what it cannot parse in backticks, a broken key included.
_BACKTICKED = re.compile(r"`[^`\n]*`")

FRR_DAEMONS = "/etc/frr/daemons"
# bgpd speaks BGP, staticd holds the blackhole routes that originate our prefixes (frrinit
# starts it anyway), bfdd is cheap and lets sessions use BFD later without a restart.
WANTED_DAEMONS = ("bgpd", "staticd", "bfdd")

Action = Literal["create", "update", "unchanged"]


# FRR: `neighbor X password SECRET` (TCP-MD5), `password SECRET`, `enable password SECRET`.
# Also `no neighbor X password SECRET`, as frr-reload.py prints a changed one.
_FRR_PASSWORD = re.compile(
    r"^([ \t]*(?:no[ \t]+)?(?:neighbor[ \t]+\S+[ \t]+|enable[ \t]+)?password[ \t]+)(\S.*)$",
    re.MULTILINE)


def mask_secrets(text: str) -> str:
    """Text with every private/preshared key and FRR password replaced by `(hidden)`."""
    text = _SECRET_LINE.sub(lambda m: f"{m.group(1)}{MASK}" if m.group(2) else m.group(0), text)
    return _FRR_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}", text)


def mask_output(text: str) -> str:
    """Command output made safe to show: key lines masked, backticked fragments hidden."""
    return _BACKTICKED.sub(f"`{MASK}`", mask_secrets(text))


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CurrentFile:
    """One file as it is on the machine now (text already masked there)."""

    path: str
    exists: bool
    mode: int | None = None
    sha256: str | None = None
    text: str | None = None  # masked: for showing a diff, never for writing back


@dataclass(frozen=True)
class FileChange:
    """One file apply manages: what it holds now, what it will hold, and whether that differs."""

    path: str
    kind: str
    action: Action
    mode: int
    old_mode: int | None
    content_changed: bool
    new_text: str = field(repr=False)  # what gets written; may hold a key when rendered inline
    old_text: str | None = field(default=None, repr=False)  # masked

    @property
    def changed(self) -> bool:
        return self.action != "unchanged"

    @property
    def diff(self) -> str:
        """A unified diff, private keys masked; empty when nothing changes."""
        if not self.changed:
            return ""
        old = (self.old_text or "").splitlines(keepends=True)
        new = mask_secrets(self.new_text).splitlines(keepends=True)
        head = []
        if self.action == "create":
            head.append(f"new file {self.path} (mode {self.mode:04o})\n")
        elif self.old_mode is not None and self.old_mode != self.mode:
            head.append(f"mode {self.path}: {self.old_mode:04o} -> {self.mode:04o}\n")
        body = difflib.unified_diff(
            old, new,
            fromfile="/dev/null" if self.action == "create" else f"a{self.path}",
            tofile=f"b{self.path}",
        )
        lines = [*head, *(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                          for line in body)]
        return "".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "action": self.action,
                "mode": f"{self.mode:04o}",
                "old_mode": None if self.old_mode is None else f"{self.old_mode:04o}",
                "content_changed": self.content_changed, "diff": self.diff}


@dataclass(frozen=True)
class ChangeSet:
    """Every file apply manages on one machine, changed or not."""

    machine: str
    changes: tuple[FileChange, ...]

    @property
    def changed(self) -> tuple[FileChange, ...]:
        return tuple(c for c in self.changes if c.changed)

    @property
    def empty(self) -> bool:
        return not self.changed

    def get(self, path: str) -> FileChange | None:
        return next((c for c in self.changes if c.path == path), None)

    def of_kind(self, kind: str) -> tuple[FileChange, ...]:
        return tuple(c for c in self.changes if c.kind == kind)

    def diff(self) -> str:
        """All diffs, masked; says so when nothing changes."""
        if self.empty:
            return f"{self.machine or 'machine'}: no changes\n"
        return "".join(c.diff for c in self.changed)

    def summary(self) -> str:
        counts = {a: sum(1 for c in self.changes if c.action == a)
                  for a in ("create", "update", "unchanged")}
        return ", ".join(f"{n} to {a}" if a != "unchanged" else f"{n} unchanged"
                         for a, n in counts.items() if n) or "no files"

    def to_dict(self) -> dict[str, Any]:
        return {"machine": self.machine, "summary": self.summary(),
                "files": [c.to_dict() for c in self.changes]}


def compute_changes(
    files: Sequence[RenderedFile], current: Mapping[str, CurrentFile], machine: str = "",
) -> ChangeSet:
    """Compare rendered files with the machine's current ones. Pure."""
    out = []
    seen: set[str] = set()
    for f in files:
        if f.path in seen:
            raise ValueError(f"{f.path} is rendered twice for {machine or 'one machine'}")
        seen.add(f.path)
        cur = current.get(f.path) or CurrentFile(f.path, False)
        if not cur.exists:
            out.append(FileChange(f.path, f.kind, "create", f.mode, None, True, f.text))
            continue
        content_changed = cur.sha256 != sha256_text(f.text)
        mode_changed = cur.mode is not None and cur.mode != f.mode
        action: Action = "update" if content_changed or mode_changed else "unchanged"
        out.append(FileChange(f.path, f.kind, action, f.mode, cur.mode, content_changed,
                              f.text, cur.text))
    return ChangeSet(machine, tuple(out))


# --- facts read from rendered text ------------------------------------------------------

@dataclass(frozen=True)
class WgInterface:
    """What apply needs from a wg-quick file: addresses, MTU, table, where the key is."""

    name: str
    addresses: tuple[str, ...]
    mtu: int | None
    table: str  # "auto" or "off" (or a table id)
    key_file: str | None
    inline_key: bool


_POSTUP_KEY = re.compile(r"wg\s+set\s+%i\s+private-key\s+(\S+)")


def interface_of(path: str) -> str:
    """`/etc/wireguard/wg-vps.conf` -> `wg-vps`."""
    base = path.rsplit("/", 1)[-1]
    return base[:-5] if base.endswith(".conf") else base


def parse_wg_quick(path: str, text: str) -> WgInterface:
    """The [Interface] facts of a wg-quick config. Pure; tolerant of comments and case."""
    addresses: list[str] = []
    mtu: int | None = None
    table = "auto"
    key_file: str | None = None
    inline = False
    section = ""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            section = line.lower()
            continue
        if section != "[interface]" or "=" not in line:
            continue
        key, value = (s.strip() for s in line.split("=", 1))
        key = key.lower()
        if key == "address":
            addresses += [str(ip_interface(a.strip())) for a in value.split(",") if a.strip()]
        elif key == "mtu":
            mtu = int(value)
        elif key == "table":
            table = value.lower() if value.lower() in ("auto", "off") else value
        elif key == "privatekey":
            inline = bool(value)
        elif key == "postup":
            m = _POSTUP_KEY.search(value)
            if m:
                key_file = m.group(1)
    return WgInterface(interface_of(path), tuple(addresses), mtu, table, key_file, inline)


def sysctl_settings(text: str) -> tuple[tuple[str, str], ...]:
    """`key = value` pairs of a sysctl.d file, in order (comments and blanks skipped)."""
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        key, value = (s.strip() for s in line.split("=", 1))
        out.append((key.lstrip("-"), value))
    return tuple(out)


def manifest_entries(text: str | None) -> tuple[dict[str, str], dict[str, str]]:
    """What the manifest says wgbgp installed: (path -> created|replaced, daemon ->
    started|preexisting), first entry of each kept. Pure."""
    files: dict[str, str] = {}
    daemons: dict[str, str] = {}
    for line in (text or "").splitlines():
        parts = line.split("\t")
        if parts[0] == "file" and len(parts) == 3:
            files.setdefault(parts[1], parts[2])
        elif len(parts) == 2 and parts[0] in ("frr", "bird"):
            daemons.setdefault(parts[0], parts[1])
    return files, daemons


def bgp_asn(frr_text: str) -> int | None:
    """The ASN of the first `router bgp` in an FRR config."""
    m = re.search(r"^router bgp (\d+)", frr_text, re.MULTILINE)
    return int(m.group(1)) if m else None


def enable_daemons(text: str, daemons: Iterable[str] = WANTED_DAEMONS) -> str:
    """/etc/frr/daemons with each daemon set to `yes`, all else untouched. Idempotent.

    A disabled line (`bgpd=no`) is edited in place; a missing one is appended. Comments,
    options (`bgpd_options=...`) and every other daemon stay as they are.
    """
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    for daemon in daemons:
        pat = re.compile(rf"^[ \t]*{re.escape(daemon)}[ \t]*=[ \t]*(\S*)")
        found = False
        for i, line in enumerate(lines):
            m = pat.match(line)
            if m:
                found = True
                if m.group(1).strip("\"'") != "yes":
                    lines[i] = f"{daemon}=yes\n"
        if not found:
            lines.append(f"{daemon}=yes\n")
    return "".join(lines)


def daemons_file(current: CurrentFile | None) -> RenderedFile | None:
    """The edited /etc/frr/daemons, or None when FRR's is missing (FRR not installed).

    Its text is needed in full, so the probe returns it unmasked (it holds no secret).
    """
    if current is None or not current.exists or current.text is None:
        return None
    return RenderedFile(FRR_DAEMONS, enable_daemons(current.text), current.mode or 0o640,
                        "frr-daemons")


# --- FRR: lines FRR takes from the operating system -------------------------------------

# zebra shows `no ip forwarding` / `no ipv6 forwarding` whenever the kernel does not
# forward (and nothing when it does), and FRR 8.4 shows the OS host name whatever
# `hostname` the file says. frr-reload.py diffs text, so for each such line it sees:
# - running `no ipv6 forwarding`, file silent: "delete" it, i.e. run `ipv6 forwarding`,
#   turning on the kernel's forwarding on every reload;
# - file `ip forwarding`, running silent (already on): "add" it on every reload;
# - `hostname X` vs the OS name: a hostname change on every reload.
# So before a reload: the host name comes from the running config; a forwarding line the
# file states is kept (the file decides) unless it already holds; a forwarding line the
# file does not state is pinned to what FRR shows now (the reload leaves it alone).
_FORWARDING = {"ip": "ip forwarding", "ipv6": "ipv6 forwarding"}


def pin_os_lines(config: str, running: str) -> str:
    """`config` made comparable with the running config for lines FRR takes from the OS."""
    run_lines = {line.strip() for line in running.splitlines()}
    head: list[str] = [line for line in (ln.strip() for ln in running.splitlines())
                       if re.fullmatch(r"hostname \S+", line)]
    body: list[str] = []
    stated: set[str] = set()
    for line in config.splitlines():
        bare = line.strip()
        if re.fullmatch(r"(?:no )?hostname(?: \S+)?", bare):
            continue
        fam = next((f for f, text in _FORWARDING.items()
                    if bare in (text, f"no {text}")), None)
        if fam is None:
            body.append(line)
            continue
        stated.add(fam)
        if bare == _FORWARDING[fam] and f"no {bare}" not in run_lines:
            continue  # on, and FRR never shows the default: nothing to do
        body.append(line)
    for fam, text in _FORWARDING.items():
        if fam not in stated and f"no {text}" in run_lines:
            head.append(f"no {text}")
    return "\n".join([*head, *body]) + "\n"


@dataclass(frozen=True)
class FrrDelta:
    """What frr-reload.py would run: `no` lines and new lines, with their context."""

    delete: tuple[str, ...] = ()
    add: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.delete and not self.add

    def text(self) -> str:
        out = []
        if self.delete:
            out += ["lines to delete:", *(f"  {line}" for line in self.delete)]
        if self.add:
            out += ["lines to add:", *(f"  {line}" for line in self.add)]
        return "\n".join(out)


def parse_frr_reload_test(stdout: str) -> FrrDelta:
    """Parse `frr-reload.py --test` output ("Lines To Delete" / "Lines To Add" sections)."""
    delete: list[str] = []
    add: list[str] = []
    target: list[str] | None = None
    for line in stdout.splitlines():
        stripped = line.strip()
        if stripped == "Lines To Delete":
            target = delete
        elif stripped == "Lines To Add":
            target = add
        elif target is not None and stripped and set(stripped) != {"="}:
            target.append(mask_secrets(line.rstrip()))  # a changed password shows in both
    return FrrDelta(tuple(delete), tuple(add))
