"""Rendered files, checked by the real tools, for every example topology.

- WireGuard: `wg-quick strip FILE`, then `wg setconf` on a throwaway wireguard-go
  interface inside a throwaway network namespace; `wg showconf` must read back the peers.
- FRR: `vtysh --dryrun --inputfile FILE` (FRR 8.4 exits 2 and prints `line N: % Unknown
  command` on a bad line; the negative controls below prove a broken file fails), and
  `bgpd -C` (bgpd's own handlers, which also reject what is valid syntax but wrong).
- nftables: `nft -c -f FILE` (check only) inside the throwaway namespace.
- sysctl: every key exists in /proc/sys.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from confparse import wg_quick
from typer.testing import CliRunner

from topogen import doc, text
from wgbgp.cli.main import app
from wgbgp.compile import compile_topology
from wgbgp.model import parse
from wgbgp.model.keys import generate_private_key, public_key
from wgbgp.render import render_frr, render_machine, secrets_needed

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
WG_RUN = Path("/var/run/wireguard")
BGPD = "/usr/lib/frr/bgpd"

needs_wg = pytest.mark.real_tools("ip", "wg", "wg-quick", "wireguard-go")
needs_vtysh = pytest.mark.real_tools("vtysh")
needs_nft = pytest.mark.real_tools("ip", "nft")


def write_key(path: Path, text: str) -> None:
    """A private key file as keygen writes it: readable by its owner only."""
    path.write_text(text)
    path.chmod(0o600)


def sh(*args: str | Path, ns: str | None = None, **kw) -> subprocess.CompletedProcess:
    cmd = [str(a) for a in args]
    if ns:
        cmd = ["ip", "netns", "exec", ns, *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, **kw)


def machines(example: Path) -> list[str]:
    topology, _ = parse(example.read_text(), str(example))
    return list(topology.machines)


CASES = [(ex, m) for ex in EXAMPLES for m in machines(ex)]
IDS = [f"{ex.stem}-{m}" for ex, m in CASES]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    """Every example rendered by the CLI, as a user would: OUT/EXAMPLE/MACHINE/etc/...
    Also OUT/EXAMPLE-keys/...: the same with private keys inlined (--keys)."""
    out = tmp_path_factory.mktemp("rendered")
    for example in EXAMPLES:
        # A copy: render records addresses in a lock file beside the topology it reads.
        copy = out / example.name
        copy.write_text(example.read_text())
        result = CliRunner().invoke(app, ["render", str(copy), "--out",
                                          str(out / example.stem)])
        assert result.exit_code == 0, result.output
        # The same topology with fresh key pairs: private keys in a key dir, their public
        # keys in a copy of the file (render refuses a key that is not the declared one).
        keys = out / f"{example.stem}-keydir"
        keys.mkdir()
        d = yaml.safe_load(example.read_text())
        for section in ("hubs", "nodes"):
            for machine, settings in d[section].items():
                private = generate_private_key()
                write_key(keys / f"{machine}.key", private + "\n")
                settings["public_key"] = public_key(private)
        copy = out / f"{example.stem}-keys.yaml"
        copy.write_text(yaml.safe_dump(d))
        result = CliRunner().invoke(app, ["render", str(copy), "--keys", str(keys),
                                          "--out", str(out / f"{example.stem}-keys")])
        assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def netns():
    """A throwaway network namespace, deleted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("real_tools: needs root (network namespaces)")
    name = f"wgbgp-test-{os.getpid()}"
    created = sh("ip", "netns", "add", name)
    if created.returncode != 0:
        pytest.skip(f"real_tools: cannot create a network namespace: {created.stderr.strip()}")
    try:
        yield name
    finally:
        sh("ip", "netns", "del", name)


@pytest.fixture(scope="module")
def wg_iface(netns):
    """A wireguard-go interface in the namespace, with a name no one else uses (the control
    socket dir /var/run/wireguard is shared between namespaces). Removed afterwards."""
    iface = f"wgt{os.getpid() % 1_000_000}"
    sock = WG_RUN / f"{iface}.sock"
    if sock.exists():
        pytest.skip(f"real_tools: {sock} is in use")
    env = {**os.environ, "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1"}
    # `ip netns exec` execs wireguard-go: proc.pid is wireguard-go's own pid.
    proc = subprocess.Popen(["ip", "netns", "exec", netns, "wireguard-go", "-f", iface],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"wireguard-go did not start: {proc.stderr.read().decode()}")
            time.sleep(0.05)
        yield iface
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stderr.close()
        if sock.exists():
            sock.unlink()


def wg_check(path: Path, netns: str, iface: str, tmp_path: Path) -> str:
    """wg-quick strip + wg setconf; returns `wg showconf`. Fails the test on any error."""
    strip = sh("wg-quick", "strip", path)
    assert strip.returncode == 0, f"wg-quick strip {path}: {strip.stderr}"
    stripped = tmp_path / "stripped.conf"
    stripped.write_text(strip.stdout)
    setconf = sh("wg", "setconf", iface, stripped, ns=netns)
    assert setconf.returncode == 0, f"wg setconf {path}: {setconf.stderr}"
    shown = sh("wg", "showconf", iface, ns=netns)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


def peers_of(conf: str) -> dict[str, dict[str, str]]:
    """{public key: settings} of the [Peer] sections, AllowedIPs as a sorted list."""
    peers = {}
    for section, body in wg_quick(conf):
        if section == "Peer":
            body = dict(body)
            body["AllowedIPs"] = sorted(a.strip() for a in body["AllowedIPs"].split(","))
            peers[body.pop("PublicKey")] = body
    return peers


@needs_wg
@pytest.mark.parametrize(("example", "machine"), CASES, ids=IDS)
def test_wireguard_config_accepted_by_wg(example, machine, rendered, netns, wg_iface, tmp_path):
    variants = (example.stem, f"{example.stem}-keys")
    # One file per hub: every hub is a plane with its own interface on every client.
    confs = [c for v in variants for c in sorted((rendered / v / machine / "etc/wireguard")
                                                  .glob("*.conf"))]
    assert len(confs) == 2 * (1 if machine in parse(example.read_text())[0].hubs
                              else len(parse(example.read_text())[0].hubs))
    for conf in confs:
        variant = conf.relative_to(rendered).parts[0]
        shown = wg_check(conf, netns, wg_iface, tmp_path)
        # What the kernel side holds now is what we rendered: same peers, same settings.
        ours, theirs = peers_of(conf.read_text()), peers_of(shown)
        assert set(ours) == set(theirs)
        for key, settings in ours.items():
            assert theirs[key]["AllowedIPs"] == settings["AllowedIPs"]
            assert theirs[key].get("PersistentKeepalive") == settings.get("PersistentKeepalive")
            assert ("Endpoint" in theirs[key]) == ("Endpoint" in settings)
        iface = dict(wg_quick(shown)[0][1])
        if "ListenPort" in dict(wg_quick(conf.read_text())[0][1]):
            assert iface["ListenPort"] == dict(wg_quick(conf.read_text())[0][1])["ListenPort"]
        if variant.endswith("-keys"):
            # The inlined private key is read the way `wg` reads it: same public key.
            private = (rendered / f"{example.stem}-keydir" / f"{machine}.key").read_text()
            pub = sh("wg", "show", wg_iface, "public-key", ns=netns).stdout.strip()
            assert pub == public_key(private)


@needs_wg
def test_hostname_endpoint_accepted_by_wg(tmp_path, netns, wg_iface):
    d = doc(2)
    d["hubs"]["vps"]["endpoint"] = "localhost:51820"  # resolvable without a network
    plan = compile_topology(parse(text(d))[0])["n1"]
    conf = tmp_path / "wg-vps.conf"
    conf.write_text(render_machine(plan)[0].text)
    conf.chmod(0o600)
    assert "endpoint = 127.0.0.1:51820" in wg_check(conf, netns, wg_iface, tmp_path).lower()


def longest_names() -> dict[str, list]:
    """Plans of a topology whose names are as long as the schema allows."""
    d = doc(2, hub="h" * 12)
    d["nodes"] = {"n" * 31 + str(i): node for i, node in enumerate(d["nodes"].values())}
    return compile_topology(parse(text(d))[0])


@needs_wg
def test_longest_names_accepted_by_wg(tmp_path, netns, wg_iface):
    for plan in longest_names().values():
        f = render_machine(plan)[0]
        conf = tmp_path / Path(f.path).name  # wg-hhhhhhhhhhhh.conf: a 15-character name
        conf.write_text(f.text)
        conf.chmod(0o600)
        wg_check(conf, netns, wg_iface, tmp_path)


@needs_vtysh
def test_longest_names_accepted_by_vtysh(tmp_path):
    plan = longest_names()["n" * 31 + "0"]
    conf = tmp_path / "frr.conf"
    conf.write_text(render_frr(plan).text)
    assert_frr_ok(conf)


def with_secrets() -> dict:
    """Plans of a topology with TCP-MD5 passwords and preshared keys, and their secrets."""
    d = doc(3)
    d["network"]["bgp_password"] = {"env": "WGBGP_TEST_BGP_{pair}"}
    d["network"]["preshared_key"] = {"file": "./psk-{pair}"}
    plans = compile_topology(parse(text(d))[0])
    secrets = {}
    for plan in plans.values():
        for ref in secrets_needed(plan):
            secrets[ref] = (generate_private_key() if ref.what.startswith("preshared")
                            else f"pw-{ref.name}-x(1)")
    return {"plans": plans, "secrets": secrets}


@needs_wg
def test_preshared_keys_accepted_by_wg(tmp_path, netns, wg_iface):
    case = with_secrets()
    for plan in case["plans"].values():
        f = render_machine(plan, secrets=case["secrets"])[0]
        assert "PresharedKey = " in f.text
        conf = tmp_path / "wg-vps.conf"
        conf.write_text(f.text)
        conf.chmod(0o600)
        shown = wg_check(conf, netns, wg_iface, tmp_path)
        assert shown.count("PresharedKey = ") == len(plan.tunnels[0].peers)


@pytest.mark.real_tools("ip", "vtysh", BGPD)
def test_bgp_passwords_accepted_by_frr(tmp_path, netns):
    case = with_secrets()
    for name, plan in case["plans"].items():
        if plan.bgp is None:
            continue
        conf = tmp_path / f"{name}.conf"
        conf.write_text(render_frr(plan, case["secrets"]).text)
        assert conf.read_text().count(" password pw-") == len(plan.bgp.sessions)
        assert_frr_ok(conf)
        assert bgpd_dryrun(conf, netns) == []


@needs_wg
@pytest.mark.parametrize(("key", "line"), [
    ("AllowedIPs", "AllowedIPs = 0.0.0.300/0"),
    ("PersistentKeepalive", "PersistentKeepalive = 99999"),
    ("PersistentKeepalive", "PersistentKeepaliv = 25"),
    ("Endpoint", "Endpoint = 203.0.113.10"),
    ("PublicKey", "PublicKey = abc="),
], ids=["bad-ip", "keepalive-range", "unknown-key", "endpoint-no-port", "bad-key"])
def test_wg_check_catches_a_broken_config(key, line, tmp_path, netns, wg_iface):
    """Negative control: a broken config fails, so the check above can fail."""
    plan = compile_topology(parse(text(doc(2)))[0])["n1"]
    original = render_machine(plan)[0].text
    broken = re.sub(rf"^{key} = .*$", line, original, count=1, flags=re.M)
    assert broken != original
    conf = tmp_path / "wg-vps.conf"
    conf.write_text(broken)
    conf.chmod(0o600)
    with pytest.raises(AssertionError, match=r"wg setconf|wg-quick strip"):
        wg_check(conf, netns, wg_iface, tmp_path)


def vtysh_dryrun(path: Path) -> subprocess.CompletedProcess:
    return sh("vtysh", "--dryrun", "--inputfile", path)


def assert_frr_ok(path: Path) -> None:
    result = vtysh_dryrun(path)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "%" not in output, f"vtysh --dryrun {path}:\n{output}"


@needs_vtysh
@pytest.mark.parametrize(("example", "machine"), CASES, ids=IDS)
def test_frr_config_accepted_by_vtysh(example, machine, rendered):
    conf = rendered / example.stem / machine / "etc/frr/frr.conf"
    topology, _ = parse(example.read_text())
    if topology.machine(machine).daemon != "frr" or (
            machine in topology.hubs and topology.network.mode == "mesh"):
        # A mesh hub runs no BGP (a route server does); a BIRD node or hub runs no FRR.
        assert not conf.exists()
        return
    assert_frr_ok(conf)


@needs_vtysh
def test_large_frr_config_accepted_by_vtysh(tmp_path):
    plan = compile_topology(parse(text(doc(60)))[0])["n1"]
    conf = tmp_path / "frr.conf"
    conf.write_text(render_frr(plan).text)
    assert_frr_ok(conf)


@needs_vtysh
@pytest.mark.parametrize(("old", "new"), [
    ("remote-as", "remote-ass"),
    ("ebgp-multihop 2", "ebgp-multihop 300"),
    ("blackhole 250", "blackhole 256"),
    ("permit 100.64.2.0/24", "permit 100.64.2.0/33"),
    (" exit-address-family", " exit-adress-family"),
])
def test_vtysh_check_catches_a_broken_config(old, new, tmp_path):
    """Negative control: a broken frr.conf fails, so the check above can fail."""
    plan = compile_topology(parse(text(doc(2)))[0])["n1"]
    original = render_frr(plan).text
    assert old in original
    conf = tmp_path / "frr.conf"
    conf.write_text(original.replace(old, new, 1))
    result = vtysh_dryrun(conf)
    assert result.returncode != 0
    assert "Unknown command" in result.stdout + result.stderr
    with pytest.raises(AssertionError):
        assert_frr_ok(conf)


def bgpd_dryrun(path: Path, netns: str) -> list[str]:
    """Problems bgpd's own command handlers find (`bgpd -C`): semantic ones too, which
    vtysh --dryrun does not see (e.g. a neighbour joining a peer-group with no AS).

    bgpd exits 0 regardless; it logs 'Config Failed' or '% ...' for a failing command and
    'No such command' for lines of other daemons (staticd's ip route, zebra's forwarding),
    which vtysh has checked."""
    result = sh(BGPD, "-C", "-f", path, "-Z", "-S", "-p", "0", ns=netns)
    lines = (result.stdout + result.stderr).splitlines()
    return [line for line in lines if "Config Failed" in line or line.startswith("%")]


@pytest.mark.real_tools("ip", BGPD)
@pytest.mark.parametrize(("example", "machine"), CASES, ids=IDS)
def test_frr_config_accepted_by_bgpd(example, machine, rendered, netns):
    conf = rendered / example.stem / machine / "etc/frr/frr.conf"
    if not conf.exists():
        return  # a hub (see above)
    assert bgpd_dryrun(conf, netns) == []


@pytest.mark.real_tools("ip", BGPD)
def test_bgpd_check_catches_a_semantic_error(tmp_path, netns):
    """Negative control: vtysh passes this (valid syntax), bgpd does not."""
    plan = compile_topology(parse(text(doc(2)))[0])["n1"]
    original = render_frr(plan).text
    # Without the group's own line, its members cannot join it.
    broken = original.replace(" neighbor MESH peer-group\n", "", 1)
    assert broken != original
    conf = tmp_path / "frr.conf"
    conf.write_text(broken)
    assert_frr_ok(conf)  # syntax is fine ...
    assert any("Config Failed" in p for p in bgpd_dryrun(conf, netns))  # ... meaning is not


def nft_check(path: Path, netns: str) -> subprocess.CompletedProcess:
    return sh("nft", "-c", "-f", path, ns=netns)


@needs_nft
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_nftables_ruleset_accepted_by_nft(example, rendered, netns):
    files = list((rendered / example.stem).glob("*/etc/wgbgp/nftables.nft"))
    # One ruleset per hub and per client that forwards (its MSS clamp).
    plans = compile_topology(parse(example.read_text())[0])
    assert len(files) == sum(p.role == "hub" or p.ip_forward for p in plans.values())
    for path in files:
        result = nft_check(path, netns)
        assert result.returncode == 0, result.stderr
    # Check mode changed nothing, even in the throwaway namespace.
    assert "wgbgp" not in sh("nft", "list", "tables", ns=netns).stdout


@needs_nft
def test_nft_check_catches_a_broken_ruleset(rendered, netns, tmp_path):
    (good,) = (rendered / "classic").glob("*/etc/wgbgp/nftables.nft")
    bad = tmp_path / "bad.nft"
    bad.write_text(good.read_text().replace("oifname", "oufname", 1))
    result = nft_check(bad, netns)
    assert result.returncode != 0 and "Error" in result.stderr


@pytest.mark.real_tools(root=False)
@pytest.mark.parametrize(("example", "machine"), CASES, ids=IDS)
def test_sysctl_keys_exist(example, machine, rendered):
    conf = rendered / example.stem / machine / "etc/sysctl.d/90-wgbgp.conf"
    for line in conf.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = (s.strip() for s in line.partition("="))
            assert Path("/proc/sys", *key.split(".")).exists(), key
            assert value.isdigit(), line
