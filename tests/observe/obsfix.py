"""Helpers for observe's tests: the captured fixtures, replayed.

tests/observe/fixtures/doctor/<scenario>.json are Observations captured from real
wireguard-go and FRR 8.4 on the throwaway rig (obsrig.py) by capture.py: the classic
example (hub vps, clients laptop and friend), healthy and with one fault injected each.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from functools import cache
from pathlib import Path

from wgbgp.compile import Plan, compile_topology
from wgbgp.model import parse
from wgbgp.observe import Observation
from wgbgp.observe.status import COMMANDS, Snapshot
from wgbgp.transport import CommandResult

FIXTURES = Path(__file__).parent / "fixtures" / "doctor"
SCENARIOS = sorted(p.stem for p in FIXTURES.glob("*.json"))


@cache
def _data(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def scenario(name: str) -> tuple[Observation, dict[str, Plan]]:
    data = _data(name)
    topo, _ = parse(data["topology"], f"{name}.json")
    return Observation.from_json(data), compile_topology(topo)


def topology_text(name: str) -> str:
    return _data(name)["topology"]


def raw(name: str, machine: str, key: str) -> CommandResult:
    """One captured command output."""
    return CommandResult.from_json(_data(name)["snapshots"][machine]["outputs"][key])


def mutate(obs: Observation, machine: str, key: str,
           edit: Callable[[CommandResult], CommandResult]) -> Observation:
    """The observation with one machine's output of one command changed."""
    snaps = dict(obs.snapshots)
    snap = snaps[machine]
    outputs = dict(snap.outputs)
    outputs[key] = edit(outputs[key])
    snaps[machine] = Snapshot(snap.machine, snap.taken_at, outputs)
    return Observation(snaps, obs.probes, obs.unobserved)


def stdout(text_edit: Callable[[str], str]) -> Callable[[CommandResult], CommandResult]:
    return lambda o: replace(o, stdout=text_edit(o.stdout))


class ReplayExecutor:
    """An Executor that answers the status commands from a captured snapshot."""

    def __init__(self, snap: Snapshot, name: str | None = None,
                 overrides: dict[tuple[str, ...], CommandResult] | None = None) -> None:
        self.snap = snap
        self.name = name or snap.machine
        self.overrides = overrides or {}
        self.calls: list[list[str]] = []
        self.by_argv = {tuple(COMMANDS[k]): o for k, o in snap.outputs.items() if k in COMMANDS}

    def run(self, argv, *, input=None, check=True, timeout=60):
        self.calls.append(list(argv))
        if tuple(argv) in self.overrides:
            return self.overrides[tuple(argv)]
        o = self.by_argv.get(tuple(argv))
        if o is None:
            return CommandResult(tuple(argv), 127, "", f"{argv[0]}: not in the fixture")
        return CommandResult(tuple(argv), o.returncode, o.stdout, o.stderr)

    def read_file(self, path: str) -> str | None:
        return None

    def write_file(self, path: str, text: str, mode: int = 0o644) -> None:
        raise AssertionError("observe must never write to a machine")
