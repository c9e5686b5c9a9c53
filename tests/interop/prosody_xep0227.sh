#!/usr/bin/env bash
# Moves accounts Perch → Prosody → Perch through XEP-0227 files with the
# real Prosody tools (prosody-migrator and mod_storage_xep0227, Prosody
# 0.12), then logs in to Perch with the passwords: a check of the format
# against another implementation, run by hand (needs root, prosody,
# python3 and a built perch):
#
#   tests/interop/prosody_xep0227.sh [path/to/perch]
#
# Prosody's migrator reads and writes xep0227 files in its data directory,
# which is compiled into the script; a patched copy points it elsewhere.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
perch=$(realpath "${1:-$here/target/debug/perch}")
login="$here/cross/xmpp_login.py"
[[ $(id -u) -eq 0 ]] || { echo "needs root (the migrator switches to the prosody user)" >&2; exit 1; }
command -v prosody-migrator >/dev/null || { echo "prosody-migrator is not installed" >&2; exit 1; }
work=$(mktemp -d)
server=""
trap '[[ -n $server ]] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
chmod 755 "$work"  # the migrator runs as the prosody user
cd "$work"

config() { # NAME → a Perch configuration with its own data directory
  cat >"$1.toml" <<EOT
data_dir = "$work/$1"
[[host]]
domain = "example.org"
[[listener]]
kind = "c2s"
address = "127.0.0.1"
port = 0
EOT
}
migrator() { # DATADIR STORE_FROM STORE_TO
  sed "s#^CFG_DATADIR=.*#CFG_DATADIR='$1';#" "$(command -v prosody-migrator)" >migrator
  lua5.4 migrator --config="$work/migrator.cfg.lua" "$2" "$3"
}

config a
config b
echo "juliet-pw" | "$perch" user add juliet@example.org --password-stdin -c a.toml
echo "romeo-pw" | "$perch" user add romeo@example.org --password-stdin -c a.toml
"$perch" export "$work/from-perch" -c a.toml

cat >migrator.cfg.lua <<EOT
xep0227 { type = "xep0227"; hosts = { ["example.org"] = { "accounts" } } }
internal { type = "internal"; path = "$work/prosody"; hosts = { ["example.org"] = { "accounts" } } }
EOT
mkdir -p "prosody/example%2eorg/accounts" to-perch
# An account Prosody keeps with a plaintext password (internal_plain).
printf 'return {\n\t["password"] = "mercutio-pw";\n};\n' >"prosody/example%2eorg/accounts/mercutio.dat"
chown -R prosody: prosody from-perch to-perch
echo "== Perch's files into Prosody's storage"
migrator "$work/from-perch" xep0227 internal
echo "== Prosody's storage into XEP-0227 files"
migrator "$work/to-perch" internal xep0227
echo "== those files into Perch"
"$perch" import "$work/to-perch" -c b.toml

"$perch" run -c b.toml 2>server.log &
server=$!
for _ in $(seq 1 50); do grep -q serving server.log && break; sleep 0.1; done
port=$(sed -n 's/.*listening for c2s .* on 127\.0\.0\.1:\([0-9]*\).*/\1/p' server.log)
# Prosody 0.12 keeps SCRAM-SHA-1 keys only: those accounts log in with it.
python3 "$login" 127.0.0.1 "$port" juliet juliet-pw --domain example.org --mechanism SCRAM-SHA-1
python3 "$login" 127.0.0.1 "$port" romeo romeo-pw --domain example.org --mechanism SCRAM-SHA-1
# A plaintext password becomes full credentials.
python3 "$login" 127.0.0.1 "$port" mercutio mercutio-pw --domain example.org
echo "Perch → Prosody → Perch: passwords survived"
