"""`wgbgp lab up --bare` + `wgbgp apply --all` over real SSH, exactly as on real machines."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.lab


def wgbgp(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "wgbgp", *args], capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, f"wgbgp {' '.join(args)}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture
def bare_lab(daemons_required, unique_name):
    name = unique_name("bare")
    try:
        up = wgbgp("lab", "up", "--bare", "--name", name)
        yield name, up.stdout
    finally:
        subprocess.run([sys.executable, "-m", "wgbgp", "lab", "down", "--name", name],
                       capture_output=True, timeout=60)


def test_apply_all_over_ssh_then_noop(bare_lab) -> None:
    name, printed = bare_lab
    command = re.search(r"^\s*wgbgp (apply .*)$", printed, re.M)
    assert command, printed
    argv = shlex.split(command.group(1))
    status = json.loads(wgbgp("lab", "status", "--name", name, "--json").stdout)
    topology = Path(status["topology"]).read_text()
    assert "ssh: root@" in topology and "public_key:" in topology
    # The printed command is plain: the topology's own `ssh:` section says how to connect.
    assert argv == ["apply", status["topology"], "--all"], printed
    parsed = yaml.safe_load(topology)["ssh"]
    assert set(parsed) == {"identity", "known_hosts", "netns"}, parsed
    # Run exactly as printed, no extra flags.
    first = wgbgp(*argv).stdout
    machines = [*yaml.safe_load(topology)["hubs"], *yaml.safe_load(topology)["nodes"]]
    assert all(f"ok {m}: applied:" in first for m in machines), first
    # Sessions come up through the CG-NAT; the lab's own assertions hold. `lab test` right
    # after apply waits for convergence itself (it used to say "0/2 Established").
    report = json.loads(subprocess.run(
        [sys.executable, "-m", "wgbgp", "lab", "test", "--name", name, "--json"],
        capture_output=True, text=True, timeout=180).stdout)
    assert report["ok"] and report["waited"]["converged"], report
    # Applying again changes nothing and restarts nothing.
    again = json.loads(wgbgp(*argv, "--json").stdout)
    assert again["ok"] and not any(m["changed"] for m in again["machines"].values())
    plan = wgbgp(*[a if a != "apply" else "plan" for a in argv]).stdout
    assert plan.count("nothing to change") == 3, plan
