"""CLI conventions (issue 11, point 4): --version, flags in --help, errors as JSON under
--json, exit codes of plan and check --strict, plurals, one-line step errors, lab test
waiting for convergence."""

from __future__ import annotations

import json
import re
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import typer
from typer.testing import CliRunner

from topogen import doc, text
from wgbgp.cli import common
from wgbgp.cli.main import app
from wgbgp.lab.runner import Convergence, Waited
from wgbgp.lab.selftest import Assertion

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "apply"))
from fake import FakeMachine

SRC = Path(__file__).resolve().parents[2] / "src" / "wgbgp"
KEY = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="


def run(*args: str | Path, input: str | None = None):
    result = CliRunner().invoke(app, [str(a) for a in args], input=input)
    assert "Traceback" not in result.output + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception)
    return result


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so nobody else takes it), never
    listening."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


@pytest.fixture
def unreachable(tmp_path: Path, refused_port: int) -> Path:
    """A valid topology whose hub and n1 have `ssh:` targets nobody answers at."""
    d = doc(2)
    d["hubs"]["vps"]["ssh"] = f"root@127.0.0.1:{refused_port}"
    d["nodes"]["n1"]["ssh"] = f"root@127.0.0.1:{refused_port}"
    path = tmp_path / "unreachable.yaml"
    path.write_text(text(d))
    return path


@pytest.fixture
def bad_topology(tmp_path: Path) -> Path:
    d = doc(2)
    d["nodes"]["n1"]["asn"] = 23456
    path = tmp_path / "bad.yaml"
    path.write_text(text(d))
    return path


# --- --version -------------------------------------------------------------------------

def test_version_prints_name_and_version_and_exits_0():
    result = run("--version")
    assert result.exit_code == 0
    assert re.fullmatch(r"wgbgp \d+\.\d+\S*\n", result.stdout), result.stdout


def test_version_falls_back_to_the_package_version(monkeypatch):
    from importlib.metadata import PackageNotFoundError

    import wgbgp

    def missing(name: str) -> str:
        raise PackageNotFoundError(name)

    monkeypatch.setattr(common, "dist_version", missing)
    result = run("--version")
    assert result.exit_code == 0 and result.stdout == f"wgbgp {wgbgp.__version__}\n"


# --- --help: flags are flags -----------------------------------------------------------

def _command(path: list[str]):
    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    return cmd


def _command_paths() -> list[list[str]]:
    """Every command and group of the CLI, as argv prefixes: [], ["check"], ["lab", "up"]."""
    root = typer.main.get_command(app)
    paths: list[list[str]] = []

    def walk(cmd, path: list[str]) -> None:
        paths.append(path)
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*path, name])

    walk(root, [])
    return paths


def test_the_walk_finds_every_command_and_subcommand():
    found = {" ".join(p) for p in _command_paths()}
    assert {"", "check", "plan", "doctor", "lab", "lab test", "lab up", "keys",
            "keys rotate"} <= found


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p) or "wgbgp")
def test_help_shows_boolean_options_as_flags(path):
    result = run(*path, "--help")
    assert result.exit_code == 0, result.output
    shown = result.stdout
    assert "--help" in shown
    assert not re.search(r"bool|BOOLEAN", shown, re.IGNORECASE), shown
    # Each flag's line names it and no value: `  --json     Machine-readable output.`
    flags = [p for p in _command(path).params if getattr(p, "is_flag", False)]
    for flag in flags:
        long = next(o for o in flag.opts if o.startswith("--"))
        line = next(x for x in shown.splitlines() if re.match(rf"\s+(-\w, )?{long}\b", x))
        names = re.split(r"\s{2,}", line.strip())[0]
        assert "<" not in names and "=" not in names, line


def test_help_still_shows_what_options_with_values_take():
    shown = run("plan", "--help").stdout
    assert re.search(r"--node <", shown) and re.search(r"^\s+--json\s{2,}\S", shown, re.M)


# --- errors as JSON under --json ------------------------------------------------------

def _json_errors(result) -> list[dict]:
    data = json.loads(result.stdout)
    assert data["ok"] is False, data
    assert data["errors"] and all(e["message"] for e in data["errors"]), data
    return data["errors"]


@pytest.mark.parametrize("argv", [
    ["check"], ["status"], ["doctor"], ["plan", "--all"], ["apply", "--all"], ["down", "--all"],
])
def test_bad_topology_is_json_on_stdout_and_text_on_stderr(argv, bad_topology):
    result = run(*argv, bad_topology, "--json")
    assert result.exit_code == 2, result.output
    errors = _json_errors(result)
    asn = next(e for e in errors if e.get("field") == "nodes.n1.asn")
    assert asn["line"] == 10 and asn["file"].endswith("bad.yaml") and asn["fix"]
    assert "nodes.n1.asn" in result.stderr and "1 error in" in result.stderr


@pytest.mark.parametrize("argv", [["check"], ["status"], ["doctor"], ["plan", "--all"],
                                  ["apply", "--all"]])
def test_missing_topology_file_is_json(argv, tmp_path):
    result = run(*argv, tmp_path / "nope.yaml", "--json")
    assert result.exit_code == 2
    (error,) = _json_errors(result)
    assert "cannot read topology" in error["message"] and error["file"].endswith("nope.yaml")
    assert "cannot read topology" in result.stderr


def test_without_json_errors_are_text_only(bad_topology):
    result = run("plan", bad_topology, "--all")
    assert result.exit_code == 2 and result.stdout == "" and "nodes.n1.asn" in result.stderr


@pytest.mark.parametrize("argv", [
    ["apply", "{t}", "--json"],                       # no --node nor --all
    ["plan", "{t}", "--node", "ghost", "--json"],     # unknown machine
    ["status", "--node", "n1", "--json"],             # --node without a topology
    ["lab", "status", "--name", "no-such-lab-xyz", "--json"],
    ["doctor", "--from", "{t}.missing", "--json"],
])
def test_every_failure_of_a_json_command_is_json(argv, tmp_path):
    t = tmp_path / "t.yaml"
    t.write_text(text(doc(2)))
    result = run(*[a.replace("{t}", str(t)) for a in argv])
    assert result.exit_code == 2, result.output
    (error,) = _json_errors(result)
    assert "error:" in result.stderr and error["message"] in result.stderr


def test_usage_errors_are_json_too():
    result = run("check", "--json")  # the topology argument is missing
    assert result.exit_code == 2
    (error,) = _json_errors(result)
    assert "Missing argument" in error["message"] and error["command"].endswith("check")
    assert "Missing argument" in result.stderr
    assert run("check").stdout == ""  # without --json: text only, as before


def test_missing_public_keys_are_located_json_errors(tmp_path):
    d = doc(2, keys=False)
    d["hubs"]["vps"]["ssh"] = "root@127.0.0.1:1"
    path = tmp_path / "t.yaml"
    path.write_text(text(d))
    result = run("plan", path, "--all", "--json")
    assert result.exit_code == 2
    errors = _json_errors(result)
    assert {e.get("field") for e in errors} >= {"nodes.n1.public_key", "nodes.n2.public_key"}
    assert errors[-1]["message"] == "cannot render without those public keys"


def test_unreachable_machine_is_a_json_error_naming_machine_and_step(unreachable):
    for command in ("plan", "apply"):
        result = run(command, unreachable, "--all", "--json")
        assert result.exit_code == 1, result.output
        errors = _json_errors(result)
        assert {e["machine"] for e in errors} == {"vps", "n1"}
        assert all(e["step"] == "probe" and "cannot connect" in e["message"] for e in errors)
        assert "cannot connect" in result.stderr
        assert set(json.loads(result.stdout)["machines"]) == {"vps", "n1"}


def test_status_of_an_unreachable_machine_is_an_error_not_an_empty_status(unreachable):
    result = run("status", unreachable, "--node", "n1", "--ssh", "--json")
    assert result.exit_code == 1, result.output
    (error,) = _json_errors(result)
    assert error["machine"] == "n1" and error["step"] == "connect"
    assert "cannot connect to root@127.0.0.1" in error["message"]
    assert "cannot reach n1" in result.stderr
    plain = run("status", unreachable, "--node", "n1", "--ssh")
    assert plain.exit_code == 1 and plain.stdout == ""


# --- check --json --strict -------------------------------------------------------------

def test_check_json_strict_ok_follows_the_exit_code(tmp_path):
    warned = tmp_path / "w.yaml"
    warned.write_text(text(doc(2, keys=False)))
    clean = tmp_path / "c.yaml"
    clean.write_text(text(doc(2)))
    strict = run("check", warned, "--json", "--strict")
    assert strict.exit_code == 1 and json.loads(strict.stdout)["ok"] is False
    assert json.loads(strict.stdout)["issues"]
    ok = run("check", clean, "--json", "--strict")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["ok"] is True


# --- plan's exit code ------------------------------------------------------------------

def _fakes(monkeypatch, **kw) -> dict[str, FakeMachine]:
    """plan/apply reach fake machines instead of SSH ones."""
    machines: dict[str, FakeMachine] = {}

    def executors(topo, names, *, local=False, ssh=None):
        for n in names:
            m = FakeMachine(n, **kw)
            m.target = f"root@{n}"  # type: ignore[attr-defined]  # "remote": no root needed
            m.files[f"/etc/wgbgp/keys/{n}.key"] = (KEY + "\n", 0o600)
            machines[n] = m
        return dict(machines)

    monkeypatch.setattr("wgbgp.cli.apply.machine_executors", executors)
    return machines


def test_plan_exits_0_when_apply_could_run(monkeypatch, tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(text(doc(2)))
    _fakes(monkeypatch)
    result = run("plan", path, "--node", "n1")
    assert result.exit_code == 0, result.output
    assert "would " in result.stdout and "cannot apply" not in result.stdout
    data = json.loads(run("plan", path, "--node", "n1", "--json").stdout)
    assert data["ok"] is True and data["errors"] == [] and "n1" in data["machines"]


def test_plan_exits_1_when_it_says_it_cannot_apply(monkeypatch, tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(text(doc(2)))
    _fakes(monkeypatch, missing_tools={"vtysh", "frrinit.sh", "frr-reload.py"})
    result = run("plan", path, "--node", "n1")
    assert "cannot apply" in result.stdout
    assert result.exit_code == 1, result.output
    assert "cannot apply on 1 machine: n1" in result.stderr
    data = json.loads(run("plan", path, "--node", "n1", "--json").stdout)
    assert data["ok"] is False
    assert data["errors"] and all(e["machine"] == "n1" and e["step"] == "preflight"
                                  for e in data["errors"])


def test_plan_exit_codes_are_in_its_help():
    shown = run("plan", "--help").stdout
    assert "Exit 0" in shown and "1 when" in shown and "2 bad input" in shown


# --- one-line step errors --------------------------------------------------------------

def test_unreachable_machine_error_is_one_line_without_the_probe_script(unreachable):
    plan = run("plan", unreachable, "--all")
    apply = run("apply", unreachable, "--all")
    assert plan.exit_code == apply.exit_code == 1
    for output in (plan.stdout, apply.stdout):
        assert "PATH=" not in output and "while [ $# -ge 2 ]" not in output, output
    lines = [line for line in apply.stdout.splitlines() if line.strip()]
    assert len(lines) == 2, apply.stdout  # one per machine
    for line in lines:
        assert "FAILED at step probe" in line and "sh -c ... wgbgp-probe" in line
        assert "cannot connect to root@127.0.0.1" in line
    assert len([line for line in plan.stdout.splitlines() if line.strip()]) == 2, plan.stdout


# --- plurals ---------------------------------------------------------------------------

def test_plural():
    assert [common.plural(n, "warning") for n in (0, 1, 2)] == [
        "0 warnings", "1 warning", "2 warnings"]
    assert common.plural(1, "prefix", "prefixes") == "1 prefix"
    assert common.plural(3, "prefix", "prefixes") == "3 prefixes"


def test_check_counts_in_the_singular(tmp_path):
    d = doc(1)
    d["nodes"]["n1"]["public_key"] = None
    del d["nodes"]["n1"]["public_key"]
    path = tmp_path / "t.yaml"
    path.write_text(text(d))
    result = run("check", path)
    assert result.exit_code == 0, result.output
    assert "1 hub, 1 node, 1 tunnel," in result.stdout and "1 prefix" in result.stdout
    assert "1 warning\n" in result.stdout


def test_lab_up_progress_counts_in_the_singular(monkeypatch):
    """`lab up` said "1 carrier(s), 1 hub(s)"."""
    from wgbgp.lab import runner
    from wgbgp.model import parse

    class Stop(Exception):
        pass

    def build(spec):
        raise Stop

    monkeypatch.setattr(runner, "build_lab", build)
    d = doc(1)
    d["nodes"]["n1"]["announce"] = ["192.0.2.0/24"]  # 100.64/16 is the lab's CG-NAT range
    topo, _ = parse(text(d), "t.yaml")
    said: list[str] = []
    with pytest.raises(Stop):
        runner.up(topo, name="plural-test-xyz", progress=said.append)
    assert said == ["building hosts: internet, 1 carrier, 1 hub, 1 client"]


def test_no_counted_words_with_s_in_brackets_in_the_source():
    """"(s)" in an f-string is a count printed without caring for plurals."""
    offenders = [f"{p.relative_to(SRC)}:{i}: {line.strip()}"
                 for p in SRC.rglob("*.py")
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if re.search(r"\bf[\"']", line)
                 and re.search(r"[A-Za-z]\(s\)", re.sub(r"\{[^{}]*\}", "{}", line))]
    assert not offenders, offenders


# --- lab test waits for convergence ----------------------------------------------------

@pytest.fixture
def fake_lab(monkeypatch):
    """`wgbgp lab test` against a pretend lab: records how it waited."""
    import wgbgp.cli.lab as cli_lab

    class Lab:
        name = "pretend"
        machines: ClassVar[dict[str, object]] = {}

    calls: dict = {}

    def wait(executors, plans, *, timeout):
        calls["timeout"] = timeout
        return calls["result"]

    monkeypatch.setattr(cli_lab, "_need_root", lambda: None)
    monkeypatch.setattr(cli_lab, "require_lab", lambda name: Lab())
    monkeypatch.setattr(cli_lab, "lab_plans", lambda lab: {})
    monkeypatch.setattr(cli_lab, "wait_for_convergence", wait)
    monkeypatch.setattr(cli_lab, "run_selftest", lambda lab: [Assertion("a", True, "fine")])
    return calls


def test_lab_test_waits_then_says_how_long(fake_lab):
    fake_lab["result"] = Waited(True, 3.14, Convergence(2, 2, 2, 2))
    result = run("lab", "test")
    assert result.exit_code == 0, result.output
    assert fake_lab["timeout"] == 30  # the default
    assert result.stdout.splitlines()[0] == "converged after 3.1 s"
    data = json.loads(run("lab", "test", "--json", "--timeout", "5").stdout)
    assert fake_lab["timeout"] == 5
    assert data["waited"] == {"converged": True, "seconds": 3.14, "missing": []}


def test_lab_test_not_converged_says_so_and_still_judges(fake_lab):
    fake_lab["result"] = Waited(False, 30.02, Convergence(0, 2, 0, 2, ["a: session to b is "
                                                                      "Active"]))
    result = run("lab", "test", "--timeout", "30")
    assert result.stdout.splitlines()[0] == "not converged after 30 s"
    assert "PASS a: fine" in result.stdout and result.exit_code == 0
