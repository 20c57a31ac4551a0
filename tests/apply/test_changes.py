"""The pure part: change sets, masked diffs, facts read from rendered text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from wgbgp.apply.changes import (
    MASK,
    CurrentFile,
    bgp_asn,
    compute_changes,
    daemons_file,
    enable_daemons,
    mask_output,
    mask_secrets,
    parse_frr_reload_test,
    parse_wg_quick,
    pin_os_lines,
    sha256_text,
    sysctl_settings,
)
from wgbgp.render import RenderedFile

KEY = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="


def current(path: str, text: str, mode: int = 0o644) -> CurrentFile:
    return CurrentFile(path, True, mode, sha256_text(text), mask_secrets(text))


def test_mask_secrets_hides_private_and_preshared_keys():
    text = f"[Interface]\nPrivateKey = {KEY}\n[Peer]\npresharedkey={KEY}\nPublicKey = {KEY}\n"
    masked = mask_secrets(text)
    assert masked.count(KEY) == 1  # the public key stays visible
    assert f"PrivateKey = {MASK}" in masked
    assert f"presharedkey={MASK}" in masked


def test_mask_output_hides_backticked_fragments():
    err = f"Key is not the correct length or format: `{KEY[:20]}`"
    assert KEY[:20] not in mask_output(err)


def test_new_file_is_created_and_diff_never_shows_an_inline_key():
    f = RenderedFile("/etc/wireguard/wg-vps.conf", f"[Interface]\nPrivateKey = {KEY}\n", 0o600,
                     "wireguard")
    cs = compute_changes([f], {}, "laptop")
    (c,) = cs.changes
    assert c.action == "create" and c.content_changed
    assert KEY not in cs.diff() and KEY not in str(cs.to_dict())
    assert "new file /etc/wireguard/wg-vps.conf (mode 0600)" in c.diff


def test_identical_file_is_unchanged_and_produces_no_diff(classic):
    files = classic["laptop"]
    cur = {f.path: current(f.path, f.text, f.mode) for f in files}
    cs = compute_changes(files, cur, "laptop")
    assert cs.empty
    assert cs.diff() == "laptop: no changes\n"
    assert all(c.diff == "" for c in cs.changes)


def test_changed_file_is_updated_with_a_unified_diff():
    new = RenderedFile("/etc/frr/frr.conf", "a\nb\nc\n", 0o640, "frr")
    cs = compute_changes([new], {new.path: current(new.path, "a\nB\nc\n", 0o640)})
    (c,) = cs.changed
    assert c.action == "update" and c.content_changed
    assert "-B\n+b\n" in c.diff
    assert c.diff.startswith("--- a/etc/frr/frr.conf\n+++ b/etc/frr/frr.conf\n")


def test_mode_only_change_is_an_update_without_content_change():
    new = RenderedFile("/etc/wireguard/wg-x.conf", "x\n", 0o600, "wireguard")
    cs = compute_changes([new], {new.path: current(new.path, "x\n", 0o644)})
    (c,) = cs.changed
    assert c.action == "update" and not c.content_changed
    assert "mode /etc/wireguard/wg-x.conf: 0644 -> 0600" in c.diff


def test_change_detection_uses_the_real_hash_not_the_masked_text():
    # The machine holds a different key inline: the masked texts agree, the hashes do not.
    path = "/etc/wireguard/wg-x.conf"
    on_machine = "[Interface]\nPrivateKey = " + "A" * 43 + "=\n"
    rendered = RenderedFile(path, f"[Interface]\nPrivateKey = {KEY}\n", 0o600, "wireguard")
    cs = compute_changes([rendered], {path: current(path, on_machine, 0o600)})
    assert cs.changes[0].content_changed


def test_duplicate_paths_are_refused():
    f = RenderedFile("/x", "1", 0o644, "sysctl")
    try:
        compute_changes([f, f], {})
    except ValueError as exc:
        assert "/x" in str(exc)
    else:
        raise AssertionError("duplicate path accepted")


def test_summary_counts():
    a = RenderedFile("/a", "1\n", 0o644, "sysctl")
    b = RenderedFile("/b", "2\n", 0o644, "sysctl")
    cs = compute_changes([a, b], {"/b": current("/b", "2\n")})
    assert cs.summary() == "1 to create, 1 unchanged"


def test_parse_wg_quick_of_rendered_files(classic):
    hub = next(f for f in classic["vps"] if f.kind == "wireguard")
    wg = parse_wg_quick(hub.path, hub.text)
    assert wg.name == "wg-vps"
    assert wg.addresses == ("10.0.0.1/24",)
    assert wg.mtu == 1420 and wg.table == "auto"
    assert wg.key_file == "/etc/wgbgp/keys/vps.key" and not wg.inline_key
    client = next(f for f in classic["laptop"] if f.kind == "wireguard")
    assert parse_wg_quick(client.path, client.text).table == "off"


def test_parse_wg_quick_inline_key():
    wg = parse_wg_quick("/etc/wireguard/wg0.conf",
                        f"[Interface]\nPrivateKey = {KEY}\nAddress = 10.1.0.1/24, fd00::1/64\n")
    assert wg.inline_key and wg.key_file is None
    assert wg.addresses == ("10.1.0.1/24", "fd00::1/64")


def test_sysctl_settings_and_asn(classic):
    hub_sysctl = next(f for f in classic["vps"] if f.kind == "sysctl")
    keys = dict(sysctl_settings(hub_sysctl.text))
    assert keys["net.ipv4.ip_forward"] == "1"
    assert sysctl_settings("# only a comment\n") == ()
    frr = next(f for f in classic["laptop"] if f.kind == "frr")
    assert bgp_asn(frr.text) == 65010


def test_enable_daemons_edits_in_place_and_appends():
    text = "# comment\nbgpd=no\nospfd=no\nbgpd_options=\"-A 127.0.0.1\"\n"
    out = enable_daemons(text)
    assert "bgpd=yes\n" in out and "bgpd=no" not in out
    assert "ospfd=no\n" in out and "bgpd_options=\"-A 127.0.0.1\"\n" in out
    assert out.endswith("staticd=yes\nbfdd=yes\n")
    assert enable_daemons(out) == out


@given(st.lists(st.sampled_from(["bgpd=no", "bgpd=yes", "bfdd=no", "# x", "ospfd=yes",
                                 "staticd=\"no\"", "zebra=yes", "", "bgpd_options=x"])))
def test_enable_daemons_is_idempotent_and_enables(lines):
    text = "\n".join(lines)
    once = enable_daemons(text)
    assert enable_daemons(once) == once
    for d in ("bgpd", "staticd", "bfdd"):
        assert f"{d}=yes" in once.splitlines()
        assert f"{d}=no" not in once.splitlines()


def test_daemons_file_keeps_mode_and_needs_frr():
    cur = CurrentFile("/etc/frr/daemons", True, 0o640, "x", "bgpd=no\n")
    f = daemons_file(cur)
    assert f is not None and f.mode == 0o640 and "bgpd=yes" in f.text
    assert daemons_file(CurrentFile("/etc/frr/daemons", False)) is None


BGP = "router bgp 65010\n neighbor 10.0.0.2 remote-as 65020\nexit\n"


def test_pin_os_lines_takes_hostname_and_unstated_forwarding_from_running():
    running = "frr version 8.4.4\nhostname vm\nno ip forwarding\nno ipv6 forwarding\n!\n"
    pinned = pin_os_lines("hostname laptop\n" + BGP, running)
    assert pinned.splitlines()[:3] == ["hostname vm", "no ip forwarding", "no ipv6 forwarding"]
    assert "hostname laptop" not in pinned and "router bgp 65010" in pinned
    # forwarding on in the kernel: FRR shows nothing, so nothing is pinned
    assert "forwarding" not in pin_os_lines(BGP, "hostname vm\n")


def test_pin_os_lines_keeps_forwarding_the_file_states():
    running = "hostname vm\nno ip forwarding\nno ipv6 forwarding\n"
    # the file says on, the kernel is off: the reload must turn it on
    pinned = pin_os_lines("ip forwarding\n" + BGP, running)
    assert "ip forwarding" in pinned.splitlines()
    assert "no ip forwarding" not in pinned.splitlines()
    assert "no ipv6 forwarding" in pinned.splitlines()  # unstated: left as it is
    # the file says on and it is on: the default FRR never shows, dropped
    assert "ip forwarding" not in pin_os_lines("ip forwarding\n" + BGP, "hostname vm\n")
    # the file says off: kept whatever the kernel does
    for run in ("", "no ip forwarding\n"):
        assert "no ip forwarding" in pin_os_lines("no ip forwarding\n" + BGP, run).splitlines()


@given(st.booleans(), st.booleans(), st.sampled_from([None, True, False]))
def test_pinned_config_agrees_with_running_when_the_file_matches_the_kernel(v4_on, v6_on,
                                                                           stated):
    """After pinning, the forwarding lines equal the running ones whenever what the file
    states (if anything) already holds: such a reload has nothing forwarding-related to do."""
    running = "hostname h\n" + ("" if v4_on else "no ip forwarding\n") + \
        ("" if v6_on else "no ipv6 forwarding\n")
    config = BGP if stated is None else ("ip forwarding\n" if stated else
                                         "no ip forwarding\n") + BGP
    pinned = pin_os_lines(config, running)
    fwd = {ln for ln in pinned.splitlines() if "forwarding" in ln}
    want = {ln for ln in running.splitlines() if "forwarding" in ln}
    if stated is None or stated == v4_on:
        assert fwd == want


def test_parse_frr_reload_test_output():
    out = ("\nLines To Delete\n===============\nrouter bgp 65010\n no neighbor 10.0.0.3 "
           "remote-as 1\n\nLines To Add\n============\nip prefix-list OWN seq 10 permit "
           "1.2.3.0/24\n")
    d = parse_frr_reload_test(out)
    assert d.delete == ("router bgp 65010", " no neighbor 10.0.0.3 remote-as 1")
    assert d.add == ("ip prefix-list OWN seq 10 permit 1.2.3.0/24",)
    assert parse_frr_reload_test("").empty


def test_mask_secrets_hides_frr_passwords():
    text = "router bgp 1\n neighbor 10.0.0.2 password s3cr3t\n neighbor 10.0.0.2 remote-as 2\n" \
           "password zebra\nenable password x\n"
    masked = mask_secrets(text)
    assert "s3cr3t" not in masked and "zebra" not in masked and "password x" not in masked
    assert " neighbor 10.0.0.2 remote-as 2" in masked
