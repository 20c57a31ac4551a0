"""Bootstrap's decisions: what each role needs, one probe when nothing is missing, and
never a half-install (unsupported OS, not root, a package apt cannot resolve: nothing is
installed). The probe itself runs for real on this host; other machines are faked at the
process boundary."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from wgbgp.apply.bootstrap import (
    CANDIDATES,
    BootstrapError,
    bootstrap,
    install_commands,
    needed,
    parse_facts,
    probe,
)
from wgbgp.compile import compile_topology
from wgbgp.model import parse
from wgbgp.transport import CommandResult, LocalExecutor

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def plans(example: str):
    return compile_topology(parse((EXAMPLES / example).read_text())[0])


def probe_output(os_id="debian", version="12", pretty="Debian GNU/Linux 12 (bookworm)",
                 uid=0, kernel_wg=True, installed=()) -> str:
    lines = [f"os\t{os_id}\t{version}\t{pretty}", f"uid\t{uid}", "apt\t1",
             f"kernelwg\t{int(kernel_wg)}"]
    lines += [f"pkg\t{p}\tii " for p in installed] + ["pkg\tbird2\tun "]
    return "\n".join(lines) + "\n"


@dataclass
class FakeHost:
    """Answers the probe from its package set; apt install adds to it (or fails)."""

    facts: dict = field(default_factory=dict)
    installed: set[str] = field(default_factory=set)
    fail_simulate: bool = False
    log: list[list[str]] = field(default_factory=list)
    name: str = "box"

    def run(self, argv, *, input=None, check=True, timeout=60) -> CommandResult:
        self.log.append(list(argv))
        if argv[:2] == ["sh", "-c"]:
            out = probe_output(**self.facts, installed=sorted(self.installed))
            return CommandResult(tuple(argv), 0, out, "")
        if "--simulate" in argv:
            return CommandResult(tuple(argv), 100 if self.fail_simulate else 0, "",
                                 "E: Unable to locate package bird2")
        if "install" in argv:
            self.installed |= {a for a in argv if a in CANDIDATES}
        return CommandResult(tuple(argv), 0, "", "")


def test_roles_need_their_daemon_and_wireguard_go_only_without_the_module():
    classic = plans("classic.yaml")
    assert needed(classic["vps"], True) == ["wireguard-tools", "iproute2", "nftables",
                                            "procps", "iputils-ping"]
    laptop = needed(classic["laptop"], True)
    assert {"frr", "frr-pythontools", "python3"} <= set(laptop) and "bird2" not in laptop
    assert "wireguard-go" not in laptop and "wireguard-go" in needed(classic["laptop"], False)
    bird = next(p for p in compile_topology(parse((EXAMPLES / "dualstack.yaml").read_text(
    ))[0]).values() if p.bgp and p.bgp.daemon == "bird")
    assert "bird2" in needed(bird, True) and "frr" not in needed(bird, True)
    hub = plans("route-server.yaml")["fra"]  # a route server speaks BGP with FRR
    assert "frr" in needed(hub, True)


def test_everything_present_costs_one_probe():
    laptop = plans("classic.yaml")["laptop"]
    host = FakeHost(installed=set(needed(laptop, True)))
    outcome = bootstrap(host, laptop)
    assert host.log and len(host.log) == 1 and not outcome.missing and not outcome.ran
    assert "nothing to do (one probe)" in outcome.summary()


def test_installs_the_missing_set_in_one_transaction_then_checks():
    laptop = plans("classic.yaml")["laptop"]
    host = FakeHost(installed={"iproute2", "procps"})
    outcome = bootstrap(host, laptop)
    assert outcome.ran and outcome.probes == 2
    installs = [a for a in host.log if "install" in a and "--simulate" not in a]
    assert len(installs) == 1 and "iproute2" not in installs[0]
    simulate = host.log.index(next(a for a in host.log if "--simulate" in a))
    assert simulate < host.log.index(installs[0])
    assert bootstrap(host, laptop).ran is False  # the second run: nothing to do


@pytest.mark.parametrize("facts, match", [
    ({"os_id": "fedora", "version": "40", "pretty": "Fedora Linux 40"}, "Fedora Linux 40"),
    ({"os_id": "debian", "version": "11", "pretty": "Debian GNU/Linux 11"}, "bullseye|11"),
    ({"os_id": "ubuntu", "version": "20.04", "pretty": "Ubuntu 20.04"}, "Ubuntu 20.04"),
    ({"uid": 1000}, "needs root"),
])
def test_refuses_before_installing_anything(facts, match):
    laptop = plans("classic.yaml")["laptop"]
    host = FakeHost(facts=facts)
    with pytest.raises(BootstrapError, match=match) as info:
        bootstrap(host, laptop)
    assert "nothing was installed" in str(info.value)
    if "uid" not in facts:
        assert "wireguard-tools" in str(info.value) and "frr" in str(info.value)
    assert len(host.log) == 1  # only the probe ran


def test_an_unresolvable_package_stops_before_install():
    host = FakeHost(fail_simulate=True)
    with pytest.raises(BootstrapError, match="nothing was installed"):
        bootstrap(host, plans("classic.yaml")["laptop"])
    assert not [a for a in host.log if "install" in a and "--simulate" not in a]
    assert host.installed == set()


def test_dry_run_prints_and_runs_nothing():
    host = FakeHost()
    outcome = bootstrap(host, plans("classic.yaml")["laptop"], dry_run=True)
    assert len(host.log) == 1 and outcome.commands == install_commands(outcome.missing)
    assert outcome.commands[-1][:5] == ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get",
                                        "install", "-q"]


def test_parse_facts_ignores_packages_not_installed():
    f = parse_facts(probe_output(installed=["frr"]))
    assert f.installed == {"frr"} and f.supported and f.kernel_wireguard


def test_the_real_probe_on_this_host():
    facts = probe(LocalExecutor("here"))
    os_release = Path("/etc/os-release").read_text()
    assert f'ID={facts.os_id}' in os_release and facts.uid == os.geteuid()
    assert "dpkg" not in facts.installed  # dpkg is a base package, never a candidate
    assert facts.installed <= set(CANDIDATES)
