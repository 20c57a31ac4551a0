"""The agent's unit tests drive it against apply's fake machine (tests/apply/fake.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "apply"))
