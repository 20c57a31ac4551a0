"""cloud-init user-data that makes a fresh VPS a hub at first boot. Pure.

The user-data carries the hub's rendered configs (the public parts only), the packages
to install, and first-boot commands: make the private key on the VM, set the kernel
settings, load the firewall table, enable the units so they survive a reboot, print the
public key to the console. It never carries a secret: any process on the VM can read
user-data from the provider's metadata service, for as long as the VM lives.
"""

from __future__ import annotations

import json
import posixpath

from ..compile.plan import Plan
from .files import NFTABLES_CONF, SYSCTL_CONF, RenderedFile, _env

NFT_UNIT = "wgbgp-nftables.service"
NFT_UNIT_PATH = f"/etc/systemd/system/{NFT_UNIT}"
# FRR daemons a route server needs on (/etc/frr/daemons ships them off, zebra aside).
FRR_DAEMONS = ("bgpd", "bfdd")
OWNERS = {"frr": "frr:frr", "bird": "bird:bird"}


class CloudInitError(ValueError):
    """This hub cannot be set up from user-data (says why, and what to do instead)."""


def block(text: str, indent: int) -> str:
    """`text` as a YAML value: a literal block when it reads back byte for byte (ends in
    exactly one newline, no carriage returns, no leading blank or indented first line),
    else a JSON string (a valid YAML double-quoted scalar)."""
    lines = text.split("\n")
    literal = (text.endswith("\n") and not text.endswith("\n\n") and "\r" not in text
               and lines[0].strip() != "" and not lines[0][0].isspace()
               and all(c == "\t" or c == "\n" or c >= " " for c in text))
    if not literal:
        return json.dumps(text)
    pad = " " * indent
    return "|\n" + "\n".join(pad + line if line else "" for line in lines[:-1])


def packages_for_hub(plan: Plan) -> list[str]:
    """What the hub runs: WireGuard's tools, nftables, and its BGP daemon if it has one
    (a route server, in hub mode). The kernel's own WireGuard is used (Debian 12+,
    Ubuntu 22.04+ kernels have it)."""
    packages = ["wireguard-tools", "nftables"]
    if plan.bgp is not None:
        packages += ["frr", "frr-pythontools"] if plan.bgp.daemon == "frr" else ["bird2"]
    return packages


def render_cloud_init(plan: Plan, files: list[RenderedFile]) -> str:
    """The #cloud-config user-data for hub `plan.machine`, from its rendered `files`
    (rendered without its private key). CloudInitError if a file holds a secret."""
    if plan.role != "hub":
        raise CloudInitError(f"{plan.machine} is a node; cloud-init user-data is made for "
                             "a hub (the public VPS)")
    secret = [f.path for f in files if f.holds_secret or "PrivateKey" in f.text]
    if secret:
        raise CloudInitError(
            f"{', '.join(secret)} would hold a secret (a preshared key or BGP password), "
            "and user-data is readable by every process on the VM through the metadata "
            "service")
    units = [f"wg-quick@{t.interface}" for t in plan.tunnels]
    daemons = FRR_DAEMONS if plan.bgp is not None and plan.bgp.daemon == "frr" else ()
    if plan.bgp is not None:
        units.append("frr" if plan.bgp.daemon == "frr" else "bird")
    nft = next((f.path for f in files if f.kind == "nftables"), NFTABLES_CONF)
    env = _env()
    env.filters["block"] = block
    env.filters["append"] = lambda value, suffix: f"{value}{suffix}"
    nft_unit = env.get_template("wgbgp-nftables.service.j2").render(
        plan=plan, nft_path=nft, units=[u for u in units if u.startswith("wg-quick@")])
    key_dir = posixpath.dirname(plan.key_file)
    return env.get_template("cloud-init.yaml.j2").render(
        plan=plan, files=files, packages=packages_for_hub(plan), owners=OWNERS,
        nft_unit=nft_unit, nft_unit_path=NFT_UNIT_PATH, nft_unit_name=NFT_UNIT, units=units,
        key_dir=key_dir, pub_file=plan.key_file[:-len(".key")] + ".pub",
        sysctl_path=SYSCTL_CONF, bgp_daemons=daemons,
        plural="s" if len(plan.tunnels) > 1 else "")
