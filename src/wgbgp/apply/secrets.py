"""Read the secrets a topology names (TCP-MD5 passwords, WireGuard preshared keys).

Decision: secrets are read when rendering, on the machine that runs wgbgp (`render`,
`apply`, `lab up`), from the file or environment variable the topology names; relative
paths are taken from the topology file's directory. They reach a managed machine only
inside the rendered files (frr.conf 0640 group frr, wg-quick config 0600), which apply
sends over the executor's stdin (never an argv) and writes with that mode from the start.
Nothing here prints or logs a value; errors name the file or variable, never its content.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..compile.plan import Plan, SecretRef
from ..render import SecretError, check_secret, secrets_needed

MAX_SECRET_FILE = 4096


def read_secret(ref: SecretRef, base: Path | None = None,
                environ: Mapping[str, str] | None = None) -> str:
    """One secret's value, checked; SecretError naming where it was looked for otherwise."""
    if ref.kind == "env":
        env = os.environ if environ is None else environ
        if ref.name not in env:
            raise SecretError(ref, f"environment variable {ref.name} is not set; export it "
                              "where wgbgp runs (it is read when rendering)")
        return check_secret(ref, env[ref.name])
    path = Path(ref.name).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise SecretError(ref, f"{path} is not a regular file")
        if st.st_mode & stat.S_IROTH:
            raise SecretError(ref, f"{path} is readable by everyone; `chmod 600 {path}` "
                              "(and since others could read it, change the secret)")
        if st.st_size > MAX_SECRET_FILE:
            raise SecretError(ref, f"{path} is {st.st_size} bytes: not a secret file")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SecretError(ref, f"{path} does not exist; create it (mode 0600) on the machine "
                          "that runs wgbgp, e.g. with `wg genpsk` for a preshared key") from None
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise SecretError(ref, f"cannot read {path}: {why}") from None
    # One line: the file may end with a newline, as editors and `wg genpsk >` write it.
    value = text[:-1] if text.endswith("\n") else text
    if "\n" in value:
        raise SecretError(ref, f"{path} holds more than one line; keep only the secret in it")
    return check_secret(ref, value)


def read_secrets(plans: Iterable[Plan], base: Path | None = None,
                 environ: Mapping[str, str] | None = None) -> dict[SecretRef, str]:
    """Every secret these machines' files need, read once each."""
    refs = dict.fromkeys(ref for plan in plans for ref in secrets_needed(plan))
    return {ref: read_secret(ref, base, environ) for ref in refs}
