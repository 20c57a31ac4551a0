#!/usr/bin/env bash
# The main job on the built-in example: build the lab (hub + two laptops behind CG-NAT,
# real wireguard-go and FRR), prove it works, show its status, tear it down.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
wgbgp=.venv/bin/wgbgp
lab=${WGBGP_DEMO_LAB:-demo}
trap '$wgbgp lab down --name "$lab"' EXIT
$wgbgp lab up --name "$lab"
$wgbgp lab status --name "$lab"
$wgbgp lab doctor --name "$lab"
$wgbgp lab test --name "$lab"   # last: its verdict ends the demo ("all assertions hold")
