"""The shell run on a managed machine. POSIX sh, one round trip per step.

Each script is passed as `sh -c SCRIPT NAME ARGS...`: arguments never hold a secret (no key
ever appears in an argv, which /proc shows to every user), and file contents travel on
stdin, one base64 line per file. Errors that could quote a key are sanitised on the machine.
"""

from __future__ import annotations

PATH_LINE = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export LC_ALL=C\n"
SANITISE = (r"""sed -E -e 's/`[^`]*`/`(hidden)`/g' """
            r"""-e 's/^([[:space:]]*(PrivateKey|PresharedKey)[[:space:]]*=).*/\1 (hidden)/I' """
            r"""-e 's/(password[[:space:]]+)[^[:space:]]+/\1(hidden)/g'""")

# Stage each file (stdin: one base64 line per `KIND NAME` pair) and check it with its own
# tool, before anything on the machine is touched.
VALIDATE = PATH_LINE + r"""
d=$(mktemp -d) || exit 1
trap 'rm -rf "$d"' EXIT
rc=0
while [ $# -ge 2 ]; do
  kind=$1; name=$2; shift 2
  data=; IFS= read -r data || true
  mkdir -p "$d/$kind"; f="$d/$kind/$name"
  printf '%s' "$data" | base64 -d > "$f"
  case $kind in
  frr)
    if ! out=$(vtysh --dryrun --inputfile "$f" 2>&1); then
      echo "FRR rejects $name:"; printf '%s\n' "$out" | SANITISE | sed 's/^/  /'; rc=1
    fi ;;
  bird)
    if ! out=$(bird -p -c "$f" 2>&1); then
      echo "BIRD rejects $name:"; printf '%s\n' "$out" | sed 's/^/  /'; rc=1
    fi ;;
  nftables)
    if ! out=$(nft -c -f "$f" 2>&1); then
      echo "nft rejects $name:"; printf '%s\n' "$out" | sed 's/^/  /'; rc=1
    fi ;;
  wireguard)
    mv "$f" "$f.conf"
    if ! out=$(wg-quick strip "$f.conf" 2>&1 >/dev/null); then
      echo "wg-quick rejects $name.conf:"; printf '%s\n' "$out" | SANITISE | sed 's/^/  /'; rc=1
    fi ;;
  esac
done
exit $rc
""".replace("SANITISE", SANITISE)

# Install files atomically. Args: MANIFEST then `PATH MODE OWNER` triples; stdin: one base64
# line per file. The previous version is kept as PATH.wgbgp-prev; the version found before
# wgbgp first wrote PATH as PATH.wgbgp-orig (and the manifest says which), for `down`.
INSTALL = PATH_LINE + r"""
set -eu
manifest=$1; shift
mkdir -p "$(dirname "$manifest")"
date -u +%FT%TZ > "$(dirname "$manifest")/apply-pending"
while [ $# -ge 3 ]; do
  path=$1; mode=$2; owner=$3; shift 3
  data=; IFS= read -r data || true
  mkdir -p "$(dirname "$path")"
  if ! awk -F '\t' -v p="$path" '$1 == "file" && $2 == p { f = 1 } END { exit !f }' \
       "$manifest" 2>/dev/null; then
    if [ -e "$path" ]; then
      cp -p "$path" "$path.wgbgp-orig"; printf 'file\t%s\treplaced\n' "$path" >> "$manifest"
    else
      printf 'file\t%s\tcreated\n' "$path" >> "$manifest"
    fi
  fi
  [ ! -e "$path" ] || cp -p "$path" "$path.wgbgp-prev"
  tmp=$(mktemp "$path.wgbgp-XXXXXX")
  chmod "$mode" "$tmp"
  printf '%s' "$data" | base64 -d > "$tmp"
  if [ -e "$path" ]; then chown --reference="$path" "$tmp"
  elif [ -n "$owner" ]; then chown "$owner" "$tmp" 2>/dev/null || true; fi
  mv -f "$tmp" "$path"
  echo "wrote $path"
done
"""

# Undo INSTALL for the files of this run. Args: `PATH create|update` pairs.
RESTORE = PATH_LINE + r"""
rc=0
while [ $# -ge 2 ]; do
  path=$1; action=$2; shift 2
  if [ "$action" = create ]; then
    rm -f "$path" || rc=1
  elif [ -e "$path.wgbgp-prev" ]; then
    tmp=$(mktemp "$path.wgbgp-XXXXXX") && cp -p "$path.wgbgp-prev" "$tmp" \
      && mv -f "$tmp" "$path" || rc=1
  else
    echo "no previous version of $path to restore" >&2; rc=1
  fi
done
exit $rc
"""

# Apply a sysctl.d file; print the values it replaces (for rollback) and remember the
# values wgbgp found before it first set each key (for `down`). Args: FILE BEFORE KEYS...
SYSCTL = PATH_LINE + r"""
set -eu
file=$1; before=$2; shift 2
mkdir -p "$(dirname "$before")"
for k in "$@"; do
  if v=$(sysctl -n "$k" 2>/dev/null); then
    printf 'old\t%s\t%s\n' "$k" "$v"
    awk -F= -v k="$k" '$1 == k { f = 1 } END { exit !f }' "$before" 2>/dev/null \
      || printf '%s=%s\n' "$k" "$v" >> "$before"
  fi
done
sysctl -p "$file"
"""

# Update a running WireGuard interface in place. `wg syncconf` with a config lacking
# PrivateKey would clear the interface's key, so the key is read from its file here on the
# machine (shell builtins only: never an argv) and inserted after [Interface].
# Args: IFACE SRC KEYFILE TABLE [addr-add CIDR | addr-del CIDR | mtu N | up 1]...
WG_SYNC = PATH_LINE + r"""
set -eu
iface=$1; src=$2; keyfile=$3; table=$4; shift 4
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
cp "$src" "$d/$iface.conf"
wg-quick strip "$d/$iface.conf" > "$d/stripped"
sync_failed() { SANITISE "$d/err" >&2; exit 1; }
if [ -n "$keyfile" ] && ! grep -qiE '^[[:space:]]*PrivateKey[[:space:]]*=' "$d/stripped"; then
  if [ ! -s "$keyfile" ]; then echo "key file $keyfile is missing or empty" >&2; exit 1; fi
  k=; IFS= read -r k < "$keyfile" || true
  { while IFS= read -r line || [ -n "$line" ]; do
      printf '%s\n' "$line"
      case $line in *'[Interface]'*) printf 'PrivateKey = %s\n' "$k" ;; esac
    done < "$d/stripped"; } | wg syncconf "$iface" /dev/stdin 2> "$d/err" || sync_failed
  k=
else
  wg syncconf "$iface" "$d/stripped" 2> "$d/err" || sync_failed
fi
# `wg syncconf` keeps a peer's preshared key when the file no longer has one: clear it, or
# this end would go on using a key the other end (restarted from its file) no longer has.
wg show "$iface" preshared-keys | while read -r pub psk; do
  [ "$psk" != "(none)" ] || continue
  awk -v p="$pub" '
    function done() { if (key == p && psk) found = 1 }
    /^[[:space:]]*\[/ { done(); key = ""; psk = 0; next }
    tolower($0) ~ /^[[:space:]]*publickey[[:space:]]*=/ {
      v = $0; sub(/^[^=]*=/, "", v); gsub(/[[:space:]]/, "", v); key = v }
    tolower($0) ~ /^[[:space:]]*presharedkey[[:space:]]*=/ { psk = 1 }
    END { done(); exit !found }' "$d/stripped" \
    || { wg set "$iface" peer "$pub" preshared-key /dev/null; echo "psk cleared $pub"; }
done
while [ $# -ge 2 ]; do
  op=$1; arg=$2; shift 2
  case $op in
  addr-add) ip address add "$arg" dev "$iface" ;;
  addr-del) ip address del "$arg" dev "$iface" ;;
  mtu) ip link set dev "$iface" mtu "$arg" ;;
  up) ip link set dev "$iface" up; echo "link up" ;;
  esac
done
# Routes for AllowedIPs, as wg-quick adds them (only with Table = auto; /0 is not ours).
if [ "$table" = auto ]; then
  want=$(wg show "$iface" allowed-ips | cut -f2 | tr ' ' '\n' | grep / | sort -u || true)
  for r in $want; do
    case $r in */0) continue ;; esac
    p=-4; case $r in *:*) p=-6 ;; esac
    [ -n "$(ip $p route show dev "$iface" match "$r" 2>/dev/null)" ] \
      || { ip $p route add "$r" dev "$iface"; echo "route add $r"; }
  done
  for p in -4 -6; do
    ip $p route show dev "$iface" proto boot 2>/dev/null | while read -r dst _; do
      case $dst in
      default) continue ;;
      */*) ;;
      *) if [ $p = -4 ]; then dst=$dst/32; else dst=$dst/128; fi ;;
      esac
      printf '%s\n' "$want" | grep -qxF "$dst" \
        || { ip $p route del "$dst" dev "$iface"; echo "route del $dst"; }
    done
  done
fi
echo "synced $iface"
""".replace("SANITISE", SANITISE)

# Start or restart FRR and wait until bgpd has loaded the config (watchfrr starts the
# daemons, then runs `vtysh -b`). Records once in the manifest how FRR was found.
# Args: MANIFEST HOW(started|preexisting) VERB(start|restart) SYSTEMD(0|1) TENTHS ASN
FRR_SERVICE = PATH_LINE + r"""
m=$1; how=$2; verb=$3; systemd=$4; n=$5; asn=$6
mkdir -p "$(dirname "$m")"
awk -F '\t' '$1 == "frr" { f = 1 } END { exit !f }' "$m" 2>/dev/null \
  || printf 'frr\t%s\n' "$how" >> "$m"
if [ "$systemd" = 1 ]; then systemctl "$verb" frr || exit $?
else /usr/lib/frr/frrinit.sh "$verb" || exit $?; fi
while [ "$n" -gt 0 ]; do
  p=$(cat /var/run/frr/bgpd.pid 2>/dev/null || true)
  if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
    if [ -z "$asn" ]; then exit 0; fi
    if vtysh -c 'show running-config' 2>/dev/null | grep -q "^router bgp $asn\( \|$\)"; then
      exit 0
    fi
  fi
  sleep 0.1; n=$((n - 1))
done
echo "bgpd did not come up with the new configuration in time" >&2
exit 1
"""

# frr-reload.py on a staged copy (stdin), in a private confdir so that frr-reload never runs
# `write` over /etc/frr/frr.conf. Args: test|reload [MANIFEST]. Prints the --test delta; in
# reload mode applies it only when it is not empty, then asks peers to resend (soft inbound
# clear), and records once in MANIFEST that FRR ran before wgbgp reloaded it.
FRR_RELOAD = PATH_LINE + r"""
mode=$1; m=${2:-}
if [ -n "$m" ]; then
  mkdir -p "$(dirname "$m")"
  awk -F '\t' '$1 == "frr" { f = 1 } END { exit !f }' "$m" 2>/dev/null \
    || printf 'frr\tpreexisting\n' >> "$m"
fi
base=/var/run/frr; [ -d "$base" ] || base=/tmp
st=$(mktemp -d "$base/wgbgp-reload.XXXXXX") || exit 1
trap 'rm -rf "$st"' EXIT
cat > "$st/frr.conf"
[ ! -f /etc/frr/vtysh.conf ] || cp /etc/frr/vtysh.conf "$st/vtysh.conf"
R=/usr/lib/frr/frr-reload.py
if ! "$R" --test --stdout --confdir "$st" "$st/frr.conf" > "$st/test.out" 2> "$st/test.err"; then
  cat "$st/test.out"; grep -v ' INFO: ' "$st/test.err" >&2; exit 1
fi
cat "$st/test.out"
if [ "$mode" = reload ] && grep -q '^Lines To' "$st/test.out"; then
  echo "==reload"
  if ! "$R" --reload --stdout --confdir "$st" "$st/frr.conf" > "$st/reload.out" 2>&1; then
    grep -v ' INFO: ' "$st/reload.out" >&2; exit 1
  fi
  echo "==reloaded"
  # FRR 8.4 does not re-ask peers for routes when an inbound prefix-list changes: a
  # prefix refused before (e.g. announced before our filter allowed it) would stay
  # refused until the session resets. A soft inbound clear sends ROUTE-REFRESH instead;
  # no session is reset.
  vtysh -c 'clear bgp ipv4 unicast * soft in' >/dev/null 2>&1 || echo "==soft-in failed"
  # A session that is not Established when its config changes may sit out a backoff the
  # old config caused: the idle hold doubled by each failed attempt (up to 120 s), or a
  # connect timer that started before the change. A hard clear restarts its FSM now; it
  # resets nothing that was up, and Established sessions are never touched.
  vtysh -c 'show bgp vrf all neighbors json' 2>/dev/null | python3 -c '
import json, sys
try:
    data = json.load(sys.stdin)
except ValueError:
    sys.exit(0)
for vrf in data.values():
    for addr, n in (vrf.items() if isinstance(vrf, dict) else ()):
        if isinstance(n, dict) and n.get("bgpState", "Established") != "Established":
            print(addr)
' 2>/dev/null | while read -r a; do
    vtysh -c "clear bgp $a" >/dev/null 2>&1 && echo "==cleared $a"
  done
fi
"""

# Make a WireGuard key on the machine; print only whether it was made and the public key.
# Args: KEYFILE PUBFILE ROTATE(0|1)
KEYGEN = PATH_LINE + r"""
set -eu
f=$1; pub=$2; rotate=$3
# rotate=2: fetch only (never make one): the key is made elsewhere, e.g. by cloud-init.
if [ "$rotate" = 2 ] && [ ! -s "$f" ]; then echo "no key at $f yet" >&2; exit 3; fi
umask 077
mkdir -p "$(dirname "$f")"
created=0
if [ ! -s "$f" ] || [ "$rotate" = 1 ]; then
  t=$(mktemp "$f.XXXXXX")
  wg genkey > "$t"
  mv -f "$t" "$f"
  created=1
fi
p=$(wg pubkey < "$f")
umask 022
printf '%s\n' "$p" > "$pub"
printf 'created=%s\n%s\n' "$created" "$p"
"""

# `down`: put back what wgbgp replaced, remove what it created. Args: `PATH created|replaced`.
UNINSTALL = PATH_LINE + r"""
rc=0
while [ $# -ge 2 ]; do
  path=$1; how=$2; shift 2
  if [ "$how" = replaced ] && [ -e "$path.wgbgp-orig" ]; then
    mv -f "$path.wgbgp-orig" "$path" && echo "restored $path" || rc=1
  else
    rm -f "$path" && echo "removed $path" || rc=1
  fi
  rm -f "$path.wgbgp-prev"
done
exit $rc
"""

# BIRD. Its control socket is /run/bird/bird.ctl (Debian's build), its config
# /etc/bird/bird.conf. Without systemd nothing starts it: wgbgp does, as Debian's unit would
# (as user bird when that user exists), and waits until it answers on its socket.
# Args: CONF TIMEOUT_TENTHS
BIRD_START = PATH_LINE + r"""
conf=$1; n=$2
mkdir -p /run/bird
user=
if id bird >/dev/null 2>&1; then chown bird:bird /run/bird; user="-u bird -g bird"; fi
bird -c "$conf" -P /run/bird/bird.pid $user || exit 1
while [ "$n" -gt 0 ]; do
  if birdc -s /run/bird/bird.ctl show status >/dev/null 2>&1; then exit 0; fi
  sleep 0.1; n=$((n - 1))
done
echo "bird did not answer on /run/bird/bird.ctl in time" >&2
exit 1
"""

# Reload BIRD's config: `birdc configure` keeps every protocol whose config did not change
# (sessions stay up; a changed filter only re-evaluates routes). birdc exits 0 even when
# BIRD refuses the file, so its answer decides. Args: CONF
BIRD_CONFIGURE = PATH_LINE + r"""
conf=$1
out=$(birdc -s /run/bird/bird.ctl configure "\"$conf\"" 2>&1)
printf '%s\n' "$out"
printf '%s\n' "$out" | grep -Eq '^(Reconfigured|Reconfiguration in progress)' && exit 0
exit 1
"""

# Stop the BIRD that wgbgp started (graceful: BGP peers get a Cease notification).
BIRD_STOP = PATH_LINE + r"""
birdc -s /run/bird/bird.ctl down >/dev/null 2>&1 || true
n=50
while [ "$n" -gt 0 ] && birdc -s /run/bird/bird.ctl show status >/dev/null 2>&1; do
  sleep 0.1; n=$((n - 1))
done
if birdc -s /run/bird/bird.ctl show status >/dev/null 2>&1; then
  echo "bird did not stop" >&2; exit 1
fi
rm -f /run/bird/bird.pid
"""

# Record once how BIRD was found (for `down`). Args: MANIFEST started|preexisting
NOTE_BIRD = PATH_LINE + r"""
m=$1; how=$2
mkdir -p "$(dirname "$m")"
awk -F '\t' '$1 == "bird" { f = 1 } END { exit !f }' "$m" 2>/dev/null \
  || printf 'bird\t%s\n' "$how" >> "$m"
"""

# A node's BGP daemon changed (FRR <-> BIRD), or it no longer speaks BGP: put away the
# files wgbgp installed for the old one, as `down` would (restore what it replaced, remove
# what it created), and drop them and the daemon's line from the manifest. Each file and
# the manifest are kept as PATH.wgbgp-retired until the apply succeeds (UNRETIRE puts
# them back). Args: MANIFEST DAEMON PATH...
RETIRE = PATH_LINE + r"""
set -eu
m=$1; d=$2; shift 2
cp -p "$m" "$m.wgbgp-retired"
for p in "$@"; do
  how=$(awk -F '\t' -v p="$p" '$1 == "file" && $2 == p { print $3; exit }' "$m")
  [ ! -e "$p" ] || cp -p "$p" "$p.wgbgp-retired"
  if [ "$how" = replaced ] && [ -e "$p.wgbgp-orig" ]; then
    mv -f "$p.wgbgp-orig" "$p"; echo "restored $p"
  else
    rm -f "$p"; echo "removed $p"
  fi
  rm -f "$p.wgbgp-prev"
done
t=$(mktemp "$m.XXXXXX")
awk -F '\t' -v d="$d" -v ps="$*" '
  BEGIN { n = split(ps, a, " "); for (i = 1; i <= n; i++) drop[a[i]] = 1 }
  !($1 == d && NF == 2) && !($1 == "file" && ($2 in drop))' "$m" > "$t"
mv -f "$t" "$m"
"""

# Undo RETIRE. Args: MANIFEST PATH...
UNRETIRE = PATH_LINE + r"""
set -eu
m=$1; shift
for p in "$@"; do
  how=$(awk -F '\t' -v p="$p" '$1 == "file" && $2 == p { print $3; exit }' "$m.wgbgp-retired")
  if [ "$how" = replaced ] && [ -e "$p" ] && [ ! -e "$p.wgbgp-orig" ]; then
    mv -f "$p" "$p.wgbgp-orig"
  fi
  [ ! -e "$p.wgbgp-retired" ] || mv -f "$p.wgbgp-retired" "$p"
done
mv -f "$m.wgbgp-retired" "$m"
"""
