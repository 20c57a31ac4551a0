"""`wgbgp render TOPOLOGY --cloud-init HUB`: user-data that makes a fresh VPS the hub."""

from __future__ import annotations

from pathlib import Path

from ..compile import compile_topology
from ..model import Topology
from ..render.cloudinit import CloudInitError, render_cloud_init
from .common import err, fail, out, record_deployed

AWS_LIMIT = 16 * 1024

NO_SECRET_FIX = ("make the VPS with user-data from a topology without it, then run "
                 "`wgbgp apply TOPOLOGY --node {hub}` over SSH: apply reads the secret where "
                 "wgbgp runs and writes it to a 0600 file on the hub")


def print_user_data(topo: Topology, path: Path, hub: str) -> None:
    """Print the #cloud-config user-data for `hub`; exit 2 when it cannot be made."""
    from .topology import render_all  # the one rendering path (keys checked, secrets read)
    if hub not in topo.hubs:
        known = ", ".join(topo.hubs)
        fail(f"{hub} is not a hub of {path}" + (" (it is a node)" if hub in topo.nodes else ""),
             f"cloud-init user-data is for a hub: {known}")
    net = topo.network
    named = [what for what, on in (("preshared_key", net.preshared_key is not None),
                                   ("bgp_password", net.bgp_password is not None
                                    and compile_topology(topo)[hub].bgp is not None)) if on]
    if named:
        fail(f"the hub's configs would carry a secret (network.{named[0]}), and user-data "
             "is readable by every process on the VM through the metadata service",
             NO_SECRET_FIX.format(hub=hub))
    files = render_all(topo, [hub], None, path.parent)[hub]
    try:
        text = render_cloud_init(compile_topology(topo)[hub], files)
    except CloudInitError as exc:
        fail(str(exc), NO_SECRET_FIX.format(hub=hub))
    record_deployed(path, topo, [hub])
    out.file.write(text)
    size = len(text.encode())
    if size > AWS_LIMIT:
        err.print(f"note: this user-data is {size} bytes; AWS EC2 takes at most {AWS_LIMIT} "
                  "(16 KB, before base64); other providers take more", markup=False)
