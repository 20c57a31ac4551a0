"""Make a machine's WireGuard key on that machine; only the public key comes back."""

from __future__ import annotations

from dataclasses import dataclass

from ..compile.plan import KEY_DIR
from ..model.fields import NAME_RE
from ..model.keys import InvalidKey, decode_key
from ..transport import Executor
from .changes import mask_output
from .scripts import KEYGEN


class KeygenError(Exception):
    """The key could not be made or read on the machine."""


@dataclass(frozen=True)
class RemoteKey:
    machine: str
    key_file: str
    public_key: str
    created: bool  # False: an existing key was kept


def key_file_for(machine: str, directory: str = KEY_DIR) -> str:
    if not NAME_RE.match(machine):
        raise KeygenError(f"{machine!r} is not a machine name")
    return f"{directory.rstrip('/')}/{machine}.key"


def remote_keygen(executor: Executor, machine: str, *, directory: str = KEY_DIR,
                  rotate: bool = False, fetch: bool = False) -> RemoteKey:
    """Ensure `<directory>/<machine>.key` exists on the machine (made there with `wg genkey`,
    umask 077) and return its public key. An existing key is kept unless `rotate`;
    `fetch`: never make one, only read the public key of the key there (KeygenError if
    there is none yet).

    The private key is never printed, never passed in an argv and never leaves the machine.
    """
    key_file = key_file_for(machine, directory)
    pub_file = key_file[:-4] + ".pub"
    res = executor.run(["sh", "-c", KEYGEN, "wgbgp-keygen", key_file, pub_file,
                        "2" if fetch else "1" if rotate else "0"], check=False)
    if not res.ok:
        why = mask_output(res.stderr.strip() or res.stdout.strip()) or f"exit {res.returncode}"
        if "wg: not found" in why or "command not found" in why:
            why += " (install wireguard-tools on that machine)"
        raise KeygenError(f"keygen on {executor.name} failed: {why}")
    lines = [line.strip() for line in res.stdout.splitlines() if line.strip()]
    created = "created=1" in lines
    public = lines[-1] if lines else ""
    try:
        decode_key(public)
    except InvalidKey as exc:
        raise KeygenError(f"keygen on {executor.name} returned no public key ({exc})") from None
    return RemoteKey(executor.name, key_file, public, created)
