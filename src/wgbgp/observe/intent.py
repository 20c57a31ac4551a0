"""The intent `wgbgp apply` left on a machine: read it back for status and doctor.

`wgbgp apply` writes /var/lib/wgbgp/intent.json (compile.intent) and `wgbgp down` removes
it; with it, `status` and `doctor` without a topology judge the machine against what
should run there, exactly as with the topology file.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..compile.intent import INTENT_PATH, IntentError, parse_intent
from ..compile.plan import Plan
from ..transport import Executor


@dataclass(frozen=True)
class Intent:
    """This machine's name and the plans its judgement needs."""

    machine: str
    plans: dict[str, Plan]
    path: str = INTENT_PATH


def read_intent(executor: Executor, path: str = INTENT_PATH) -> Intent | None:
    """The intent on the machine behind `executor`; None when there is none (never
    applied, or taken down). IntentError when the file is there but unreadable."""
    try:
        text = executor.read_file(path)
    except PermissionError as exc:
        raise IntentError(f"{path}: cannot read it ({exc.strerror}); run as root") from None
    if text is None:
        return None
    machine, plans = parse_intent(text, path)
    return Intent(machine, plans, path)


__all__ = ["INTENT_PATH", "Intent", "IntentError", "read_intent"]
