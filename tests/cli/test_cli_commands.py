"""The CLI: init, check, render, keygen, pubkey. Exit codes, files, modes, secrets."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from topogen import doc, keypair, pub, text
from wgbgp.cli.main import app
from wgbgp.model.keys import decode_key, public_key

# A copy: commands record an address lock beside the topology they read (TOPOLOGY.lock),
# which must not land in the repository's examples/.
EXAMPLES = Path(shutil.copytree(Path(__file__).resolve().parents[2] / "examples",
                                Path(tempfile.mkdtemp(prefix="wgbgp-examples-")) / "examples"))
CLASSIC = EXAMPLES / "classic.yaml"


def run(*args: str | Path, input: str | bytes | None = None):
    result = CliRunner().invoke(app, [str(a) for a in args], input=input)
    # No user input may produce a traceback, whatever the exit code.
    assert "Traceback" not in result.output + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception)
    return result


def write_key(path: Path, text: str) -> None:
    """A private key file as keygen writes it: readable by its owner only."""
    path.write_text(text)
    path.chmod(0o600)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def topo(tmp_path: Path):
    """Write a topology document to a file and return its path."""
    def write(d: dict | str, name: str = "topo.yaml") -> Path:
        path = tmp_path / name
        path.write_text(d if isinstance(d, str) else text(d))
        return path
    return write


# --- init ------------------------------------------------------------------------------

def test_init_writes_a_starter_that_check_accepts_with_key_warnings(tmp_path):
    path = tmp_path / "topology.yaml"
    result = run("init", path)
    assert result.exit_code == 0, result.output
    body = path.read_text()
    assert body.startswith("# wgbgp topology")
    assert "public_key:" in body and "PrivateKey" not in body
    check = run("check", path)
    assert check.exit_code == 0, check.output
    for machine in ("vps", "laptop", "friend"):
        assert f"{machine} has no public_key yet" in check.stderr
    assert "wgbgp keygen" in check.stderr
    assert run("check", "--strict", path).exit_code == 1


def test_init_default_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run("init").exit_code == 0
    assert (tmp_path / "topology.yaml").exists()


def test_init_refuses_to_overwrite_without_force(tmp_path):
    path = tmp_path / "topology.yaml"
    path.write_text("mine\n")
    result = run("init", path)
    assert result.exit_code == 2
    assert "already exists" in result.stderr and "--force" in result.stderr
    assert path.read_text() == "mine\n"
    assert run("init", "--force", path).exit_code == 0
    assert path.read_text().startswith("# wgbgp topology")


def test_init_into_missing_directory_fails_cleanly(tmp_path):
    result = run("init", tmp_path / "no" / "such" / "dir.yaml")
    assert result.exit_code == 2 and "cannot write" in result.stderr


def test_starter_cannot_be_rendered_until_keys_are_pasted(tmp_path):
    path = tmp_path / "topology.yaml"
    run("init", path)
    result = run("render", path, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "public key" in result.stderr
    assert not (tmp_path / "out").exists()


# --- check -----------------------------------------------------------------------------

def test_check_clean(topo):
    result = run("check", topo(doc(3)))
    assert result.exit_code == 0, result.output
    assert "1 hub, 3 nodes, 3 tunnels, 3 BGP sessions, 3 prefixes" in result.stdout
    assert result.stderr == ""
    assert run("check", "--strict", topo(doc(3))).exit_code == 0


def test_check_warnings_exit_0_or_1_with_strict(topo):
    d = doc(2)
    del d["nodes"]["n2"]["announce"]
    path = topo(d)
    plain = run("check", path)
    assert plain.exit_code == 0
    assert "n2 announces no prefixes" in plain.stderr and "1 warning\n" in plain.stdout
    strict = run("check", "--strict", path)
    assert strict.exit_code == 1


def test_check_errors_exit_2_with_every_error(topo):
    d = doc(2)
    d["nodes"]["n1"]["asn"] = 0
    d["nodes"]["n2"]["address"] = "10.9.9.9"
    path = topo(d)
    result = run("check", path)
    assert result.exit_code == 2
    assert f"{path}:10: error: nodes.n1.asn: ASN 0 is reserved" in result.stderr
    assert "nodes.n2.address: tunnel address 10.9.9.9 is outside" in result.stderr
    assert "2 errors in" in result.stderr
    assert result.stdout == ""


def test_check_json_ok(topo):
    result = run("check", "--json", topo(doc(2)))
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data == {"ok": True, "issues": [], "summary": {
        "hubs": 1, "nodes": 2, "tunnels": 2, "bgp_peerings": 1, "bgp_sessions": 1,
        "bgp_sessions_ipv4": 1, "bgp_sessions_ipv6": 0, "prefixes": 2}}


def test_check_counts_peerings_and_sessions_per_family(topo):
    """Dual stack: each peering has an IPv4 and an IPv6 session; two hubs: one per plane."""
    result = run("check", topo(doc(3, overlay6="auto")))
    assert "3 BGP peerings (6 sessions: 3 IPv4, 3 IPv6)" in result.stdout, result.stdout
    d = doc(3)
    d["hubs"]["h2"] = {"endpoint": "203.0.113.20:51820", "overlay": "10.1.0.0/24",
                       "public_key": pub("h2")}
    d["nodes"]["n1"]["announce"].append("2001:db8:1::/48")  # IPv6 overlay implied
    result = run("check", "--json", topo(d))
    summary = json.loads(result.stdout)["summary"]
    assert (summary["bgp_peerings"], summary["bgp_sessions_ipv4"],
            summary["bgp_sessions_ipv6"]) == (3, 6, 6), summary
    assert run("check", topo(doc(2))).stdout.count("1 BGP session,") == 1


def test_check_json_warnings(topo):
    result = run("check", "--json", "--strict", topo(doc(2, keys=False)))
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    # --strict makes warnings a failure: "ok" says so, as the exit code does.
    assert data["ok"] is False
    lenient = run("check", "--json", topo(doc(2, keys=False)))
    assert lenient.exit_code == 0 and json.loads(lenient.stdout)["ok"] is True
    assert {i["field"] for i in data["issues"]} == {"hubs.vps", "nodes.n1", "nodes.n2"}
    assert all(i["level"] == "warning" and i["line"] and i["fix"] for i in data["issues"])


def test_check_json_errors(topo):
    d = doc(2)
    d["nodes"]["n1"]["asn"] = 23456
    result = run("check", "--json", topo(d))
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert data["ok"] is False
    (issue,) = data["issues"]
    assert issue["field"] == "nodes.n1.asn" and issue["line"] == 10
    assert issue["file"].endswith("topo.yaml") and issue["fix"]


@pytest.mark.parametrize("what", ["missing", "directory", "binary", "empty", "yaml"])
def test_check_json_is_json_even_for_unreadable_input(tmp_path, what):
    path = tmp_path / "t.yaml"
    if what == "directory":
        path.mkdir()
    elif what == "binary":
        path.write_bytes(b"\xff\xfe\x00garbage")
    elif what == "empty":
        path.write_text("")
    elif what == "yaml":
        path.write_text("network: [\n")
    result = run("check", "--json", path)
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert data["ok"] is False and data["issues"][0]["level"] == "error"


BAD_INPUTS = {
    "yaml": "network: {name: x\n",
    "tab": "network:\n\tname: x\n",
    "not-mapping": "- a\n",
    "empty": "",
    "control-char": "network: \x07\n",
    "unknown-key": text({**doc(2), "nodez": {}}),
    "bad-types": text({"network": [], "hubs": "x", "nodes": 5}),
    "none-values": "network:\nhubs:\nnodes:\n",
    "bad-everything": text({
        "network": {"name": "X", "overlay": "10.0.0.0/33", "mtu": "big"},
        "hubs": {"vps": {"endpoint": "nowhere", "public_key": "x"}},
        "nodes": {"a": {"asn": -1, "announce": ["0.0.0.0/0", "300.1.1.1/32"]}},
        "peerings": [["a", "ghost"], "a"],
    }),
    "recursive-alias": "network: &x {name: n, overlay: 10.0.0.0/24, loop: *x}\n",
    "deep-nesting": "network: " + "[" * 3000 + "]" * 3000 + "\n",
    "pasted-private-key": text({**doc(2), "hubs": {"vps": {
        "endpoint": "203.0.113.10:51820", "public_key": keypair("n1")[0]}}}),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
@pytest.mark.parametrize("command", [["check"], ["check", "--json"], ["render"],
                                     ["render", "--out", "OUT"]])
def test_bad_input_exit_2_no_traceback_no_files(tmp_path, name, command):
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_INPUTS[name])
    out = tmp_path / "out"
    args = [out if a == "OUT" else a for a in command]
    result = run(*args, path)
    assert result.exit_code == 2, result.output
    assert "error" in result.stderr + result.stdout
    assert not out.exists()
    if "--json" in command:
        json.loads(result.stdout)


def test_check_missing_file():
    result = run("check", "/nonexistent/t.yaml")
    assert result.exit_code == 2 and "No such file" in result.stderr


def test_usage_errors_exit_2():
    assert run("check").exit_code == 2
    assert run("frobnicate").exit_code == 2
    assert run("render", "--bogus", "x").exit_code == 2


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_check_cleanly(example):
    result = run("check", "--strict", example)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


# --- render ----------------------------------------------------------------------------

CLASSIC_TREE = [
    "friend/etc/frr/frr.conf", "friend/etc/sysctl.d/90-wgbgp.conf",
    "friend/etc/wireguard/wg-vps.conf", "friend/var/lib/wgbgp/intent.json",
    "laptop/etc/frr/frr.conf", "laptop/etc/sysctl.d/90-wgbgp.conf",
    "laptop/etc/wireguard/wg-vps.conf", "laptop/var/lib/wgbgp/intent.json",
    "vps/etc/sysctl.d/90-wgbgp.conf", "vps/etc/wgbgp/nftables.nft",
    "vps/etc/wireguard/wg-vps.conf", "vps/var/lib/wgbgp/intent.json",
]


def test_render_out_writes_a_mirrored_tree_with_modes(tmp_path):
    out = tmp_path / "out"
    result = run("render", CLASSIC, "--out", out)
    assert result.exit_code == 0, result.output
    assert tree(out) == CLASSIC_TREE
    assert "wrote 12 files for 3 machines" in result.stderr
    for f in CLASSIC_TREE:
        expected = {"wireguard": 0o600, "frr": 0o640}.get(f.split("/")[2], 0o644)
        assert mode(out / f) == expected, f
    assert not list(out.rglob("*.tmp"))


def test_render_out_matches_stdout(tmp_path):
    out = tmp_path / "out"
    run("render", CLASSIC, "--out", out)
    printed = run("render", CLASSIC).stdout
    for f in CLASSIC_TREE:
        machine, path = f.split("/", 1)
        assert f"==> {machine}:/{path} <==\n" + (out / f).read_text() in printed


def test_render_one_node(tmp_path):
    out = tmp_path / "out"
    assert run("render", CLASSIC, "-n", "laptop", "--out", out).exit_code == 0
    assert tree(out) == [f for f in CLASSIC_TREE if f.startswith("laptop/")]


def test_render_unknown_node_writes_nothing(tmp_path):
    out = tmp_path / "out"
    result = run("render", CLASSIC, "--node", "laptop", "--node", "ghost", "--out", out)
    assert result.exit_code == 2 and "unknown machine ghost" in result.stderr
    assert not out.exists()


def test_render_with_missing_public_key_writes_nothing(tmp_path, topo):
    d = doc(3)
    del d["nodes"]["n3"]["public_key"]
    out = tmp_path / "out"
    result = run("render", topo(d), "--out", out)
    assert result.exit_code == 2
    assert "needs n3's public key" in result.stderr
    assert not out.exists()
    # A machine whose configs do not need the missing key can be rendered.
    assert run("render", topo(d), "-n", "n1", "--out", out).exit_code == 0


def test_render_inlines_private_keys_only_into_0600_files(tmp_path, topo):
    keys = tmp_path / "keys"
    keys.mkdir()
    privates = {}
    for name in ("vps", "n1", "n2"):
        privates[name], _ = keypair(name)
        write_key(keys / f"{name}.key", privates[name] + "\n")
    path = topo(doc(2))
    out = tmp_path / "out"
    result = run("render", path, "--keys", keys, "--out", out)
    assert result.exit_code == 0, result.output
    for name, private in privates.items():
        for f in (out / name).rglob("*"):
            if f.is_file() and private in f.read_text():
                assert f.name == "wg-vps.conf" and mode(f) == 0o600
        conf = (out / name / "etc/wireguard/wg-vps.conf").read_text()
        assert f"PrivateKey = {private}\n" in conf and "PostUp" not in conf
    assert all(p not in result.output + result.stderr for p in privates.values())


def test_render_refuses_to_print_private_keys(tmp_path, topo):
    keys = tmp_path / "keys"
    keys.mkdir()
    private, _ = keypair("n1")
    write_key(keys / "n1.key", private + "\n")
    result = run("render", topo(doc(2)), "--keys", keys)
    assert result.exit_code == 2
    assert "refusing to print private keys" in result.stderr
    assert private not in result.stdout + result.stderr
    # Machines without a key file render with PostUp, and can be printed.
    assert run("render", topo(doc(2)), "--keys", keys, "-n", "n2").exit_code == 0


def test_render_bad_key_file_writes_nothing(tmp_path, topo):
    keys = tmp_path / "keys"
    keys.mkdir()
    write_key(keys / "n2.key", "not a key\n")
    out = tmp_path / "out"
    result = run("render", topo(doc(2)), "--keys", keys, "--out", out)
    assert result.exit_code == 2 and "n2.key is not a WireGuard private key" in result.stderr
    assert "not a key" not in result.stderr  # the content is never echoed
    assert not out.exists()


def test_render_unwritable_out_fails_cleanly(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run("render", CLASSIC, "--out", blocker)
    assert result.exit_code == 2 and "cannot write" in result.stderr


def test_render_prints_warnings_but_succeeds(topo):
    d = doc(2)
    del d["nodes"]["n2"]["announce"]
    result = run("render", topo(d))
    assert result.exit_code == 0
    assert "n2 announces no prefixes" in result.stderr


# --- keygen / pubkey -------------------------------------------------------------------

def test_keygen_writes_0600_key_and_prints_only_the_public_key(tmp_path):
    result = run("keygen", "laptop", "--dir", tmp_path / "keys")
    assert result.exit_code == 0, result.output
    key_file = tmp_path / "keys" / "laptop.key"
    private = key_file.read_text().strip()
    assert mode(key_file) == 0o600
    assert len(decode_key(private)) == 32
    assert result.stdout == public_key(private) + "\n"
    assert private not in result.stdout + result.stderr
    assert (tmp_path / "keys" / "laptop.pub").read_text() == result.stdout
    assert "0600" in result.stderr


def test_keygen_refuses_to_replace_without_force(tmp_path):
    run("keygen", "laptop", "--dir", tmp_path)
    first = (tmp_path / "laptop.key").read_text()
    again = run("keygen", "laptop", "--dir", tmp_path)
    assert again.exit_code == 2 and "already exists" in again.stderr
    assert (tmp_path / "laptop.key").read_text() == first
    assert first.strip() not in again.stdout + again.stderr
    forced = run("keygen", "laptop", "--dir", tmp_path, "--force")
    assert forced.exit_code == 0
    second = (tmp_path / "laptop.key").read_text()
    assert second != first and mode(tmp_path / "laptop.key") == 0o600


@pytest.mark.parametrize("name", ["../escape", "a/b", "Laptop", "", "-x"])
def test_keygen_rejects_names_that_are_not_machine_names(tmp_path, name):
    result = run("keygen", name, "--dir", tmp_path / "keys")
    assert result.exit_code == 2
    assert not (tmp_path / "escape.key").exists() and not (tmp_path / "keys").exists()


def test_keygen_unwritable_dir_fails_cleanly(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run("keygen", "laptop", "--dir", blocker)
    assert result.exit_code == 2 and "cannot write" in result.stderr


def test_keygen_dir_is_private(tmp_path):
    run("keygen", "laptop", "--dir", tmp_path / "keys")
    assert mode(tmp_path / "keys") & 0o077 == 0


def test_pubkey_reads_stdin():
    private, public = keypair("x")
    result = run("pubkey", input=private + "\n")
    assert result.exit_code == 0 and result.stdout == public + "\n"


@pytest.mark.parametrize("junk", ["", "hello", "secret-but-wrong-length=", b"\xff\xfe"])
def test_pubkey_rejects_junk_without_echoing_it(junk):
    result = run("pubkey", input=junk)
    assert result.exit_code == 2 and result.stdout == ""
    if isinstance(junk, str) and junk:
        assert junk not in result.stderr


def test_keygen_then_topology_then_render(tmp_path, topo):
    """The flow a user follows: keys on each machine, public keys into the topology."""
    keys = tmp_path / "keys"
    d = doc(2, keys=False)
    for name, section in (("vps", "hubs"), ("n1", "nodes"), ("n2", "nodes")):
        d[section][name]["public_key"] = run("keygen", name, "--dir", keys).stdout.strip()
    path = topo(d)
    assert run("check", "--strict", path).exit_code == 0
    out = tmp_path / "out"
    assert run("render", path, "--keys", keys, "--out", out).exit_code == 0
    hub_conf = (out / "vps/etc/wireguard/wg-vps.conf").read_text()
    assert f"PublicKey = {d['nodes']['n1']['public_key']}" in hub_conf
    assert pub("n1") not in hub_conf
    assert sorted(os.listdir(keys)) == ["n1.key", "n1.pub", "n2.key", "n2.pub", "vps.key",
                                        "vps.pub"]


def test_render_refuses_a_key_file_that_does_not_match_the_topology(tmp_path, topo):
    keys = tmp_path / "keys"
    keys.mkdir()
    write_key(keys / "n1.key", keypair("someone-else")[0] + "\n")
    out = tmp_path / "out"
    result = run("render", topo(doc(2)), "--keys", keys, "--out", out)
    assert result.exit_code == 2
    assert "does not belong to n1" in result.stderr and pub("someone-else") in result.stderr
    assert keypair("someone-else")[0] not in result.stdout + result.stderr
    assert not out.exists()
