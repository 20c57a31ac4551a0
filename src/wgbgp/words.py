"""Words for output people read: one place for counting things right."""

from __future__ import annotations


def plural(n: int, word: str, many: str | None = None) -> str:
    """`1 warning`, `2 warnings`, `0 warnings`; `many` for irregular plurals
    (`plural(2, "prefix", "prefixes")`)."""
    return f"{n} {word if n == 1 else (many or word + 's')}"
