"""Apply's step logic against a fake machine that records commands (a fake process boundary)."""

from __future__ import annotations

import dataclasses

from fake import FakeMachine

from wgbgp.apply import apply_machine, down_machine, plan_machine
from wgbgp.apply.changes import sha256_text
from wgbgp.apply.probe import parse_probe
from wgbgp.render import RenderedFile

KEY = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="


def machine_with_key(name: str, **kw) -> FakeMachine:
    m = FakeMachine(name, **kw)
    m.files[f"/etc/wgbgp/keys/{name}.key"] = (KEY + "\n", 0o600)
    return m


def test_fresh_client_runs_every_step_in_order(classic):
    m = machine_with_key("laptop")
    r = apply_machine(m, classic["laptop"])
    assert r.ok, r.summary()
    assert [s.action for s in r.steps] == ["validate", "write", "sysctl", "wg-up", "frr-start"]
    assert m.keys == ["wgbgp-probe", "wgbgp-validate", "wgbgp-install", "wgbgp-sysctl",
                      "wg-quick up", "wgbgp-frr-service", "rm -f"]
    assert m.services == [("start", "frrinit")]
    assert "bgpd=yes" in m.files["/etc/frr/daemons"][0]
    assert m.files["/etc/wireguard/wg-vps.conf"][1] == 0o600
    assert any("wireguard-go" in n for n in r.notes)
    assert any("no systemd" in n for n in r.notes)


def test_no_key_material_in_any_argv_or_result(classic):
    m = machine_with_key("laptop")
    r = apply_machine(m, classic["laptop"])
    assert all(KEY not in " ".join(argv) for argv in m.log)
    assert KEY not in str(r.to_dict())


def test_second_apply_is_one_probe_and_nothing_else(classic):
    m = machine_with_key("laptop")
    apply_machine(m, classic["laptop"])
    m.log.clear()
    r = apply_machine(m, classic["laptop"])
    assert r.ok and not r.changed and r.steps == []
    assert m.keys == ["wgbgp-probe"]
    assert r.summary().startswith("laptop: no changes")


def test_frr_change_only_reloads_frr(classic):
    m = machine_with_key("laptop")
    apply_machine(m, classic["laptop"])
    files = [dataclasses.replace(f, text=f.text.replace("timers 10 30", "timers 5 15"))
             if f.kind == "frr" else f for f in classic["laptop"]]
    m.log.clear()
    r = apply_machine(m, files)
    assert r.ok
    assert [s.action for s in r.steps] == ["validate", "write", "frr-reload"]
    assert "wg-quick up" not in m.keys and "wgbgp-wg-sync" not in m.keys
    assert "network 1.2.3.0/24" in r.steps[-1].detail  # what frr-reload changed


def test_wireguard_change_syncs_in_place_with_address_ops(classic):
    m = machine_with_key("vps", nft_table=True)
    apply_machine(m, classic["vps"])
    m.interfaces["wg-vps"] = (1420, ["10.0.0.1/24", "fe80::1/64"])
    files = [dataclasses.replace(f, text=f.text.replace("10.0.0.1/24", "10.0.0.1/25"))
             if f.kind == "wireguard" else f for f in classic["vps"]]
    r = apply_machine(m, files)
    assert r.ok
    sync = next(a for a in m.log if a[:2] == ("sh", "-c") and a[3] == "wgbgp-wg-sync")
    assert sync[4:8] == ("wg-vps", "/etc/wireguard/wg-vps.conf", "/etc/wgbgp/keys/vps.key",
                         "auto")
    assert sync[8:] == ("addr-del", "10.0.0.1/24", "addr-add", "10.0.0.1/25")


def test_hub_checks_and_loads_nftables_and_never_touches_frr(classic):
    m = machine_with_key("vps")
    r = apply_machine(m, classic["vps"])
    assert r.ok
    assert [s.action for s in r.steps] == ["validate", "write", "sysctl", "nftables", "wg-up"]
    assert not any("frr" in k for k in m.keys)
    validate = next(a for a in m.log if a[:2] == ("sh", "-c") and a[3] == "wgbgp-validate")
    assert "nftables" in validate and "wireguard" in validate


def test_hub_reloads_nft_table_when_missing_even_if_file_unchanged(classic):
    m = machine_with_key("vps")
    apply_machine(m, classic["vps"])
    m.nft_table = False
    r = apply_machine(m, classic["vps"])
    assert [s.action for s in r.steps] == ["nftables"]
    assert "not loaded" in r.steps[0].detail or "nft -f" in r.steps[0].detail


def test_failed_frr_reload_restores_files_and_previous_frr_config(classic):
    m = machine_with_key("laptop")
    apply_machine(m, classic["laptop"])
    old_frr = m.files["/etc/frr/frr.conf"]
    files = [dataclasses.replace(f, text=f.text.replace("timers 10 30", "timers 5 15"))
             if f.kind == "frr" else f for f in classic["laptop"]]
    m.log.clear()
    m.fail["wgbgp-frr-reload"] = "line 7: % Unknown command"
    r = apply_machine(m, files)
    assert not r.ok and r.failed_step == "frr"
    assert "Unknown command" in r.error
    assert m.files["/etc/frr/frr.conf"] == old_frr
    # rollback: files first, then the live undo
    after = m.keys[m.keys.index("wgbgp-frr-reload") + 1:]
    assert after[0] == "wgbgp-restore"
    assert r.rolled_back is False  # the fake keeps failing the reload of the old config too
    assert any("undo frr" in e for e in r.rollback_errors)
    assert "/etc/wgbgp/apply-pending" in m.files  # so the next apply re-applies live state


def test_failed_wg_up_rolls_back_and_clears_pending(classic):
    m = machine_with_key("laptop")
    m.fail["wg-quick up"] = "RTNETLINK answers: Operation not permitted"
    r = apply_machine(m, classic["laptop"])
    assert not r.ok and r.failed_step == "wireguard wg-vps"
    assert r.rolled_back is True
    assert "/etc/wireguard/wg-vps.conf" not in m.files  # created by this run: removed
    assert "bgpd=no" in m.files["/etc/frr/daemons"][0]   # updated by this run: restored
    assert "/etc/wgbgp/apply-pending" not in m.files
    assert "frrinit.sh" not in " ".join(m.keys)
    assert r.summary().endswith("previous configuration restored")


def test_validation_failure_changes_nothing(classic):
    m = machine_with_key("laptop")
    m.fail["wgbgp-validate"] = "FRR rejects frr.conf"
    before = dict(m.files)
    r = apply_machine(m, classic["laptop"])
    assert not r.ok and r.failed_step == "validate"
    assert r.rolled_back is None
    assert m.files == before
    assert "wgbgp-install" not in m.keys


def test_missing_key_is_a_preflight_problem_and_nothing_runs(classic):
    m = FakeMachine("laptop")
    r = apply_machine(m, classic["laptop"])
    assert not r.ok and r.failed_step == "preflight"
    assert "wgbgp keygen" in r.error
    assert m.keys == ["wgbgp-probe"]


def test_missing_frr_is_a_preflight_problem(classic):
    m = machine_with_key("laptop", missing_tools={"vtysh"})
    r = apply_machine(m, classic["laptop"])
    assert r.failed_step == "preflight" and "FRR is not installed" in r.error


def test_unfinished_previous_apply_forces_live_steps(classic):
    m = machine_with_key("laptop")
    apply_machine(m, classic["laptop"])
    m.files["/etc/wgbgp/apply-pending"] = ("x", 0o644)
    m.log.clear()
    r = apply_machine(m, classic["laptop"])
    assert [s.action for s in r.steps] == ["sysctl", "wg-sync", "frr-reload"]
    assert "/etc/wgbgp/apply-pending" not in m.files


def test_systemd_units_are_enabled_once(classic):
    m = machine_with_key("laptop", systemd=True)
    r = apply_machine(m, classic["laptop"])
    assert r.steps[-1].action == "enable"
    assert m.enabled_units == {"wg-quick@wg-vps", "frr"}
    assert m.services == [("start", "systemd")]  # FRR started through its unit
    r = apply_machine(m, classic["laptop"])
    assert r.steps == []


def test_plan_describes_without_changing_anything(classic):
    m = machine_with_key("laptop")
    before = dict(m.files)
    p = plan_machine(m, classic["laptop"])
    assert m.files == before
    assert m.keys == ["wgbgp-probe"]
    text = p.describe()
    assert "would wireguard wg-vps: interface wg-vps is not up" in text
    assert "would frr: FRR is not running" in text
    assert "+bgpd=yes" in text
    apply_machine(m, classic["laptop"])
    p = plan_machine(m, classic["laptop"])
    assert p.noop and "nothing to change" in p.describe()


def test_plan_asks_frr_what_a_reload_would_change(classic):
    m = machine_with_key("laptop")
    apply_machine(m, classic["laptop"])
    files = [dataclasses.replace(f, text=f.text + "!\n") if f.kind == "frr" else f
             for f in classic["laptop"]]
    p = plan_machine(m, files)
    assert p.frr_delta is not None and "network 1.2.3.0/24" in p.frr_delta.text()
    assert p.to_dict()["frr_delta"]["add"]


def test_probe_failure_is_reported_not_raised(classic):
    m = machine_with_key("laptop")
    m.fail["wgbgp-probe"] = "ssh: connection refused"
    r = apply_machine(m, classic["laptop"])
    assert not r.ok and r.failed_step == "probe" and "connection refused" in r.error


def test_down_removes_what_apply_installed(classic):
    m = machine_with_key("laptop")
    m.files["/etc/wgbgp/manifest"] = (
        "file\t/etc/wireguard/wg-vps.conf\tcreated\nfile\t/etc/frr/frr.conf\treplaced\n"
        "frr\tstarted\n", 0o644)
    m.files["/etc/wgbgp/sysctl-before"] = ("net.ipv4.ip_forward=0\n", 0o644)
    m.interfaces["wg-vps"] = (1420, [])
    m.frr_running = True
    r = down_machine(m)
    assert r.ok, r.summary()
    assert [s.action for s in r.steps] == ["wg-down", "frr-stop", "sysctl-restore", "uninstall"]
    uninstall = next(a for a in m.log if a[:2] == ("sh", "-c") and a[3] == "wgbgp-uninstall")
    assert uninstall[4:] == ("/etc/wireguard/wg-vps.conf", "created", "/etc/frr/frr.conf",
                             "replaced")
    assert ("sysctl", "-q", "-w", "net.ipv4.ip_forward=0") in m.log


def test_down_on_a_clean_machine_does_nothing():
    m = FakeMachine("x")
    r = down_machine(m)
    assert r.ok and r.steps == [] and "nothing installed" in r.notes[0]


def test_parse_probe_canned_output():
    out = ("tool\twg\t1\ntool\tnft\t0\nsystemd\t0\npending\t0\ndaemon\tbgpd\t42\nnft\t1\n"
           "file\t/a\t1\t600\tabc\naGk=\nfile\t/b\t0\n\niface\twg-x\t1\t1420\n"
           "addr\twg-x\t10.0.0.1/24\niface\twg-y\t0\nkey\t/k\t1\nend\n")
    s = parse_probe(out)
    assert s.has("wg") and not s.has("nft") and s.nft_table and s.bgpd_running
    assert s.files["/a"].text == "hi" and s.files["/a"].mode == 0o600
    assert not s.files["/b"].exists
    assert s.interfaces["wg-x"].addresses == ("10.0.0.1/24",)
    assert not s.interfaces["wg-y"].exists and s.keys["/k"]


def test_rendered_inline_key_is_fed_to_syncconf_without_key_file():
    key_conf = f"[Interface]\nPrivateKey = {KEY}\nAddress = 10.9.0.1/24\n"
    m = FakeMachine("x")
    m.files["/etc/wireguard/wg-t.conf"] = ("old\n", 0o600)
    m.interfaces["wg-t"] = (1420, ["10.9.0.1/24"])
    f = RenderedFile("/etc/wireguard/wg-t.conf", key_conf, 0o600, "wireguard")
    r = apply_machine(m, [f])
    assert r.ok
    sync = next(a for a in m.log if a[:2] == ("sh", "-c") and a[3] == "wgbgp-wg-sync")
    assert sync[6] == ""  # no key file: the inline key is in the file itself
    assert all(KEY not in " ".join(a) for a in m.log)
    assert sha256_text(key_conf) != sha256_text("old\n")


def test_frr_running_without_bgpd_is_restarted(classic):
    m = machine_with_key("laptop")
    apply_machine(m, classic["laptop"])
    m.log.clear()
    # FRR runs (e.g. the user's own, for something else) but bgpd does not.
    real = m.probe_output
    m.probe_output = lambda args: real(args).replace("daemon\tbgpd\t102\n", "")
    r = apply_machine(m, classic["laptop"])
    assert [s.action for s in r.steps] == ["frr-restart"]
    assert m.services[-1] == ("restart", "frrinit")


def test_apply_many_reports_each_machine(classic):
    from wgbgp.apply.parallel import apply_many
    good = machine_with_key("laptop")
    bad = FakeMachine("friend")  # no key: preflight fails, the other machine is unaffected
    res = apply_many([(good, classic["laptop"]), (bad, classic["friend"])])
    assert list(res) == ["laptop", "friend"]
    assert res["laptop"].ok and not res["friend"].ok
    assert res["friend"].failed_step == "preflight"
