#!/usr/bin/env bash
# Install everything wgbgp and its tests need on Debian 12, as root: the real daemons the
# lab runs (wireguard-go, FRR, nftables, sshd) and a virtualenv with wgbgp in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

# graphviz draws `wgbgp graph`; chromium + chromium-driver test the live page in a real
# browser; prometheus brings promtool, which checks and tests the shipped alert rules.
packages=(frr frr-pythontools bird2 wireguard-tools wireguard-go nftables iproute2 iputils-ping procps
          git openssh-server openssh-client graphviz chromium chromium-driver prometheus
          cloud-init debootstrap catatonit conntrack python3 python3-venv python3-pip)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}"
  # cloud-init is here only for its schema check (tests): if this machine did not have it,
  # nothing here relies on it, so it must never run at boot and reconfigure the machine
  # (cloud-init skips every stage while this file exists). Installing starts no service.
  if [[ " ${missing[*]} " == *" cloud-init "* ]]; then
    mkdir -p /etc/cloud && touch /etc/cloud/cloud-init.disabled
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # No recommends: wireguard-tools would otherwise pull a kernel image and initramfs.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/wgbgp ] || [ pyproject.toml -nt .venv/.installed ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test]'
  touch .venv/.installed
fi
