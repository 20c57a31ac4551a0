"""A failed command's error is one line: the command in short and the cause, never a
script body (the probe is a 60-line shell script)."""

from __future__ import annotations

import socket

import pytest

from wgbgp.apply import apply_machine
from wgbgp.apply.probe import PROBE_SCRIPT
from wgbgp.transport import CommandFailed, CommandResult, LocalExecutor, SSHExecutor, short_command


@pytest.mark.parametrize("argv, short", [
    (["sh", "-c", PROBE_SCRIPT, "wgbgp-probe", "F", "/etc/x"], "sh -c ... wgbgp-probe"),
    (["sh", "-c", "true"], "sh -c ..."),
    (["/bin/bash", "-c", "echo hi", "name"], "/bin/bash -c ... name"),
    (["vtysh", "-c", "show bgp summary json"], "vtysh -c ..."),
    (["wg", "show"], "wg show"),
    (["true"], "true"),
    (["cat", "x" * 200], "cat ..."),
    (["printf", "a\nb"], "printf ..."),
    ([], "(no command)"),
])
def test_short_command(argv, short):
    assert short_command(argv) == short


def test_command_failed_is_one_line_with_the_cause():
    res = CommandResult(("sh", "-c", PROBE_SCRIPT, "wgbgp-probe"), 255, "",
                        "some noise\ncannot connect to root@h: refused\n\n")
    message = str(CommandFailed(res, "vps"))
    assert message == "'sh -c ... wgbgp-probe' failed on vps: cannot connect to root@h: refused"
    assert str(CommandFailed(CommandResult(("false",), 1, "", ""))) == \
        "'false' failed: exit code 1"


def test_local_command_failure_is_short():
    with pytest.raises(CommandFailed) as exc:
        LocalExecutor().run(["sh", "-c", "echo one >&2\necho two >&2\nexit 3", "my-script"])
    assert str(exc.value) == "'sh -c ... my-script' failed on localhost: two"


@pytest.fixture
def refused_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


def test_ssh_probe_to_a_refusing_port_names_step_and_cause_in_one_line(refused_port):
    x = SSHExecutor(f"root@127.0.0.1:{refused_port}", name="vps", connect_timeout=5)
    try:
        result = apply_machine(x, [])
    finally:
        x.close()
    assert not result.ok and result.failed_step == "probe"
    assert result.error is not None and "\n" not in result.error
    assert "PATH=" not in result.error
    assert result.error.startswith("'sh -c ... wgbgp-probe' failed on vps: cannot connect to "
                                   f"root@127.0.0.1:{refused_port}")
    summary = result.summary()
    assert "\n" not in summary and "FAILED at step probe" in summary
