#!/usr/bin/env bash
# The main job on the built-in example: build the lab (hub + two laptops behind CG-NAT,
# real wireguard-go and FRR), prove it works, show its status, tear it down.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
wgbgp=.venv/bin/wgbgp
trap '$wgbgp lab down' EXIT
$wgbgp lab up
$wgbgp lab test
$wgbgp lab status
