#!/usr/bin/env bash
# Installs a Perch .deb, runs the installed server without systemd
# (`perch run --config /etc/perch/perch.toml`), logs in to it, takes a
# backup, stops it, purges the package, and checks that the system is
# exactly as before. Needs root and python3; uses ports 5222/5223.
#
#   packaging/test-deb.sh target/cross/perch_0.1.0-1_amd64.deb
set -euo pipefail
deb=$(realpath "${1:?usage: $0 PACKAGE.deb}")
here=$(cd "$(dirname "$0")/.." && pwd)
[[ $(id -u) -eq 0 ]] || { echo "needs root" >&2; exit 1; }
if dpkg -s perch >/dev/null 2>&1; then
  echo "perch is installed already; remove it first" >&2
  exit 1
fi

listing() {
  find /etc /usr /var/lib /opt -xdev \
    -not -path '/var/lib/dpkg/*-old' -not -path '/var/lib/apt/*' \
    -not -path '/var/lib/systemd/deb-systemd-helper-*' 2>/dev/null | sort
}
work=$(mktemp -d)
server=""
cleanup() {
  [[ -n $server ]] && kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

listing >"$work/before"
echo "== install"
dpkg -i "$deb"
for f in /usr/bin/perch /usr/lib/systemd/system/perch.service /etc/perch/perch.toml; do
  [[ -f $f ]] || { echo "missing $f" >&2; exit 1; }
done
dpkg-query -W -f '${Conffiles}\n' perch | grep -q /etc/perch/perch.toml
[[ ! -e /var/lib/perch ]] || { echo "installing created /var/lib/perch" >&2; exit 1; }
perch --version
perch check

echo "== run without systemd"
cd "$work"
perch run --config /etc/perch/perch.toml >"$work/log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  grep -q "serving" "$work/log" && break
  sleep 0.1
done
grep -q "serving" "$work/log" || { cat "$work/log"; exit 1; }
# No --config: the installed file is found, and with it the running server.
echo "test-password" | perch user add tester@localhost --password-stdin
python3 "$here/cross/xmpp_login.py" 127.0.0.1 5222 tester test-password
perch backup "$work/backup.redb"
perch user list
kill -TERM "$server"
rc=0
wait "$server" || rc=$?
server=""
[[ $rc -eq 0 ]] || { cat "$work/log"; echo "exit status $rc" >&2; exit 1; }
cat "$work/log"

echo "== purge"
cd /
dpkg --purge perch
listing >"$work/after"
if ! diff -u "$work/before" "$work/after"; then
  echo "the system is not as it was before installing" >&2
  exit 1
fi
echo "package test passed: installed, ran, purged, nothing left behind"
