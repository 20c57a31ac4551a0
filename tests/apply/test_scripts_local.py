"""The machine-side shell scripts, run for real with /bin/sh on files in a temp dir."""

from __future__ import annotations

import base64
import os
import stat

from wgbgp.apply import probe
from wgbgp.apply.changes import MASK, sha256_text
from wgbgp.apply.down import parse_manifest
from wgbgp.apply.scripts import INSTALL, RESTORE, UNINSTALL
from wgbgp.transport import LocalExecutor

KEY = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
X = LocalExecutor("local")


def b64(*texts: str) -> str:
    return "".join(base64.b64encode(t.encode()).decode() + "\n" for t in texts)


def install(manifest, *triples_and_texts):
    args, texts = [], []
    for path, mode, text in triples_and_texts:
        args += [str(path), f"{mode:o}", ""]
        texts.append(text)
    return X.run(["sh", "-c", INSTALL, "t", str(manifest), *args], input=b64(*texts))


def test_probe_hashes_real_content_and_masks_keys(tmp_path):
    f = tmp_path / "wg0.conf"
    text = f"[Interface]\nPrivateKey = {KEY}\nAddress = 10.0.0.1/24\n"
    f.write_text(text)
    f.chmod(0o600)
    s = probe(X, files=[str(f), str(tmp_path / "missing")], keys=[str(f)])
    cur = s.files[str(f)]
    assert cur.sha256 == sha256_text(text)
    assert cur.mode == 0o600
    assert KEY not in cur.text and f"PrivateKey = {MASK}" in cur.text
    assert not s.files[str(tmp_path / "missing")].exists
    assert s.keys[str(f)]
    assert s.has("sh" if "sh" in s.tools else "base64")


def test_install_keeps_prev_and_orig_and_manifest(tmp_path):
    manifest = tmp_path / "state" / "manifest"
    a, b = tmp_path / "etc" / "a.conf", tmp_path / "b.conf"
    b.write_text("original\n")
    install(manifest, (a, 0o600, "one\n"), (b, 0o644, "two\n"))
    assert a.read_text() == "one\n" and stat.S_IMODE(a.stat().st_mode) == 0o600
    assert (tmp_path / "b.conf.wgbgp-orig").read_text() == "original\n"
    assert (tmp_path / "b.conf.wgbgp-prev").read_text() == "original\n"
    assert (tmp_path / "state" / "apply-pending").exists()
    files, _ = parse_manifest(manifest.read_text())
    assert files == [(str(a), "created"), (str(b), "replaced")]
    install(manifest, (b, 0o644, "three\n"))
    assert (tmp_path / "b.conf.wgbgp-prev").read_text() == "two\n"
    assert (tmp_path / "b.conf.wgbgp-orig").read_text() == "original\n"  # never overwritten
    assert parse_manifest(manifest.read_text())[0] == files                # no duplicates
    assert not [p for p in os.listdir(tmp_path) if "wgbgp-" in p and not p.endswith(
        ("-prev", "-orig"))]  # no temp files left behind


def test_restore_puts_back_prev_and_removes_created(tmp_path):
    manifest = tmp_path / "manifest"
    a, b = tmp_path / "a", tmp_path / "b"
    b.write_text("before\n")
    install(manifest, (a, 0o644, "new a\n"), (b, 0o644, "new b\n"))
    X.run(["sh", "-c", RESTORE, "t", str(a), "create", str(b), "update"])
    assert not a.exists()
    assert b.read_text() == "before\n"


def test_uninstall_restores_originals_and_removes_the_rest(tmp_path):
    manifest = tmp_path / "manifest"
    a, b = tmp_path / "a", tmp_path / "b"
    b.write_text("debian default\n")
    install(manifest, (a, 0o644, "ours\n"), (b, 0o644, "ours\n"))
    install(manifest, (a, 0o644, "ours 2\n"), (b, 0o644, "ours 2\n"))
    files, _ = parse_manifest(manifest.read_text())
    X.run(["sh", "-c", UNINSTALL, "t", *[x for p, how in files for x in (p, how)]])
    assert not a.exists() and b.read_text() == "debian default\n"
    assert sorted(os.listdir(tmp_path)) == ["apply-pending", "b", "manifest"]


def test_install_preserves_owner_of_replaced_file(tmp_path):
    manifest = tmp_path / "manifest"
    b = tmp_path / "b"
    b.write_text("x\n")
    st = b.stat()
    install(manifest, (b, 0o640, "y\n"))
    assert (b.stat().st_uid, b.stat().st_gid) == (st.st_uid, st.st_gid)
    assert stat.S_IMODE(b.stat().st_mode) == 0o640


def test_probe_masks_frr_passwords_on_the_machine(tmp_path):
    f = tmp_path / "frr.conf"
    f.write_text("router bgp 1\n neighbor 10.0.0.2 password s3cr3t\n")
    s = probe(X, files=[str(f)])
    assert "s3cr3t" not in s.files[str(f)].text
    assert " neighbor 10.0.0.2 password (hidden)" in s.files[str(f)].text


def test_retire_puts_a_daemons_files_away_and_unretire_brings_them_back(tmp_path):
    """A node switched from FRR to BIRD: frr.conf (created by wgbgp) goes, daemons (which
    it replaced) gets its original back; the manifest forgets both and the FRR line, and
    keeps everything else. UNRETIRE undoes it exactly."""
    from wgbgp.apply.changes import manifest_entries
    from wgbgp.apply.scripts import RETIRE, UNRETIRE
    manifest = tmp_path / "state" / "manifest"
    conf, daemons, wg = tmp_path / "frr.conf", tmp_path / "daemons", tmp_path / "wg0.conf"
    daemons.write_text("bgpd=no\n")
    install(manifest, (conf, 0o640, "router bgp 1\n"), (daemons, 0o640, "bgpd=yes\n"),
            (wg, 0o600, "[Interface]\n"))
    with manifest.open("a") as fh:
        fh.write("frr\tstarted\n")
    install(manifest, (conf, 0o640, "router bgp 2\n"))  # leaves frr.conf.wgbgp-prev
    before = manifest.read_text()
    res = X.run(["sh", "-c", RETIRE, "t", str(manifest), "frr", str(conf), str(daemons)])
    assert res.stdout.split("\n")[:2] == [f"removed {conf}", f"restored {daemons}"]
    assert not conf.exists() and daemons.read_text() == "bgpd=no\n"
    assert not (tmp_path / "frr.conf.wgbgp-prev").exists()
    assert not (tmp_path / "daemons.wgbgp-orig").exists()
    files, found = manifest_entries(manifest.read_text())
    assert files == {str(wg): "created"} and found == {}
    # Undo: every file, the original aside again, and the manifest as it was.
    X.run(["sh", "-c", UNRETIRE, "t", str(manifest), str(conf), str(daemons)])
    assert conf.read_text() == "router bgp 2\n" and daemons.read_text() == "bgpd=yes\n"
    assert (tmp_path / "daemons.wgbgp-orig").read_text() == "bgpd=no\n"
    assert manifest.read_text() == before
    assert not list(tmp_path.rglob("*.wgbgp-retired"))


def test_probe_reads_sysctls_and_link_state_for_real():
    """Real /bin/sh (dash) and /proc/sys: multi-digit and multi-value sysctls come back
    whole, a missing key is left out, and `lo` reads as present and UP."""
    with open("/proc/sys/net/ipv4/ip_default_ttl") as fh:
        ttl = fh.read().strip()
    with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
        ports = " ".join(fh.read().split())
    s = probe(X, interfaces=["lo"], sysctls=["net.ipv4.ip_default_ttl",
                                             "net.ipv4.ip_local_port_range", "net.no.such"])
    assert s.sysctls == {"net.ipv4.ip_default_ttl": ttl, "net.ipv4.ip_local_port_range": ports}
    lo = s.interfaces["lo"]
    assert lo.exists and lo.up is True and lo.mtu == 65536
