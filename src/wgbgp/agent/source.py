"""Where the agent's topology comes from: a file on the machine, or a git repository.

A git source is topology as code, as dn42 keeps its registry: members change the network
by commits, each machine pulls and applies its own part. Every new revision is checked
(`wgbgp check`'s own parse: schema, validation, the machine-local checks) and rendered for
this node before it is accepted; one that fails is refused (`Refused`, with the reason)
and the last good one keeps running. A source that cannot be read (`SourceError`: the
repository unreachable, the file gone) also leaves the last good one running.

The last good topology is kept in /var/lib/wgbgp/agent/good (with its lock file), so an
agent restarted while its source is broken still knows what to run.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..apply.agentstate import AGENT_CACHE
from ..apply.localcheck import LocalChecks
from ..apply.lockfile import lock_path
from ..apply.secrets import read_secrets
from ..compile import compile_topology
from ..model import Topology, TopologyError, parse
from ..model.lock import LockError, parse_lock
from ..render import RenderedFile, SecretError, render_machine

GIT_TIMEOUT = 60.0


class SourceError(Exception):
    """The source could not be read at all (unreachable repository, missing file)."""


class Refused(Exception):
    """A revision that fails check (or cannot be rendered for this node)."""

    def __init__(self, revision: str, reason: str) -> None:
        super().__init__(f"revision {revision} refused: {reason}")
        self.revision = revision
        self.reason = reason


@dataclass(frozen=True)
class Snapshot:
    """One accepted topology: its text, lock, revision, and this node's rendered files."""

    text: str
    lock_text: str | None
    revision: str
    topology: Topology
    files: tuple[RenderedFile, ...]


def file_revision(text: str) -> str:
    """A file source's revision: the first 12 hex digits of its sha256."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def accept(text: str, lock_text: str | None, revision: str, node: str, name: str,
           base: Path) -> Snapshot:
    """Check and render one revision for `node`; Refused with the reason when it fails.

    `name` is how errors locate the file (file:line); `base` is where relative secret
    files are read from."""
    lock = None
    if lock_text:
        try:
            lock = parse_lock(lock_text)
        except LockError as exc:
            raise Refused(revision, f"{name}.lock: {exc}") from None
    try:
        topology, _warnings = parse(text, name, local=LocalChecks(base, lock=lock),
                                    recorded=lock.numbers if lock else None)
    except TopologyError as exc:
        errors = [i.format() for i in exc.issues if i.level == "error"]
        raise Refused(revision, "check failed: " + "; ".join(errors[:5])
                      + (f" (and {len(errors) - 5} more)" if len(errors) > 5 else "")) from None
    if node not in topology.hubs and node not in topology.nodes:
        raise Refused(revision, f"{node} is not a machine of this topology: the agent "
                      "would have nothing to run (fix: add it back, or stop the agent)")
    plans = compile_topology(topology)
    plan = plans[node]
    missing = [p.name for t in plan.tunnels for p in t.peers if not p.public_key]
    if missing:
        raise Refused(revision, f"no public key for {', '.join(sorted(set(missing)))}")
    try:
        secrets = read_secrets([plan], base)
        files = render_machine(plan, None, secrets or None)
    except (SecretError, ValueError) as exc:
        raise Refused(revision, f"cannot render {node}'s files: {exc}") from None
    return Snapshot(text, lock_text, revision, topology, tuple(files))


class FileSource:
    """A topology file on the machine (apply leaves one in /etc/wgbgp/agent)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = str(path)

    def read(self) -> tuple[str, str | None, str]:
        """(text, lock text or None, revision); SourceError when it cannot be read."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SourceError(f"cannot read {self.path}: "
                              f"{getattr(exc, 'strerror', None) or exc}") from None
        try:
            lock_text: str | None = lock_path(self.path).read_text(encoding="utf-8")
        except OSError:
            lock_text = None
        return text, lock_text, file_revision(text)

    @property
    def base(self) -> Path:
        return self.path.parent


class GitSource:
    """A git repository (a URL, file:// or a path) holding the topology as `file`.

    The clone lives in `cache`; each pull is `git fetch` then the file read at the fetched
    commit (`git show`), so nothing is checked out that was not accepted."""

    def __init__(self, url: str, file: str = "topology.yaml", cache: Path | None = None,
                 branch: str | None = None) -> None:
        self.url = url
        self.file = file
        self.cache = cache or Path(AGENT_CACHE)
        self.branch = branch
        self.description = f"{url} ({file})"

    @property
    def repo(self) -> Path:
        return self.cache / "repo.git"

    @property
    def base(self) -> Path:
        return self.cache

    def _git(self, *args: str) -> str:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
        try:
            res = subprocess.run(["git", "--git-dir", str(self.repo), *args],
                                 capture_output=True, text=True, timeout=GIT_TIMEOUT, env=env)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SourceError(f"git {args[0]}: {exc}") from None
        if res.returncode != 0:
            why = (res.stderr.strip().splitlines() or [f"exit code {res.returncode}"])[-1]
            raise SourceError(f"git {args[0]} {self.url}: {why}")
        return res.stdout

    def read(self) -> tuple[str, str | None, str]:
        """Pull, then (text, lock text or None, commit) at the fetched head."""
        if not (self.repo / "HEAD").exists():
            self.repo.parent.mkdir(parents=True, exist_ok=True)
            try:
                res = subprocess.run(["git", "init", "--quiet", "--bare", str(self.repo)],
                                     capture_output=True, text=True, timeout=GIT_TIMEOUT)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise SourceError(f"git init: {exc}") from None
            if res.returncode != 0:
                raise SourceError(f"git init {self.repo}: {res.stderr.strip()}")
        ref = self.branch or "HEAD"
        self._git("fetch", "--quiet", "--no-tags", "--force", self.url,
                  f"{ref}:refs/wgbgp/fetched")
        commit = self._git("rev-parse", "refs/wgbgp/fetched").strip()
        try:
            text = self._git("show", f"{commit}:{self.file}")
        except SourceError:
            raise SourceError(f"{self.file} is not in {self.url} at {commit[:12]}") from None
        try:
            lock_text: str | None = self._git("show", f"{commit}:{self.file}.lock")
        except SourceError:
            lock_text = None
        return text, lock_text, commit[:12]


Source = FileSource | GitSource


def save_good(snapshot: Snapshot, cache: Path) -> None:
    """Keep the accepted topology where a restarted agent finds it."""
    good = cache / "good"
    good.mkdir(parents=True, exist_ok=True)
    (good / "topology.yaml").write_text(snapshot.text, encoding="utf-8")
    lock = good / "topology.yaml.lock"
    if snapshot.lock_text:
        lock.write_text(snapshot.lock_text, encoding="utf-8")
    elif lock.exists():
        lock.unlink()
    (good / "revision").write_text(snapshot.revision + "\n", encoding="utf-8")


def load_good(cache: Path) -> tuple[str, str | None, str] | None:
    """The last accepted topology, if one was kept: (text, lock text, revision)."""
    good = cache / "good"
    try:
        text = (good / "topology.yaml").read_text(encoding="utf-8")
        revision = (good / "revision").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    try:
        lock_text: str | None = (good / "topology.yaml.lock").read_text(encoding="utf-8")
    except OSError:
        lock_text = None
    return text, lock_text, revision
