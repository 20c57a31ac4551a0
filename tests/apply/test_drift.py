"""Live-state drift (apply/drift.py, steps.plan_steps): canned probe output in, drift items
and repair steps out. One test per drift kind, plus apply on the fake machine."""

from __future__ import annotations

import base64

from wgbgp.apply import apply_machine, plan_machine, plan_steps
from wgbgp.apply.changes import FRR_DAEMONS, compute_changes, daemons_file
from wgbgp.apply.drift import parse_wg_config, peer_drift, route_drift
from wgbgp.apply.probe import parse_probe, probe_args, sysctl_key, sysctl_path
from wgbgp.render import RenderedFile

T = "\t"
KEY_L = "lr9EsAMfEH3IAQscUtagHnqLyaO32WGf+vwXa5VvJAU="
KEY_F = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y1eC7MarlU="
HUB_CONF = f"""[Interface]
Address = 10.0.0.1/24
MTU = 1420
ListenPort = 51820
PostUp = wg set %i private-key /etc/wgbgp/keys/vps.key

[Peer]
# laptop
PublicKey = {KEY_L}
AllowedIPs = 10.0.0.10/32, 100.100.100.1/32

[Peer]
# friend
PublicKey = {KEY_F}
AllowedIPs = 10.0.0.2/32, 100.100.100.2/32
"""
# `wg showconf wg-vps` on a healthy hub (keys masked by the probe; endpoints learned).
SHOWCONF = f"""[Interface]
ListenPort = 51820
PrivateKey = (hidden)

[Peer]
PublicKey = {KEY_L}
AllowedIPs = 10.0.0.10/32, 100.100.100.1/32
Endpoint = 198.51.100.1:40001

[Peer]
PublicKey = {KEY_F}
AllowedIPs = 10.0.0.2/32, 100.100.100.2/32
Endpoint = 198.51.100.1:40002
"""
SYSCTL = "net.ipv4.ip_forward = 1\nnet.ipv4.conf.all.rp_filter = 1\n"
NFT = "table inet wgbgp {\n}\n"
HEALTHY_ROUTES = ("10.0.0.0/24", "100.100.100.1", "100.100.100.2")


def _file(path: str, text: str, mode: str = "600") -> list[str]:
    import hashlib
    return [f"file{T}{path}{T}1{T}{mode}{T}{hashlib.sha256(text.encode()).hexdigest()}",
            base64.b64encode(text.encode()).decode()]


def hub_probe(*, up: str = "1", routes=HEALTHY_ROUTES, showconf: str | None = SHOWCONF,
              forward: str = "1", nft: str = "1", addrs=("10.0.0.1/24",), mtu: str = "1420",
              extra=()) -> str:
    out = [f"tool{T}{t}{T}1" for t in ("wg", "wg-quick", "ip", "nft", "sysctl", "base64",
                                        "sha256sum")]
    out += [f"systemd{T}0", f"pending{T}0", f"nft{T}{nft}"]
    out += _file("/etc/wireguard/wg-vps.conf", HUB_CONF)
    out += _file("/etc/sysctl.d/90-wgbgp.conf", SYSCTL, "644")
    out += _file("/etc/wgbgp/nftables.nft", NFT, "644")
    out += [f"iface{T}wg-vps{T}1{T}{mtu}{T}{up}", *(f"addr{T}wg-vps{T}{a}" for a in addrs)]
    if showconf is None:
        out += [f"wgconf{T}wg-vps{T}0", ""]
    else:
        out += [f"wgconf{T}wg-vps{T}1", base64.b64encode(showconf.encode()).decode()]
        out += [f"route{T}wg-vps{T}{r}" for r in routes]
    out += [f"sysctl{T}/proc/sys/net/ipv4/ip_forward{T}{forward}",
            f"sysctl{T}/proc/sys/net/ipv4/conf/all/rp_filter{T}1",
            f"key{T}/etc/wgbgp/keys/vps.key{T}1",
            *extra, "end"]
    return "\n".join(out) + "\n"


HUB_FILES = [RenderedFile("/etc/wireguard/wg-vps.conf", HUB_CONF, 0o600, "wireguard"),
             RenderedFile("/etc/sysctl.d/90-wgbgp.conf", SYSCTL, 0o644, "sysctl"),
             RenderedFile("/etc/wgbgp/nftables.nft", NFT, 0o644, "nftables")]


def plan_of(output: str, files=HUB_FILES):
    state = parse_probe(output)
    changes = compute_changes(files, state.files, "vps")
    return plan_steps(changes, state, enable_at_boot=False)


def texts(sp) -> list[str]:
    return [d.line() for d in sp.drift]


def test_probe_parses_link_state_showconf_routes_and_sysctls():
    s = parse_probe(hub_probe(up="0", routes=("10.0.0.0/24",)))
    assert s.interfaces["wg-vps"].up is False and s.interfaces["wg-vps"].mtu == 1420
    assert s.interfaces["wg-vps"].addresses == ("10.0.0.1/24",)
    assert "Endpoint = 198.51.100.1:40001" in (s.wg_config["wg-vps"] or "")
    assert s.routes["wg-vps"] == ("10.0.0.0/24",)
    assert s.sysctls == {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "1"}
    multi = parse_probe(f"sysctl{T}/proc/sys/net/ipv4/ip_local_port_range{T}1024{T}65535\nend\n")
    assert multi.sysctls == {"net.ipv4.ip_local_port_range": "1024 65535"}
    assert sysctl_path("net.ipv4.conf.eth0/5.rp_filter") == \
        "/proc/sys/net/ipv4/conf/eth0.5/rp_filter"
    assert sysctl_key(sysctl_path("net.ipv4.conf.eth0/5.rp_filter")) == \
        "net.ipv4.conf.eth0/5.rp_filter"
    assert probe_args(wireguard=["wg-vps"], sysctls=["net.ipv4.ip_forward"]) == [
        "W", "wg-vps", "S", "/proc/sys/net/ipv4/ip_forward"]
    assert parse_probe(hub_probe(showconf=None)).wg_config["wg-vps"] is None
    # Older output (no link flag, no W/S lines) reads as "not reported", never as drift.
    old = parse_probe(f"iface{T}wg-x{T}1{T}1420\nend\n")
    assert old.interfaces["wg-x"].up is None and old.wg_config == {} and old.routes == {}


def test_healthy_hub_has_no_drift_and_no_steps():
    sp = plan_of(hub_probe())
    assert sp.drift == () and sp.steps == ()


def test_flapped_link_is_brought_up_and_its_routes_re_added():
    sp = plan_of(hub_probe(up="0", routes=()))
    assert texts(sp) == [
        "repaired: wg-vps was down",
        "repaired: route 10.0.0.2/32 dev wg-vps was missing",
        "repaired: route 10.0.0.10/32 dev wg-vps was missing",
        "repaired: route 100.100.100.1/32 dev wg-vps was missing",
        "repaired: route 100.100.100.2/32 dev wg-vps was missing"]
    (step,) = sp.steps
    assert step.action == "wg-sync" and step.params["ops"] == [("up", "1")]
    assert step.params["table"] == "auto"


def test_missing_route_alone_is_drift_and_a_covering_route_is_enough():
    sp = plan_of(hub_probe(routes=("10.0.0.0/24", "100.100.100.1")))
    assert texts(sp) == ["repaired: route 100.100.100.2/32 dev wg-vps was missing"]
    assert [s.action for s in sp.steps] == ["wg-sync"]
    # 10.0.0.2/32 inside the connected /24 needs no route of its own (as wg-quick decides).
    assert route_drift("wg-vps", HUB_CONF, ("10.0.0.0/24", "100.100.100.0/24"), "x") == []


def test_table_off_interfaces_have_no_route_drift():
    conf = HUB_CONF.replace("MTU = 1420\n", "MTU = 1420\nTable = off\n")
    files = [RenderedFile("/etc/wireguard/wg-vps.conf", conf, 0o600, "wireguard")]
    out = hub_probe(routes=()).replace(_file("/etc/wireguard/wg-vps.conf", HUB_CONF)[0],
                                       _file("/etc/wireguard/wg-vps.conf", conf)[0])
    assert plan_of(out, files).drift == ()


def test_peer_drift_missing_changed_and_extra_peers():
    removed = SHOWCONF.split("\n[Peer]\nPublicKey = " + KEY_F)[0]
    sp = plan_of(hub_probe(showconf=removed))
    assert texts(sp) == [f"repaired: wg-vps peer friend ({KEY_F[:8]}…) was missing"]
    assert [s.action for s in sp.steps] == ["wg-sync"]
    narrowed = SHOWCONF.replace("10.0.0.2/32, 100.100.100.2/32", "10.0.0.2/32")
    extra = SHOWCONF + "\n[Peer]\nPublicKey = AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
    assert [d.present for d in peer_drift("wg-vps", HUB_CONF, narrowed, "s")] == [
        f"wg-vps peer friend ({KEY_F[:8]}…) AllowedIPs are 10.0.0.2/32, not "
        "10.0.0.2/32, 100.100.100.2/32"]
    assert [d.present for d in peer_drift("wg-vps", HUB_CONF, extra, "s")] == [
        "wg-vps peer (AAAAAAAA…) is not in the config"]
    # Learned endpoints (none in the hub's file) and the masked private key are no drift.
    assert peer_drift("wg-vps", HUB_CONF, SHOWCONF, "s") == []


def test_client_keepalive_and_literal_endpoint_are_compared():
    conf = ("[Interface]\nAddress = 10.0.0.10/24\nTable = off\n\n[Peer]\n# vps\n"
            f"PublicKey = {KEY_L}\nAllowedIPs = 0.0.0.0/0, ::/0\n"
            "Endpoint = 203.0.113.10:51820\nPersistentKeepalive = 25\n")
    live = (f"[Interface]\nListenPort = 40000\n\n[Peer]\nPublicKey = {KEY_L}\n"
            "AllowedIPs = 0.0.0.0/0, ::/0\nEndpoint = 203.0.113.10:51820\n")
    assert [d.present for d in peer_drift("wg-vps", conf, live, "s")] == [
        f"wg-vps peer vps ({KEY_L[:8]}…) keepalive is off, not 25"]
    assert parse_wg_config(conf).peers[KEY_L].allowed_ips == {"0.0.0.0/0", "::/0"}
    dns = conf.replace("203.0.113.10:51820", "vps.example.net:51820")
    moved = live.replace("203.0.113.10", "203.0.113.99") + "PersistentKeepalive = 25\n"
    assert peer_drift("wg-vps", dns, moved, "s") == []  # a name resolves: not comparable


def test_address_and_mtu_drift():
    sp = plan_of(hub_probe(addrs=("10.0.0.9/24", "fe80::1/64"), mtu="1380"))
    assert texts(sp) == ["repaired: address 10.0.0.9/24 on wg-vps was not in the config",
                         "repaired: address 10.0.0.1/24 on wg-vps was missing",
                         "repaired: wg-vps MTU was not 1420"]
    assert sp.steps[0].params["ops"] == [("addr-del", "10.0.0.9/24"),
                                         ("addr-add", "10.0.0.1/24"), ("mtu", "1420")]


def test_missing_interface_is_drift_and_comes_up():
    out = hub_probe().replace(f"iface{T}wg-vps{T}1{T}1420{T}1", f"iface{T}wg-vps{T}0")
    sp = plan_of(out)
    assert "repaired: wg-vps was missing" in texts(sp)
    assert [s.action for s in sp.steps] == ["wg-up"]


def test_sysctl_drift():
    sp = plan_of(hub_probe(forward="0"))
    assert texts(sp) == ["repaired: net.ipv4.ip_forward was 0, not 1"]
    (step,) = sp.steps
    assert step.action == "sysctl" and "live values differ" in step.reason


def test_nft_table_missing_is_drift():
    sp = plan_of(hub_probe(nft="0"))
    assert texts(sp) == ["repaired: table inet wgbgp was not loaded"]
    assert [s.action for s in sp.steps] == ["nftables"]


DAEMONS = "bgpd=yes\nstaticd=yes\nbfdd=yes\nvtysh_enable=yes\n"
FRR = "frr defaults traditional\nrouter bgp 65010\n"


def frr_plan(daemons: list[str], on_disk: str = DAEMONS):
    frr_files = [RenderedFile("/etc/frr/frr.conf", FRR, 0o640, "frr")]
    out = [f"tool{T}{t}{T}1" for t in ("vtysh", "frrinit.sh", "frr-reload.py", "base64",
                                        "sha256sum")]
    out += [f"systemd{T}0", f"pending{T}0", f"nft{T}0"]
    out += [f"daemon{T}{d}{T}{100 + i}" for i, d in enumerate(daemons)]
    out += _file("/etc/frr/frr.conf", FRR, "640") + _file(FRR_DAEMONS, on_disk, "640")
    state = parse_probe("\n".join([*out, "end"]) + "\n")
    wanted = [*frr_files, daemons_file(state.files[FRR_DAEMONS])]
    return plan_steps(compute_changes(wanted, state.files, "laptop"), state,
                      enable_at_boot=False)


def test_daemon_drift():
    assert frr_plan(["watchfrr", "zebra", "bgpd", "staticd", "bfdd"]).steps == ()
    sp = frr_plan([])
    assert texts(sp) == ["repaired: FRR was not running"]
    assert [s.action for s in sp.steps] == ["frr-start"]
    sp = frr_plan(["watchfrr", "zebra", "staticd", "bfdd"])
    assert texts(sp) == ["repaired: bgpd was not running"]
    assert [s.action for s in sp.steps] == ["frr-restart"]
    sp = frr_plan(["zebra", "bgpd", "staticd", "bfdd"])
    assert texts(sp) == ["repaired: watchfrr was not running"]
    assert [s.action for s in sp.steps] == ["frr-restart"]


def test_apply_on_the_fake_reports_repairs_and_plan_shows_drift(classic):
    from test_apply_fake import machine_with_key

    m = machine_with_key("vps")
    assert apply_machine(m, classic["vps"]).ok
    assert apply_machine(m, classic["vps"]).steps == []  # healthy: nothing, not even a sync
    m.down.add("wg-vps")
    m.routes["wg-vps"] = []
    plan = plan_machine(m, classic["vps"])
    text = plan.describe()
    assert "drift: wg-vps is down (would repair: wireguard wg-vps)" in text
    assert "drift: route 100.100.100.2/32 dev wg-vps is missing" in text
    assert plan.to_dict()["drift"][0]["kind"] == "link"
    r = apply_machine(m, classic["vps"])
    assert r.ok and [s.action for s in r.steps] == ["wg-sync"]
    assert "repaired: wg-vps was down" in r.repaired
    assert "repaired: route 100.100.100.2/32 dev wg-vps was missing" in r.summary()
    assert r.to_dict()["repaired"] == r.repaired
    again = apply_machine(m, classic["vps"])
    assert again.steps == [] and again.repaired == []


def test_daemons_enabled_only_by_the_new_daemons_file_are_no_drift():
    """FRR started from a daemons file without staticd/bfdd: apply enables them in the file
    (they start at FRR's next start, as before); it does not restart FRR for them."""
    sp = frr_plan(["watchfrr", "zebra", "bgpd"], on_disk="bgpd=yes\nstaticd=no\nbfdd=no\n")
    assert sp.drift == () and [s.action for s in sp.steps] == ["write"]
    assert any("next start" in n for n in sp.notes)
