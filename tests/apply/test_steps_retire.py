"""Switching a node between FRR and BIRD (`daemon:` changed): apply retires the daemon it
no longer renders a config for, before the new one starts. Pure: steps from a change set
and a probed state."""

from __future__ import annotations

import pytest

from wgbgp.apply import CurrentFile, compute_changes
from wgbgp.apply.probe import MANIFEST, MachineState
from wgbgp.apply.steps import BIRD_CONF, FRR_CONF, plan_steps
from wgbgp.render import RenderedFile

FRR_MANIFEST = ("file\t/etc/frr/frr.conf\tcreated\nfile\t/etc/frr/daemons\treplaced\n"
                "frr\t{how}\nfile\t/etc/wireguard/wg-vps.conf\tcreated\n")
BIRD_MANIFEST = "file\t/etc/bird/bird.conf\tcreated\nbird\t{how}\n"


def state(manifest: str, **live) -> MachineState:
    return MachineState(
        files={MANIFEST: CurrentFile(MANIFEST, True, 0o644, "x", manifest),
               "/etc/frr/daemons": CurrentFile("/etc/frr/daemons", True, 0o640, "y", "")},
        tools=dict.fromkeys(("wg", "wg-quick", "ip", "bird", "birdc", "vtysh", "frrinit.sh",
                             "frr-reload.py", "base64", "sha256sum"), True),
        **live)


def steps(files: list[RenderedFile], st: MachineState) -> list[tuple[str, str]]:
    plan = plan_steps(compute_changes(files, st.files), st, enable_at_boot=False)
    assert not plan.problems, plan.problems
    return [(s.action, s.target) for s in plan.steps]


BIRD = RenderedFile(BIRD_CONF, "router id 10.0.0.2;\n", 0o640, "bird")
FRR = RenderedFile(FRR_CONF, "router bgp 65010\n", 0o640, "frr")


def test_frr_to_bird_stops_frr_and_puts_its_files_away_before_bird_starts() -> None:
    st = state(FRR_MANIFEST.format(how="started"), daemons={"zebra": 1, "bgpd": 2})
    got = steps([BIRD], st)
    assert got == [("validate", ""), ("write", ""), ("retire", "frr"), ("bird-start", "")]
    plan = plan_steps(compute_changes([BIRD], st.files), st)
    retire = next(s for s in plan.steps if s.action == "retire")
    assert retire.params == {"how": "started", "running": True,
                             "paths": ["/etc/frr/frr.conf", "/etc/frr/daemons"]}


def test_bird_to_frr_retires_bird() -> None:
    st = state(BIRD_MANIFEST.format(how="started"), bird_running=True)
    files = [FRR, RenderedFile("/etc/frr/daemons", "bgpd=yes\n", 0o640, "frr-daemons")]
    assert ("retire", "bird") in steps(files, st)
    actions = [a for a, _ in steps(files, st)]
    assert actions.index("retire") < actions.index("frr-start")


@pytest.mark.parametrize("manifest,files", [
    (FRR_MANIFEST.format(how="started"), [FRR]),       # still FRR: nothing retired
    (BIRD_MANIFEST.format(how="started"), [BIRD]),     # still BIRD
    ("", [BIRD]),                                      # nothing installed before
])
def test_nothing_retired_while_the_daemon_stays(manifest: str, files) -> None:
    assert not [a for a, _ in steps(files, state(manifest, bird_running=True,
                                                 daemons={"bgpd": 2})) if a == "retire"]


def test_a_daemon_that_ran_before_wgbgp_is_given_back_its_config_not_stopped() -> None:
    st = state(FRR_MANIFEST.format(how="preexisting"), daemons={"zebra": 1, "bgpd": 2})
    plan = plan_steps(compute_changes([BIRD], st.files), st)
    retire = next(s for s in plan.steps if s.action == "retire")
    assert retire.params["how"] == "preexisting"
    assert "original config" in retire.reason


def test_a_machine_that_no_longer_speaks_bgp_retires_its_daemon() -> None:
    """E.g. a hub, once a route server, in a topology back in mesh mode."""
    st = state(FRR_MANIFEST.format(how="started"), daemons={"bgpd": 2})
    wg = RenderedFile("/etc/wireguard/wg-vps.conf", "[Interface]\n", 0o600, "wireguard")
    assert ("retire", "frr") in steps([wg], st)
