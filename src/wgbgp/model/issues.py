"""Problems found in a topology, each located and with a fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Issue:
    """One finding: an error makes the topology unusable, a warning does not."""

    level: Literal["error", "warning"]
    loc: Loc
    message: str
    fix: str = ""
    file: str = ""
    line: int | None = None

    @property
    def field(self) -> str:
        return ".".join(str(p) for p in self.loc)

    def format(self) -> str:
        where = self.file or "<topology>"
        if self.line is not None:
            where += f":{self.line}"
        text = f"{where}: {self.level}: {self.field + ': ' if self.loc else ''}{self.message}"
        if self.fix:
            text += f"\n    fix: {self.fix}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level, "file": self.file, "line": self.line,
            "field": self.field, "message": self.message, "fix": self.fix,
        }


class TopologyError(Exception):
    """A topology that cannot be used; carries every error found, not just the first."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        super().__init__("\n".join(i.format() for i in issues))


def error(loc: Loc, message: str, fix: str = "") -> Issue:
    """An error at `loc` (file and line are added when the topology is loaded)."""
    return Issue("error", tuple(loc), message, fix)


def warning(loc: Loc, message: str, fix: str = "") -> Issue:
    """A warning at `loc`."""
    return Issue("warning", tuple(loc), message, fix)
