#!/usr/bin/env bash
# Perch against Prosody and ejabberd (Debian's packages), in one sitting,
# with perch-load. Also runs perch-load against its own sink, which shows
# how fast the tool itself can go.
#
#   benches/compare.sh [--runs N] [--servers "perch prosody ejabberd sink perch-gnu"]
#                      [--parts "chat chat-sm login churn idle idle-tls muc mam mam-chat
#                                ws idle-ws chat-ws upload s2s"]
#                      [--seconds S] [--accounts N] [--quick] [--out DIR]
#                      [--mam-sizes N,N] [--mam-prosody-sizes N,N] [--mam-query-seconds S]
#                      [--mam-chat-rate "N N"]
#                      [--pep-accounts N] [--pep-contacts N] [--pep-rate R,R]
#                      [--pep-seconds S] [--pep-roster ready|subscribe]
#                      [--pep-setup-rate N] [--pep-ejabberd-setup-rate N]
#                      [--upload-mib N] [--no-build]
#
# Every part runs on a freshly started server (accounts are created once per
# server and kept), so no scenario runs after another one's churn. Runs are
# interleaved (run 1 of every server, then run 2, …) so that a noisy minute
# on the machine does not hit one server only. Results: DIR/*.jsonl (one
# JSON record per phase), DIR/*.txt (per-part tables, server logs' last
# lines), DIR/env.txt (machine, versions) and DIR/table.md (medians).
#
# "chat-sm" is chat with stream management (XEP-0198) on every client
# (perch-load chat --sm: enable with resume, answer the server's <r/>, an
# <r/> of its own every 5 stanzas). Prosody gets mod_smacks and ejabberd
# mod_stream_mgmt, both at their defaults, for that part only (the other
# parts run without, as before); Perch and the sink always offer it.
#
# Archiving (XEP-0313): Prosody's configuration has no MAM, so every part
# but "mam" and "mam-chat" runs Perch with `[archive] default = "never"`.
# "mam" (not run unless named in --parts) is `perch-load mam` on a fresh
# data directory per run and per archive set-up, with 101 accounts of its
# own (the owner and 100 contacts): one account's and one persistent
# room's archive filled to each of --mam-sizes (10000,100000,1000000;
# Prosody: --mam-prosody-sizes, default the same), queries timed at each
# size, the database's bytes per archived message, and writes with 50
# senders, one sender and the room's 5 with the server's fsyncs counted
# (perf stat on the syscall tracepoints). Perch runs once per run; Prosody
# twice, with mod_mam and mod_muc_mam storing in its internal files
# (label prosody-internal) and in SQLite (prosody-sql; needs Debian's
# lua-dbi-sqlite3, installed if missing). Each kind of query gets at most
# --mam-query-seconds (20) per size: Prosody's internal store reads the
# whole archive for every query. ejabberd is not measured: its mod_mam
# needs an SQL database for archives of this size. "mam-chat" is
# `perch-load chat --rate R` for each R of --mam-chat-rate ("1000 20000"
# msg/s in all; the first below every server's ceiling, the second below
# Perch's) with archiving off (labels perch-no-archive@R,
# prosody-no-archive@R) and on (perch-archive@R; prosody-archive-internal@R,
# prosody-archive-sql@R): the CPU per 1 000 messages at equal load. Both
# chat partners are local accounts, so with archiving on each message is
# archived twice, in the sender's archive and in the recipient's.
#
# "pep" (not run unless named in --parts) is `perch-load pep` on a fresh
# data directory per server and run: --pep-accounts (1000) accounts with
# --pep-contacts (100) contacts each (subscription both, a ring), all
# online with caps asking for tune+notify, publishing tunes at each of
# --pep-rate (10,100) publications/s for --pep-seconds (10) each:
# server CPU per 1 000 notifications, notifications/s, latency, RSS per
# account before and with 10 nodes of one item each; then chat on the same
# server (50 pairs, closed loop, then at each phase's notification rate) as
# the yardstick, and the ratio. The rosters are provisioned before the
# server starts (--pep-roster ready, the default): `perch-load pep-rosters`
# writes a XEP-0227 file that Perch imports (`perch import`) and ejabberd
# too (`ejabberdctl import_piefxis`), and Prosody's internal roster files
# (accounts created with `perch-load register`); --pep-roster subscribe
# makes the subscriptions over XMPP instead (about a minute for Perch at
# 1000 x 100; Prosody 0.12 manages about 36 roster writes a second, which
# would take hours). Prosody gets "pep" (mod_pep at its defaults), ejabberd
# mod_caps and mod_pubsub with the "pep" plugin, for this part only. The
# nodes are created at --pep-setup-rate (500) publications/s, ejabberd's at
# --pep-ejabberd-setup-rate (50): with 1 000 accounts ejabberd 23.01 refuses
# most node-creating publications that come faster (item-not-found, even
# after 5 attempts each).
#
# "ws" (not run unless named in --parts) is "idle-ws" and "chat-ws": the
# idle and chat parts with the clients on XMPP over WebSocket (RFC 7395,
# perch-load --transport ws) at the server's HTTP listener instead of c2s
# over TCP, each on a freshly started server. Perch gets an http listener,
# Prosody mod_websocket (http_ports, consider_websocket_secure), ejabberd
# an ejabberd_http listener with ejabberd_http_ws, for these parts only.
# The TCP figures they are set against come from the "idle" and "chat"
# parts: run them in the same sitting (--parts "idle chat ws") and
# table.md ends with "WebSocket ÷ TCP" rows (KiB per idle connection, goal
# 1.25; server CPU per 1 000 chat messages, goal 1.3). The sink speaks no
# WebSocket and sits these parts out.
#
# "upload" (not run unless named in --parts) is `perch-load upload` on a
# fresh data directory per server and run with one account: a slot of
# --upload-mib (100) MiB from the server's HTTP File Upload service
# (XEP-0363; Perch's own, Prosody's mod_http_file_share on
# upload.localhost, ejabberd's mod_http_upload), a PUT of a generated body
# and a GET of it back over HTTP/1.1, checked by length and checksum: MiB/s
# each way, the server's CPU and its peak RSS growth over each transfer.
# Each server's file size limit (and daily quota) is raised to fit.
#
# "s2s" (not run unless named in --parts) is federation: for each server,
# two instances of it on loopback, a.test and b.test, that federate with
# each other (STARTTLS required, self-signed certificates, so dialback,
# XEP-0220: Perch at its defaults, Prosody "dialback" with s2s_secure_auth
# = false, ejabberd mod_s2s_dialback with s2s_use_starttls: required;
# templates benches/servers/s2s-*). They find each other through DNS: a
# dnsmasq of the script's own on a free loopback address (127.0.0.150
# upward, port 53), authoritative for .test with nothing upstream, holds
# the _xmpp-server._tcp SRV records and loopback A records of every
# domain. Perch asks it through `[s2s] dns_server`; Prosody and ejabberd
# read /etc/resolv.conf, so each runs in a mount namespace of its own
# (unshare -m) where a resolv.conf naming that dnsmasq is bind-mounted
# over the machine's (which is never touched). Perch's per-domain s2s
# read limit (rate_bytes_per_sec, 256 KiB/s by default: about a thousand
# chat messages a second) is raised to its maximum, as the others have
# none at their defaults. Accounts load1..load100 on both. Then, each on
# a freshly started pair: `perch-load chat --pairs 50 --window 10` with
# the second client of every pair on b.test (--peer-port), so every
# message crosses the s2s link, once measuring instance A's CPU (label
# NAME-s2s-a) and once B's (NAME-s2s-b); the same chat with both
# clients on A, alone (NAME-s2s-local), the yardstick; and the RSS per
# idle link: B gets 50 more hosts (b1.test … b50.test), one client on A
# brings up the a.test–b.test link (a ping to b.test), both servers' RSS
# is read once it holds still (3 s within 64 KiB, at most 30 s: ejabberd's
# shrinks for some 10 s after start-up), the client pings each of the 50
# hosts (XEP-0199: every answer has crossed the link both ways), and once
# all answered the RSS is read again the same way: (after - before) / 50
# for each side (label NAME-s2s-links, scenario s2s_idle_links, with the
# TCP connections each way). A link here is one domain pair, with
# whatever connections the server uses for it (all three: one each way).
# Each start waits at most 30 s, each chat run SECS + 60 s; every process
# of the part is stopped on exit. With --quick the chats last 2 s (the
# link count stays 50). table.md gets a "Federation" section:
# msgs/s, server CPU per 1 000 messages on A and on B, the local chat's,
# the ratios and KiB per idle link, then the chat rows of these labels
# (the main table leaves them out). Needs dnsmasq (dnsmasq-base),
# util-linux's unshare, python3 and jq (installed if missing); the sink
# sits it out.
#
# "perch" is the static musl build, the one that ships for the Raspberry Pi
# (same C library and allocator), built for x86-64; "perch-gnu" (not run
# unless named in --servers) is the glibc build, for comparison. Both use
# the same data directory, so their accounts are created once.
#
# Binaries go to $CARGO_TARGET_DIR (default target/); --no-build uses those
# already there.
#
# Needs root (apt-get, and dropping to the prosody/ejabberd users), loopback
# only, about 6 GB of RAM free for ejabberd's 10 000 idle clients, and
# `ulimit -n` of at least 10 100 for the largest idle step.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
HERE="$ROOT/benches"
RUNS=3
SERVERS="perch prosody ejabberd sink"
PARTS="chat chat-sm login churn idle idle-tls muc"
PART=""  # the part being run: chat-sm turns on the servers' XEP-0198 modules
SECS=10
ACCOUNTS=10000
IDLE_STEPS="100,1000,10000"
MUC_SIZES="10,100,500,1000"
CHURN=5000
LOGINS=500
OUT=""
MAM_SIZES="10000,100000,1000000"
MAM_PROSODY_SIZES=""
MAM_CHAT_RATE="1000 20000"
MAM_QUERY_SECONDS=20
BUILD=yes
MAM_VARIANT=""  # the archive set-up of a mam/mam-chat run: off, on, internal, sql
MAM_DIR=""      # a mam run's own data directory
PEP_ACCOUNTS=1000
PEP_CONTACTS=100
PEP_RATE="10,100"
PEP_SECONDS=10
PEP_ROSTER=ready
PEP_SETUP_RATE=500
PEP_EJABBERD_SETUP_RATE=50
PEP_DIR=""      # a pep run's own data directory
UPLOAD_MIB=100
UPLOAD_DIR=""   # an upload run's own data directory
# Every port below moves by this much (two sittings side by side).
PORT_SHIFT=${PERCH_BENCH_PORT_SHIFT:-0}

die() { echo "compare.sh: $*" >&2; exit 1; }

case "$(uname -m)" in
  x86_64|aarch64) MUSL_TARGET="$(uname -m)-unknown-linux-musl" ;;
  *) die "builds Perch for x86_64 or aarch64 musl; this machine is $(uname -m)" ;;
esac

while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --servers) SERVERS=$2; shift 2 ;;
    --parts) PARTS=$2; shift 2 ;;
    --seconds) SECS=$2; shift 2 ;;
    --accounts) ACCOUNTS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --mam-sizes) MAM_SIZES=$2; shift 2 ;;
    --mam-prosody-sizes) MAM_PROSODY_SIZES=$2; shift 2 ;;
    --mam-chat-rate) MAM_CHAT_RATE=$2; shift 2 ;;
    --mam-query-seconds) MAM_QUERY_SECONDS=$2; shift 2 ;;
    --pep-accounts) PEP_ACCOUNTS=$2; shift 2 ;;
    --pep-contacts) PEP_CONTACTS=$2; shift 2 ;;
    --pep-rate) PEP_RATE=$2; shift 2 ;;
    --pep-seconds) PEP_SECONDS=$2; shift 2 ;;
    --pep-roster) PEP_ROSTER=$2; shift 2 ;;
    --pep-setup-rate) PEP_SETUP_RATE=$2; shift 2 ;;
    --pep-ejabberd-setup-rate) PEP_EJABBERD_SETUP_RATE=$2; shift 2 ;;
    --upload-mib) UPLOAD_MIB=$2; shift 2 ;;
    --no-build) BUILD=no; shift ;;
    --quick) RUNS=1; SECS=2; ACCOUNTS=200; IDLE_STEPS="10,100"; MUC_SIZES="10,50"; CHURN=150; LOGINS=100
             MAM_SIZES="1000,3000"; MAM_CHAT_RATE=1000; MAM_QUERY_SECONDS=5
             PEP_ACCOUNTS=100; PEP_CONTACTS=10; PEP_RATE="10,50"; PEP_SECONDS=2; UPLOAD_MIB=10; shift ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/!p}' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

[ "$(uname -s)" = Linux ] || die "needs Linux (/proc)"
# "ws" is the two WebSocket parts.
PARTS=$(echo " $PARTS " | sed 's/ ws / idle-ws chat-ws /g; s/^ *//; s/ *$//')
case $UPLOAD_MIB in ''|*[!0-9]*) die "--upload-mib: a whole number of MiB" ;; esac
MAM_PROSODY_SIZES="${MAM_PROSODY_SIZES:-$MAM_SIZES}"
case $PEP_ROSTER in ready|subscribe) ;; *) die "--pep-roster: ready or subscribe" ;; esac
BASE="${PERCH_BENCH_DIR:-}"
if [ -z "$BASE" ]; then
  # tmpfs keeps every server's storage off the disk: fsync costs the same (nothing) for all.
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then BASE=/dev/shm/perch-bench; else BASE="$(dirname "$(mktemp -u)")/perch-bench"; fi
fi
OUT="${OUT:-$ROOT/target/bench/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT" "$BASE"

# Ports: each server its own, all on 127.0.0.1, and all below Linux's
# ephemeral range (32768 and up), where a client connection of the previous
# part could still hold the port and make the next server's bind fail.
port_of() { case $1 in perch|perch-gnu) echo $((25222 + PORT_SHIFT)) ;; prosody) echo $((26222 + PORT_SHIFT)) ;; ejabberd) echo $((27222 + PORT_SHIFT)) ;; sink) echo $((28222 + PORT_SHIFT)) ;; esac; }
tls_port_of() { case $1 in perch|perch-gnu) echo $((25223 + PORT_SHIFT)) ;; prosody) echo $((26223 + PORT_SHIFT)) ;; ejabberd) echo $((27223 + PORT_SHIFT)) ;; *) echo "" ;; esac; }
# The HTTP listener (WebSocket, file upload), for the parts that use it.
http_port_of() { case $1 in perch|perch-gnu) echo $((25280 + PORT_SHIFT)) ;; prosody) echo $((26280 + PORT_SHIFT)) ;; ejabberd) echo $((27280 + PORT_SHIFT)) ;; *) echo "" ;; esac; }
EJABBERD_DIST_PORT=$((27299 + PORT_SHIFT))

needs_debian_servers() { case " $SERVERS " in *" prosody "*|*" ejabberd "*) return 0 ;; *) return 1 ;; esac; }

install_servers() {
  needs_debian_servers || return 0
  # lua-dbi-sqlite3: Prosody's SQL storage on SQLite, for the mam parts.
  local pkgs="prosody lua-event ejabberd lua-dbi-sqlite3" p missing=""
  for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  [ -z "$missing" ] && return 0
  [ "$(id -u)" = 0 ] || die "missing and not root: apt-get install$missing"
  echo "== installing$missing"
  apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  # The packages may start system-wide instances on 5222; they are not ours to measure.
  for s in prosody ejabberd; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$s" 2>/dev/null; then systemctl stop "$s" || true; fi
  done
}

# The s2s part's tools: dnsmasq (its DNS), unshare and mount (the peers'
# private resolv.conf), python3 (the links client), jq (its table).
install_s2s_tools() {
  case " $PARTS " in *" s2s "*) ;; *) return 0 ;; esac
  local missing=""
  command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || missing="$missing dnsmasq-base"
  command -v jq >/dev/null || missing="$missing jq"
  command -v python3 >/dev/null || missing="$missing python3"
  command -v unshare >/dev/null || missing="$missing util-linux"
  [ -n "$missing" ] || return 0
  [ "$(id -u)" = 0 ] || die "s2s: missing and not root: apt-get install$missing"
  echo "== installing$missing"
  apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
}

build() {
  local target="${CARGO_TARGET_DIR:-$ROOT/target}"
  PERCH="$target/$MUSL_TARGET/release/perch"
  PERCH_GNU="$target/release/perch"
  LOAD="$target/release/perch-load"
  if [ "$BUILD" = no ]; then
    [ -x "$PERCH" ] && [ -x "$PERCH_GNU" ] && [ -x "$LOAD" ] || die "--no-build: no binaries in $target"
    return 0
  fi
  echo "== cargo build --release --workspace, and perch for $MUSL_TARGET"
  (cd "$ROOT" && cargo build --release --workspace --quiet)
  rustup target list --installed | grep -qx "$MUSL_TARGET" || rustup target add "$MUSL_TARGET"
  # ring's C and assembly build with the host gcc (.cargo/config.toml sets CC for the target).
  (cd "$ROOT" && cargo build --release -p perch --target "$MUSL_TARGET" --quiet)
}

perch_binary() { # name -> the Perch build that server name runs
  case $1 in perch-gnu) echo "$PERCH_GNU" ;; *) echo "$PERCH" ;; esac
}

data_dir_of() { # name -> its directory under $BASE (both Perch builds share one)
  if [ -n "$MAM_DIR" ]; then echo "$MAM_DIR"; return 0; fi
  if [ -n "$PEP_DIR" ]; then echo "$PEP_DIR"; return 0; fi
  if [ -n "$UPLOAD_DIR" ]; then echo "$UPLOAD_DIR"; return 0; fi
  case $1 in perch-gnu) echo "$BASE/perch" ;; *) echo "$BASE/$1" ;; esac
}

sm_modules() { # template -> what its @SM_MODULES@ becomes for $PART
  [ "$PART" = chat-sm ] || return 0
  case $1 in
    *prosody*) echo '"smacks";' ;;
    *ejabberd.yml*) echo 'mod_stream_mgmt: {}' ;;
  esac
}

pep_modules() { # placeholder -> what it becomes for $PART (pep: PEP on)
  [ "$PART" = pep ] || return 0
  case $1 in
    PEP_MODULES) echo '"pep";' ;;
    CAPS_MODULE) echo 'mod_caps: {}' ;;
    PUBSUB_MODULE) echo 'mod_pubsub: {access_createnode: pubsub_createnode, plugins: [flat, pep]}' ;;
  esac
}

# What the templates' HTTP placeholders become for $PART: nothing but for
# the WebSocket parts (idle-ws, chat-ws) and "upload", which get each
# server's HTTP listener on $HTTP_PORT, and for "upload" its file upload
# service with room for --upload-mib. Several lines are written as \n,
# which sed turns into line breaks.
http_of() { # placeholder -> text
  local bytes=$((UPLOAD_MIB * 1024 * 1024 + 1024 * 1024)) up=no
  case $PART in idle-ws|chat-ws) ;; upload) up=yes ;; *) return 0 ;; esac
  case $1 in
    PERCH_HTTP)
      echo -n '[[listener]]\nkind = "http"\naddress = "127.0.0.1"\nport = '"$HTTP_PORT"
      echo -n '\n\n[http]\nexternal_url = "http://127.0.0.1:'"$HTTP_PORT"'"'
      if [ $up = yes ]; then
        echo -n '\n\n[upload]\nmax_file_bytes = '"$bytes"'\ndaily_quota_bytes = '"$((bytes * 10))"
        echo -n '\nmax_total_bytes = '"$((bytes * 10 + 10737418240))"
      fi ;;
    HTTP_PORTS) echo "$HTTP_PORT" ;;
    HTTP_MODULES) [ $up = no ] && echo '"websocket";' ;;
    UPLOAD_COMPONENT)
      [ $up = yes ] && echo -n 'Component "upload.localhost" "http_file_share"\n\thttp_file_share_size_limit = '"$bytes"'\n\thttp_file_share_daily_quota = '"$((bytes * 10))" ;;
    HTTP_LISTENER)
      # An item of ejabberd's listen list.
      echo -n '-\n    port: '"$HTTP_PORT"'\n    ip: "127.0.0.1"\n    module: ejabberd_http\n    request_handlers:'
      if [ $up = yes ]; then echo -n '\n      /upload: mod_http_upload'; else echo -n '\n      /xmpp-websocket: ejabberd_http_ws'; fi ;;
    UPLOAD_MODULE)
      [ $up = yes ] && echo -n 'mod_http_upload:\n    access: all\n    put_url: "http://upload.localhost:'"$HTTP_PORT"'/upload"\n    docroot: "'"$(data_dir_of ejabberd)"'/upload"\n    max_size: '"$bytes" ;;
  esac
  return 0
}

# What the templates' archive placeholders become for $MAM_VARIANT: empty
# (no archive: every part but mam and mam-chat), "on" (Perch archives),
# "internal" or "sql" (Prosody's mod_mam stores there).
archive_of() { # placeholder -> text
  local v=$MAM_VARIANT
  case $1 in
    ARCHIVE)
      case $v in
        on) echo 'archive = { default = "always", expires = "never", room_expires = "never", max_mib_per_account = 1000000, max_mib_per_room = 1000000 }' ;;
        *) echo 'archive = { default = "never" }' ;;
      esac ;;
    MAM_MODULES) case $v in internal|sql) echo '"mam";' ;; esac ;;
    MUC_MODULES) case $v in internal|sql) echo '"muc_mam";' ;; esac ;;
    STORAGE)
      case $v in
        sql) echo 'storage = { archive = "sql"; muc_log = "sql" }; sql = { driver = "SQLite3"; database = "prosody.sqlite" }' ;;
        *) echo 'storage = "internal"' ;;
      esac ;;
    MAM_OPTIONS)
      case $v in
        internal|sql) echo 'archive_expires_after = "never"; muc_log_expires_after = "never"; storage_archive_item_limit = 100000000; default_archive_policy = true; muc_log_by_default = true' ;;
      esac ;;
  esac
}

fill() { # template run_dir -> stdout
  sed -e "s|@RUN@|$2|g" -e "s|@PORT@|$PORT|g" -e "s|@TLS_PORT@|$TLS_PORT|g" \
      -e "s|@DIST_PORT@|$EJABBERD_DIST_PORT|g" -e "s|@SM_MODULES@|$(sm_modules "$1")|g" \
      -e "s|@ARCHIVE@|$(archive_of ARCHIVE)|g" -e "s|@MAM_MODULES@|$(archive_of MAM_MODULES)|g" \
      -e "s|@MUC_MODULES@|$(archive_of MUC_MODULES)|g" -e "s|@STORAGE@|$(archive_of STORAGE)|g" \
      -e "s|@MAM_OPTIONS@|$(archive_of MAM_OPTIONS)|g" -e "s|@PEP_MODULES@|$(pep_modules PEP_MODULES)|g" \
      -e "s|@CAPS_MODULE@|$(pep_modules CAPS_MODULE)|g" -e "s|@PUBSUB_MODULE@|$(pep_modules PUBSUB_MODULE)|g" \
      -e "s|@PERCH_HTTP@|$(http_of PERCH_HTTP)|g" -e "s|@HTTP_PORTS@|$(http_of HTTP_PORTS)|g" \
      -e "s|@HTTP_MODULES@|$(http_of HTTP_MODULES)|g" -e "s|@UPLOAD_COMPONENT@|$(http_of UPLOAD_COMPONENT)|g" \
      -e "s|@HTTP_LISTENER@|$(http_of HTTP_LISTENER)|g" -e "s|@UPLOAD_MODULE@|$(http_of UPLOAD_MODULE)|g" "$1"
}

certificate() { # dir
  [ -e "$1/cert.pem" ] && return 0
  openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 30 \
    -keyout "$1/key.pem" -out "$1/cert.pem" >/dev/null 2>&1 || die "openssl failed"
  cat "$1/cert.pem" "$1/key.pem" > "$1/combined.pem"
}

descendant_named() { # root_pid name -> pid
  local todo=("$1") p c
  while [ ${#todo[@]} -gt 0 ]; do
    p=${todo[0]}; todo=("${todo[@]:1}")
    [ "$(cat /proc/"$p"/comm 2>/dev/null)" = "$2" ] && { echo "$p"; return 0; }
    for c in $(pgrep -P "$p" || true); do todo+=("$c"); done
  done
  return 1
}

# start_server NAME -> sets SERVER_PID, STARTUP_S, PROBE_ARGS
start_server() {
  local name=$1 d t0 launcher i
  d=$(data_dir_of "$name")
  PORT=$(port_of "$name"); TLS_PORT=$(tls_port_of "$name"); HTTP_PORT=$(http_port_of "$name"); PROBE_ARGS=()
  mkdir -p "$d"
  t0=$(date +%s.%N)
  case $name in
    perch|perch-gnu)
      fill "$HERE/servers/perch.toml.in" "$d" > "$d/perch.toml"
      "$(perch_binary "$name")" run --config "$d/perch.toml" > "$d/server.log" 2>&1 &
      SERVER_PID=$! ;;
    prosody)
      certificate "$d"; mkdir -p "$d/data"
      fill "$HERE/servers/prosody.cfg.lua.in" "$d" > "$d/prosody.cfg.lua"
      chown -R prosody:prosody "$d"
      # Prosody refuses to run as root; setpriv and the lua shebang exec, so $! is Prosody.
      setpriv --reuid=prosody --regid=prosody --init-groups \
        prosody -F --config "$d/prosody.cfg.lua" > "$d/server.log" 2>&1 &
      SERVER_PID=$! ;;
    ejabberd)
      certificate "$d"; mkdir -p "$d/etc" "$d/log" "$d/db"
      fill "$HERE/servers/ejabberd.yml.in" "$d" > "$d/etc/ejabberd.yml"
      fill "$HERE/servers/ejabberdctl.cfg.in" "$d" > "$d/etc/ejabberdctl.cfg"
      cp "$HERE/servers/ejabberd.inetrc" "$d/etc/inetrc"
      chown -R ejabberd:ejabberd "$d"
      # setpriv rather than su: su's PAM limits would cut the descriptor limit to 1024.
      env HOME=/var/lib/ejabberd setpriv --reuid=ejabberd --regid=ejabberd --init-groups \
        ejabberdctl --config-dir "$d/etc" --logs "$d/log" --spool "$d/db" foreground \
        > "$d/server.log" 2>&1 &
      launcher=$!
      SERVER_PID="" ;;
    sink)
      "$LOAD" sink --port "$PORT" --max-seconds 7200 > "$d/server.log" 2>&1 &
      SERVER_PID=$! ;;
  esac
  "$LOAD" wait --port "$PORT" --timeout 120 >/dev/null || die "$name did not answer on $PORT"
  STARTUP_S=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
  if [ "$name" = ejabberd ]; then
    # ejabberdctl first runs a short-lived erl of its own; the server is the
    # beam.smp still there once the port answers.
    SERVER_PID=$(descendant_named "$launcher" beam.smp) || die "ejabberd: no beam.smp under $launcher"
    PROBE_ARGS=(--include-children)
  fi
}

stop_server() {
  local pid=$SERVER_PID i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
}

provision() { # name: create the benchmark accounts once
  local name=$1 d
  d=$(data_dir_of "$name")
  [ "$name" = sink ] && return 0
  [ -e "$d/.accounts-$ACCOUNTS" ] && return 0
  rm -rf "$d"; mkdir -p "$d"
  echo "== $name: creating $ACCOUNTS accounts"
  start_server "$name"
  case $name in
    perch|perch-gnu)
      # Through the running server's admin socket, four clients at a time.
      seq 1 "$ACCOUNTS" | xargs -P 4 -I{} sh -c \
        "echo load-password | '$PERCH' user add load{}@localhost --password-stdin --config '$d/perch.toml' >/dev/null" ;;
    *)
      "$LOAD" register --port "$PORT" --clients "$ACCOUNTS" --concurrency 8 --label "$name" \
        > "$OUT/$name.register.jsonl" 2>/dev/null ;;
  esac
  stop_server
  touch "$d/.accounts-$ACCOUNTS"
}

mam_variants() { # server part -> the archive set-ups it runs
  case "$1:$2" in
    perch:mam|perch-gnu:mam) echo on ;;
    prosody:mam) echo "internal sql" ;;
    perch:mam-chat|perch-gnu:mam-chat) echo "off on" ;;
    prosody:mam-chat) echo "off internal sql" ;;
    *) echo "" ;;
  esac
}

mam_label() { # server part variant -> the label of its records
  case "$2:$3" in
    mam:on) echo "$1" ;;
    mam:*) echo "$1-$3" ;;
    mam-chat:off) echo "$1-no-archive" ;;
    mam-chat:on) echo "$1-archive" ;;
    mam-chat:*) echo "$1-archive-$3" ;;
  esac
}

mam_load() { # server label part run perch-load-args…
  local name=$1 label=$2 part=$3 run=$4
  shift 4
  echo "== run $run: $label $part (pid $SERVER_PID)"
  "$LOAD" "$@" --port "$PORT" --server-pid "$SERVER_PID" "${PROBE_ARGS[@]}" \
    --label "$label" --run "$run" --max-phase-seconds 3600 \
    >> "$OUT/$name.jsonl" 2> "$OUT/$label.$part.$run.txt" || echo "!! $label $part run $run failed"
  grep -v '^\[perch-load\]' "$OUT/$label.$part.$run.txt" || true
}

# A mam or mam-chat run: a fresh data directory with only the accounts it
# needs, so every run starts from empty archives.
run_mam() { # server part run
  local name=$1 part=$2 run=$3 variant label d n sizes t0 data rate
  for variant in $(mam_variants "$name" "$part"); do
    MAM_VARIANT=$variant
    MAM_DIR="$BASE/$name-$part-$variant"
    rm -rf "$MAM_DIR"; mkdir -p "$MAM_DIR"
    label=$(mam_label "$name" "$part" "$variant")
    start_server "$name"
    d=$MAM_DIR
    n=101; [ "$part" = mam-chat ] && n=100
    t0=$(date +%s)
    case $name in
      perch|perch-gnu)
        seq 1 "$n" | xargs -P 4 -I{} sh -c \
          "echo load-password | '$(perch_binary "$name")' user add load{}@localhost --password-stdin --config '$d/perch.toml' >/dev/null" ;;
      *)
        "$LOAD" register --port "$PORT" --clients "$n" --concurrency 8 --label "$label" >/dev/null 2>&1 ;;
    esac
    if [ "$part" = mam ]; then
      sizes=$MAM_SIZES; [ "$name" = prosody ] && sizes=$MAM_PROSODY_SIZES
      case $name in perch|perch-gnu) data="$d/data/perch.redb" ;; *) data="$d/data" ;; esac
      mam_load "$name" "$label" "$part" "$run" \
        mam --sizes "$sizes" --data-path "$data" --fsyncs perf --query-seconds "$MAM_QUERY_SECONDS"
    else
      for rate in $MAM_CHAT_RATE; do
        mam_load "$name" "$label@$rate" "$part" "$run" \
          chat --pairs 50 --window 10 --rate "$rate" --seconds "$SECS"
      done
    fi
    echo "   ($(( $(date +%s) - t0 )) s)"
    if [ "$part" = mam ]; then
      case $name in
        # What the archives' records take, beside the file's size.
        perch|perch-gnu) "$(perch_binary "$name")" archive stats --config "$d/perch.toml" \
                           > "$OUT/$label.$part.$run.archive-stats.txt" 2>&1 || true ;;
      esac
    fi
    stop_server
    tail -n 20 "$d/server.log" > "$OUT/$label.$part.$run.server-log.txt" 2>/dev/null || true
    cp "$d/prosody.log" "$OUT/$label.$part.$run.prosody.log" 2>/dev/null || true
    rm -rf "$MAM_DIR"
  done
  MAM_VARIANT=""; MAM_DIR=""
}

ejabberdctl_in() { # dir args… -> ejabberdctl on the instance in dir, as ejabberd
  local d=$1
  shift
  env HOME=/var/lib/ejabberd setpriv --reuid=ejabberd --regid=ejabberd --init-groups \
    ejabberdctl --config-dir "$d/etc" --logs "$d/log" --spool "$d/db" "$@"
}

# A pep run: a fresh data directory with PEP_ACCOUNTS accounts and their
# rosters (provisioned, or made over XMPP by perch-load itself).
run_pep() { # server run
  local name=$1 run=$2 d t0 rosters setup_rate=$PEP_SETUP_RATE
  case $name in sink) return 0 ;; esac  # the sink has no PEP
  [ "$name" = ejabberd ] && setup_rate=$PEP_EJABBERD_SETUP_RATE
  PEP_DIR="$BASE/$name-pep"
  rm -rf "$PEP_DIR"; mkdir -p "$PEP_DIR"
  d=$PEP_DIR
  rosters=(--accounts "$PEP_ACCOUNTS" --contacts "$PEP_CONTACTS")
  PART=pep
  t0=$(date +%s)
  echo "== run $run: $name pep set-up: $PEP_ACCOUNTS accounts, $PEP_CONTACTS contacts each ($PEP_ROSTER)"
  case $name in
    perch|perch-gnu)
      # perch import needs the database, which only the server creates.
      start_server "$name"
      if [ "$PEP_ROSTER" = ready ]; then
        stop_server
        "$LOAD" pep-rosters --format xep0227 --out "$d/rosters.xml" "${rosters[@]}"
        "$(perch_binary "$name")" import --config "$d/perch.toml" "$d/rosters.xml" \
          > "$OUT/$name.pep.$run.import.txt" 2>&1 || die "$name: perch import failed"
        start_server "$name"
      else
        seq 1 "$PEP_ACCOUNTS" | xargs -P 4 -I{} sh -c \
          "echo load-password | '$(perch_binary "$name")' user add load{}@localhost --password-stdin --config '$d/perch.toml' >/dev/null"
      fi ;;
    prosody)
      start_server "$name"
      "$LOAD" register --port "$PORT" --clients "$PEP_ACCOUNTS" --concurrency 8 --label "$name" >/dev/null 2>&1
      if [ "$PEP_ROSTER" = ready ]; then
        stop_server
        "$LOAD" pep-rosters --format prosody --out "$d/data" "${rosters[@]}"
        chown -R prosody:prosody "$d"
        start_server "$name"
      fi ;;
    ejabberd)
      start_server "$name"
      if [ "$PEP_ROSTER" = ready ]; then
        "$LOAD" pep-rosters --format xep0227 --out "$d/rosters.xml" "${rosters[@]}"
        chown ejabberd:ejabberd "$d/rosters.xml"
        ejabberdctl_in "$d" import_piefxis "$d/rosters.xml" > "$OUT/$name.pep.$run.import.txt" 2>&1 \
          || die "$name: import_piefxis failed"
      else
        "$LOAD" register --port "$PORT" --clients "$PEP_ACCOUNTS" --concurrency 8 --label "$name" >/dev/null 2>&1
      fi ;;
  esac
  PART=""
  echo "   (set-up $(( $(date +%s) - t0 )) s)"
  "$LOAD" stats --server-pid "$SERVER_PID" "${PROBE_ARGS[@]}" --label "$name" --run "$run" >> "$OUT/$name.jsonl"
  echo "== run $run: $name pep (pid $SERVER_PID)"
  # A server that falls behind drains its backlog between phases: a long settle.
  "$LOAD" pep "${rosters[@]}" --roster "$PEP_ROSTER" --rate "$PEP_RATE" --seconds "$PEP_SECONDS" \
    --setup-rate "$setup_rate" \
    --chat-seconds "$SECS" --settle-seconds 60 --port "$PORT" --server-pid "$SERVER_PID" "${PROBE_ARGS[@]}" \
    --label "$name" --run "$run" --max-phase-seconds 900 \
    >> "$OUT/$name.jsonl" 2> "$OUT/$name.pep.$run.txt" || echo "!! $name pep run $run failed"
  grep -v '^\[perch-load\]' "$OUT/$name.pep.$run.txt" || true
  echo "   ($(( $(date +%s) - t0 )) s in all)"
  stop_server
  tail -n 20 "$d/server.log" > "$OUT/$name.pep.$run.server-log.txt" 2>/dev/null || true
  cp "$d/prosody.log" "$OUT/$name.pep.$run.prosody.log" 2>/dev/null || true
  cp "$d/log/ejabberd.log" "$OUT/$name.pep.$run.ejabberd.log" 2>/dev/null || true
  rm -rf "$PEP_DIR"
  PEP_DIR=""
}

# An upload run: a fresh data directory with one account, so no quota or
# stored file of an earlier run counts.
run_upload() { # server run
  local name=$1 run=$2 d t0
  UPLOAD_DIR="$BASE/$name-upload"
  rm -rf "$UPLOAD_DIR"; mkdir -p "$UPLOAD_DIR"
  d=$UPLOAD_DIR
  PART=upload
  start_server "$name"
  case $name in
    perch|perch-gnu)
      echo load-password | "$(perch_binary "$name")" user add load1@localhost --password-stdin \
        --config "$d/perch.toml" >/dev/null ;;
    *)
      "$LOAD" register --port "$PORT" --clients 1 --label "$name" >/dev/null 2>&1 ;;
  esac
  echo "== run $run: $name upload $UPLOAD_MIB MiB (pid $SERVER_PID)"
  t0=$(date +%s)
  # --upload-port: the PUT and GET go to the listener configured above,
  # whatever port the slot's URLs name.
  "$LOAD" upload --upload-mib "$UPLOAD_MIB" --upload-port "$HTTP_PORT" --port "$PORT" \
    --server-pid "$SERVER_PID" "${PROBE_ARGS[@]}" --label "$name" --run "$run" --max-phase-seconds 600 \
    >> "$OUT/$name.jsonl" 2> "$OUT/$name.upload.$run.txt" || echo "!! $name upload run $run failed"
  grep -v '^\[perch-load\]' "$OUT/$name.upload.$run.txt" || true
  echo "   ($(( $(date +%s) - t0 )) s)"
  stop_server
  PART=""
  tail -n 20 "$d/server.log" > "$OUT/$name.upload.$run.server-log.txt" 2>/dev/null || true
  cp "$d/prosody.log" "$OUT/$name.upload.$run.prosody.log" 2>/dev/null || true
  cp "$d/log/ejabberd.log" "$OUT/$name.upload.$run.ejabberd.log" 2>/dev/null || true
  rm -rf "$UPLOAD_DIR"
  UPLOAD_DIR=""
}

# ---------------------------------------------------------------------------
# The "s2s" part (see the header): two instances of a server, a.test (A)
# and b.test (B), a dnsmasq that names them, and a small client
# (s2s_helper) for the idle-link reading.

S2S_PAIRS=50     # chat pairs, as in the chat part
S2S_ACCOUNTS=$((2 * S2S_PAIRS))
S2S_LINKS=50     # B's extra hosts b1.test … for the idle-link reading
S2S_START_S=30   # bound on each instance's start-up
declare -A S2S_PID=()    # a, b -> the server process measured
declare -A S2S_GROUP=()  # a, b, dns -> the process group started for it
S2S_PROBE=()             # --include-children for ejabberd
S2S_DNS_IP=""
S2S_LINKS_PID=""         # the links client, while it runs
S2S_DIR="$BASE/s2s"      # dnsmasq's files, resolv.conf, the helper

s2s_domain() { case $1 in a) echo a.test ;; b) echo b.test ;; esac; }

s2s_port() { # name c2s|s2s|dist side -> port
  local base
  case $1 in perch|perch-gnu) base=25230 ;; prosody) base=26230 ;; ejabberd) base=27230 ;; esac
  base=$((base + PORT_SHIFT))
  case $2:$3 in
    c2s:a) echo "$base" ;; c2s:b) echo $((base + 1)) ;;
    s2s:a) echo $((base + 2)) ;; s2s:b) echo $((base + 3)) ;;
    dist:a) echo $((base + 4)) ;; dist:b) echo $((base + 5)) ;;
  esac
}

s2s_dir() { echo "$BASE/$1-s2s-$2"; }  # name side -> the instance's directory

# B's extra hosts (b1.test …) in a template's syntax, as sed replacement
# text (\n: line breaks); nothing for A or without the idle-link reading.
s2s_extra_hosts() { # template yes|no
  [ "$2" = yes ] || return 0
  local i out=""
  for i in $(seq 1 "$S2S_LINKS"); do
    case $1 in
      *perch*) out="$out"'\n[[host]]\ndomain = "b'"$i"'.test"' ;;
      *prosody*) out="$out"'VirtualHost "b'"$i"'.test"\n' ;;
      *ejabberd*) [ -n "$out" ] && out="$out"'\n  '; out="$out"'- "b'"$i"'.test"' ;;
    esac
  done
  echo -n "$out"
}

s2s_fill() { # template dir name side extra(yes|no) -> stdout
  sed -e "s|@RUN@|$2|g" -e "s|@DOMAIN@|$(s2s_domain "$4")|g" \
      -e "s|@C2S_PORT@|$(s2s_port "$3" c2s "$4")|g" -e "s|@S2S_PORT@|$(s2s_port "$3" s2s "$4")|g" \
      -e "s|@DIST_PORT@|$(s2s_port "$3" dist "$4")|g" -e "s|@NODE@|perchloads2s$4|g" \
      -e "s|@DNS@|$S2S_DNS_IP|g" -e "s|@EXTRA_HOSTS@|$(s2s_extra_hosts "$1" "$5")|g" "$1"
}

s2s_certificate() { # dir side extra: self-signed, for the instance's domains, 30 days
  local names="DNS:$(s2s_domain "$2")" i
  if [ "$3" = yes ]; then for i in $(seq 1 "$S2S_LINKS"); do names="$names,DNS:b$i.test"; done; fi
  openssl req -x509 -newkey rsa:2048 -nodes -subj "/CN=$(s2s_domain "$2")" -addext "subjectAltName=$names" \
    -days 30 -keyout "$1/key.pem" -out "$1/cert.pem" >/dev/null 2>&1 || die "openssl failed"
  cat "$1/cert.pem" "$1/key.pem" > "$1/combined.pem"
}

s2s_kill() { # pgid: TERM to the process group started as pgid, KILL after 20 s
  local g=$1 i
  kill -TERM -- "-$g" 2>/dev/null || return 0
  for i in $(seq 1 200); do kill -0 -- "-$g" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$g" 2>/dev/null || true
  wait "$g" 2>/dev/null || true
}

# The small XMPP and DNS client of the part (python3's standard library):
#   dns-check IP NAME PORT: exit 0 when IP:53 answers NAME's SRV with PORT;
#   links HOST PORT DOMAIN USER PASSWORD WARM TARGET…: logs in (PLAIN),
#   pings WARM and prints "warm OK ERRORS", waits for "go" on stdin, pings
#   every TARGET at once, prints "answered OK ERRORS SECONDS" once all
#   answered, and keeps its stream open until stdin says "quit" or closes.
s2s_helper() {
  mkdir -p "$S2S_DIR"; chmod 755 "$S2S_DIR"
  cat > "$S2S_DIR/s2s_helper.py" <<'EOF'
import base64, re, select, socket, struct, sys, time

def dns_check(ip, name, port):
    q = struct.pack(">HHHHHH", 0x5a5a, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    q += struct.pack(">HH", 33, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    try:
        s.sendto(q, (ip, 53))
        r, _ = s.recvfrom(4096)
    except OSError:
        return 1
    ident, _, qd, an = struct.unpack(">HHHH", r[:8])
    if ident != 0x5a5a or an == 0:
        return 1
    def skip(i):
        while True:
            n = r[i]
            if n == 0:
                return i + 1
            if n >= 0xC0:
                return i + 2
            i += n + 1
    i = 12
    for _ in range(qd):
        i = skip(i) + 4
    for _ in range(an):
        i = skip(i)
        t, _, _, ln = struct.unpack(">HHIH", r[i:i + 10])
        i += 10
        if t == 33 and struct.unpack(">HHH", r[i:i + 6])[2] == int(port):
            return 0
        i += ln
    return 1

class Stream:
    def __init__(self, host, port, domain):
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.domain, self.buf = domain, ""
    def send(self, text):
        self.sock.sendall(text.encode())
    def open(self):
        self.buf = ""
        self.send("<?xml version='1.0'?><stream:stream to='%s' version='1.0' xmlns='jabber:client'"
                  " xmlns:stream='http://etherx.jabber.org/streams'>" % self.domain)
    def wait(self, pattern, seconds, what):
        deadline = time.time() + seconds
        while True:
            m = re.search(pattern, self.buf, re.S)
            if m:
                self.buf = self.buf[m.end():]
                return m
            left = deadline - time.time()
            if left <= 0:
                sys.exit("links: no %s after %d s; got: %s" % (what, seconds, self.buf[-400:]))
            if select.select([self.sock], [], [], left)[0]:
                data = self.sock.recv(65536)
                if not data:
                    sys.exit("links: stream closed while waiting for %s: %s" % (what, self.buf[-400:]))
                self.buf += data.decode("utf-8", "replace")

def attr(attrs, name):
    m = re.search(r"\b%s=(['\"])(.*?)\1" % name, attrs)
    return m.group(2) if m else None

def pings(st, targets, seconds):
    want = {}
    for i, t in enumerate(targets):
        want["p%d-%s" % (i, t)] = t
        st.send("<iq type='get' id='p%d-%s' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>" % (i, t, t))
    ok = err = 0
    deadline = time.time() + seconds
    while want:
        left = sorted(want.values())
        m = st.wait(r"<iq\b([^>]*)>", max(0.1, deadline - time.time()),
                    "answer from %d domains (%s)" % (len(left), ", ".join(left[:5])))
        i = attr(m.group(1), "id")
        if i in want:
            del want[i]
            if attr(m.group(1), "type") == "result":
                ok += 1
            else:
                err += 1
    return ok, err

def links(host, port, domain, user, password, warm, targets):
    st = Stream(host, port, domain)
    st.open()
    st.wait(r"</stream:features>", 10, "stream features")
    plain = base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()
    st.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>" % plain)
    st.wait(r"<success\b", 10, "SASL success")
    st.open()
    st.wait(r"</stream:features>", 10, "stream features after SASL")
    st.send("<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
            "<resource>links</resource></bind></iq>")
    st.wait(r"<iq\b[^>]*\bid=['\"]bind['\"]", 10, "bind result")
    ok, err = pings(st, [warm], 30)
    print("warm %d %d" % (ok, err), flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    t0 = time.time()
    ok, err = pings(st, targets, 60)
    print("answered %d %d %.3f" % (ok, err, time.time() - t0), flush=True)
    while sys.stdin.readline().strip() not in ("quit", ""):
        pass
    st.send("</stream:stream>")

if __name__ == "__main__":
    if sys.argv[1] == "dns-check":
        sys.exit(dns_check(*sys.argv[2:5]))
    links(*sys.argv[2:8], sys.argv[8:])
EOF
}

# dnsmasq for the .test zone, on the first free address of 127.0.0.150 …
# 199 (port 53; resolv.conf cannot name another): SRV and A records of
# a.test, b.test and b1.test … for this server's s2s ports, nothing
# upstream. Sets S2S_DNS_IP and writes $S2S_DIR/resolv.conf naming it.
s2s_dns_start() { # name
  local name=$1 args dom side last ip pid i
  args=(--keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --port=53 --bind-interfaces
        --local=/test/ --user=root --pid-file= --log-queries "--log-facility=$S2S_DIR/dnsmasq.log")
  for dom in a.test b.test $(seq -f 'b%g.test' 1 "$S2S_LINKS"); do
    side=b; [ "$dom" = a.test ] && side=a
    args+=("--srv-host=_xmpp-server._tcp.$dom,$dom,$(s2s_port "$name" s2s "$side")" "--address=/$dom/127.0.0.1")
  done
  : > "$S2S_DIR/dnsmasq.log"
  for last in $(seq 150 199); do
    ip=127.0.0.$last
    setsid dnsmasq "${args[@]}" "--listen-address=$ip" > "$S2S_DIR/dnsmasq.out" 2>&1 &
    pid=$!
    for i in $(seq 1 30); do
      kill -0 "$pid" 2>/dev/null || break
      if python3 "$S2S_DIR/s2s_helper.py" dns-check "$ip" _xmpp-server._tcp.b.test "$(s2s_port "$name" s2s b)"; then
        S2S_DNS_IP=$ip; S2S_GROUP[dns]=$pid
        echo "nameserver $ip" > "$S2S_DIR/resolv.conf"; chmod 644 "$S2S_DIR/resolv.conf"
        return 0
      fi
      sleep 0.1
    done
    s2s_kill "$pid"  # the address is taken (or dnsmasq failed): the next one
  done
  return 1
}

# Starts instance SIDE of NAME (B with the extra hosts if EXTRA is yes) and
# waits, at most S2S_START_S seconds, until its c2s port serves and its s2s
# port listens. Sets S2S_PID[side] and S2S_GROUP[side]; 1 on failure.
s2s_start() { # name side extra
  local name=$1 side=$2 extra=$3 d c2s s2s launcher t0 resolv="$S2S_DIR/resolv.conf"
  d=$(s2s_dir "$name" "$side")
  c2s=$(s2s_port "$name" c2s "$side"); s2s=$(s2s_port "$name" s2s "$side")
  mkdir -p "$d"
  # The peers read /etc/resolv.conf: in a mount namespace of their own,
  # the one naming the dnsmasq is bind-mounted over it. setsid: a process
  # group of their own, stopped whole.
  local in_ns=(setsid unshare -m sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$resolv")
  case $name in
    perch|perch-gnu)
      s2s_fill "$HERE/servers/s2s-perch.toml.in" "$d" "$name" "$side" "$extra" > "$d/perch.toml"
      setsid "$(perch_binary "$name")" run --config "$d/perch.toml" > "$d/server.log" 2>&1 &
      launcher=$! ;;
    prosody)
      s2s_certificate "$d" "$side" "$extra"; mkdir -p "$d/data"
      s2s_fill "$HERE/servers/s2s-prosody.cfg.lua.in" "$d" "$name" "$side" "$extra" > "$d/prosody.cfg.lua"
      chown -R prosody:prosody "$d"
      "${in_ns[@]}" setpriv --reuid=prosody --regid=prosody --init-groups \
        prosody -F --config "$d/prosody.cfg.lua" > "$d/server.log" 2>&1 &
      launcher=$! ;;
    ejabberd)
      s2s_certificate "$d" "$side" "$extra"; mkdir -p "$d/etc" "$d/log" "$d/db"
      s2s_fill "$HERE/servers/s2s-ejabberd.yml.in" "$d" "$name" "$side" "$extra" > "$d/etc/ejabberd.yml"
      s2s_fill "$HERE/servers/s2s-ejabberdctl.cfg.in" "$d" "$name" "$side" "$extra" > "$d/etc/ejabberdctl.cfg"
      cp "$HERE/servers/s2s-ejabberd.inetrc" "$d/etc/inetrc"
      chown -R ejabberd:ejabberd "$d"
      "${in_ns[@]}" env HOME=/var/lib/ejabberd setpriv --reuid=ejabberd --regid=ejabberd --init-groups \
        ejabberdctl --config-dir "$d/etc" --logs "$d/log" --spool "$d/db" foreground \
        > "$d/server.log" 2>&1 &
      launcher=$! ;;
  esac
  S2S_GROUP[$side]=$launcher
  t0=$(date +%s)
  if ! "$LOAD" wait --port "$c2s" --domain "$(s2s_domain "$side")" --timeout "$S2S_START_S" >/dev/null 2>&1; then
    echo "!! $name $side: no c2s on $c2s after ${S2S_START_S}s; $(tail -n 3 "$d/server.log" | tr '\n' ' ')"
    return 1
  fi
  while ! (exec 3<>"/dev/tcp/127.0.0.1/$s2s") 2>/dev/null; do
    if [ $(( $(date +%s) - t0 )) -ge "$S2S_START_S" ]; then
      echo "!! $name $side: nothing listens on s2s port $s2s after ${S2S_START_S}s"
      return 1
    fi
    sleep 0.2
  done
  if [ "$name" = ejabberd ]; then
    # The server is the beam.smp under ejabberdctl (as in start_server).
    S2S_PID[$side]=$(descendant_named "$launcher" beam.smp) || { echo "!! ejabberd $side: no beam.smp"; return 1; }
  else
    S2S_PID[$side]=$launcher  # unshare, sh and setpriv exec: the server itself
  fi
  echo "   $name $(s2s_domain "$side") up in $(( $(date +%s) - t0 )) s (pid ${S2S_PID[$side]}; c2s $c2s, s2s $s2s)"
}

s2s_accounts() { # name side: load1 … load$S2S_ACCOUNTS, once per sitting
  local name=$1 side=$2 d dom
  d=$(s2s_dir "$name" "$side"); dom=$(s2s_domain "$side")
  [ -e "$d/.accounts-s2s" ] && return 0
  case $name in
    perch|perch-gnu)
      seq 1 "$S2S_ACCOUNTS" | timeout 120 xargs -P 4 -I{} sh -c \
        "echo load-password | '$(perch_binary "$name")' user add load{}@$dom --password-stdin --config '$d/perch.toml' >/dev/null" \
        || return 1 ;;
    *)
      timeout 120 "$LOAD" register --port "$(s2s_port "$name" c2s "$side")" --domain "$dom" --clients "$S2S_ACCOUNTS" \
        --concurrency 8 --label "$name-s2s-$side" >/dev/null 2>&1 || return 1 ;;
  esac
  touch "$d/.accounts-s2s"
}

s2s_up() { # name "a b"|a extra: starts those instances, with their accounts
  local side
  for side in $2; do
    s2s_start "$1" "$side" "$([ "$side" = b ] && echo "$3" || echo no)" || return 1
  done
  for side in $2; do
    s2s_accounts "$1" "$side" || { echo "!! $1 $side: creating the accounts failed"; return 1; }
  done
}

s2s_down() { # stops the links client and both instances
  local side
  if [ -n "$S2S_LINKS_PID" ]; then kill "$S2S_LINKS_PID" 2>/dev/null || true; wait "$S2S_LINKS_PID" 2>/dev/null || true; S2S_LINKS_PID=""; fi
  for side in a b; do
    if [ -n "${S2S_GROUP[$side]:-}" ]; then s2s_kill "${S2S_GROUP[$side]}"; fi
    unset "S2S_GROUP[$side]" "S2S_PID[$side]"
  done
}

s2s_dns_stop() {
  if [ -n "${S2S_GROUP[dns]:-}" ]; then s2s_kill "${S2S_GROUP[dns]}"; fi
  unset "S2S_GROUP[dns]"
  S2S_DNS_IP=""
}

s2s_logs() { # name run step sides: the instances' log tails
  local side d f
  for side in $4; do
    d=$(s2s_dir "$1" "$side")
    for f in server.log prosody.log log/ejabberd.log log/error.log; do
      [ -s "$d/$f" ] && tail -n 40 "$d/$f" > "$OUT/$1-s2s-$3.$2.$side.$(basename "$f" .log)-log.txt"
    done
  done
  return 0
}

# perch-load chat across the link (side a or b: whose CPU is read) or with
# both clients on A (local).
s2s_chat() { # name run a|b|local
  local name=$1 run=$2 side=$3 label="$1-s2s-$3" pid peer=()
  pid=${S2S_PID[a]}
  [ "$side" = b ] && pid=${S2S_PID[b]}
  [ "$side" = local ] || peer=(--peer-port "$(s2s_port "$name" c2s b)" --peer-domain b.test)
  echo "== run $run: $label chat (pid $pid; load average $(cut -d' ' -f1-3 /proc/loadavg))"
  timeout -k 5 $((SECS + 60)) "$LOAD" chat --pairs "$S2S_PAIRS" --window 10 --seconds "$SECS" \
    --domain a.test --port "$(s2s_port "$name" c2s a)" "${peer[@]}" \
    --server-pid "$pid" "${S2S_PROBE[@]}" --label "$label" --run "$run" --max-phase-seconds $((SECS + 30)) \
    >> "$OUT/$name.jsonl" 2> "$OUT/$label.s2s.$run.txt" || echo "!! $label chat run $run failed (or took over $((SECS + 60)) s)"
  grep -v '^\[perch-load\]' "$OUT/$label.s2s.$run.txt" || true
}

s2s_rss() { # side -> the instance's RSS in KiB
  "$LOAD" stats --server-pid "${S2S_PID[$1]}" "${S2S_PROBE[@]}" --label rss | jq -r '.rss_kib // empty'
}

s2s_tcp_to() { # port -> established TCP connections to it
  ss -Htn state established "( dport = :$1 )" | wc -l
}

# Both instances' RSS once it holds still: every reading of 3 s in a row
# within 64 KiB (or 0.5 %) of the one before, at most 30 s. (ejabberd's
# shrinks for some 10 s after its start-up, by more than 50 links add.)
s2s_steady() { # -> S2S_RA, S2S_RB
  local i still=0 a b pa="" pb=""
  for i in $(seq 1 30); do
    sleep 1
    a=$(s2s_rss a); b=$(s2s_rss b)
    if [ -n "$pa" ] && s2s_near "$a" "$pa" && s2s_near "$b" "$pb"; then still=$((still + 1)); else still=0; fi
    pa=$a; pb=$b
    [ "$still" -ge 3 ] && break
  done
  S2S_RA=$a; S2S_RB=$b
}

s2s_near() { # kib kib: within 64 KiB or 0.5 % of each other
  awk -v x="${1:-0}" -v y="${2:-0}" 'BEGIN { d = x - y; if (d < 0) d = -d; exit !(d <= 64 || d <= y / 200) }'
}

# RSS per idle link: A and B (B with the extra hosts) up; one client on A
# brings up a.test-b.test, then pings the S2S_LINKS extra hosts.
s2s_links() { # name run
  local name=$1 run=$2 label="$1-s2s-links" line targets=() i rfd wfd ra0 rb0 ra1 rb1 word ok err secs
  for i in $(seq 1 "$S2S_LINKS"); do targets+=("b$i.test"); done
  echo "== run $run: $label ($S2S_LINKS idle links)"
  # Its stdin and stdout are FIFOs that this shell holds open both ways
  # (no open blocks, whatever becomes of the client); reads time out.
  rm -f "$S2S_DIR/links.in" "$S2S_DIR/links.out"
  mkfifo "$S2S_DIR/links.in" "$S2S_DIR/links.out"
  exec {wfd}<>"$S2S_DIR/links.in" {rfd}<>"$S2S_DIR/links.out"
  python3 "$S2S_DIR/s2s_helper.py" links 127.0.0.1 "$(s2s_port "$name" c2s a)" a.test load1 load-password \
    b.test "${targets[@]}" < "$S2S_DIR/links.in" > "$S2S_DIR/links.out" 2> "$OUT/$label.$run.client.txt" &
  S2S_LINKS_PID=$!
  read -r -t 40 line <&"$rfd" || line=""
  if [ "$line" != "warm 1 0" ]; then
    echo "!! $label: the a.test-b.test link did not come up ($line): $(tail -n 3 "$OUT/$label.$run.client.txt")"
    exec {rfd}>&- {wfd}>&-
    return 1
  fi
  s2s_steady; ra0=$S2S_RA; rb0=$S2S_RB
  echo go >&"$wfd"
  read -r -t 70 word ok err secs <&"$rfd" || word=""
  if [ "$word" != answered ]; then
    echo "!! $label: not every host answered: $(tail -n 3 "$OUT/$label.$run.client.txt")"
    exec {rfd}>&- {wfd}>&-
    return 1
  fi
  s2s_steady; ra1=$S2S_RA; rb1=$S2S_RB
  jq -nc --arg lb "$label" --arg run "$run" --argjson n "$S2S_LINKS" --argjson ok "$ok" --argjson err "$err" \
    --argjson secs "$secs" --argjson a0 "${ra0:-null}" --argjson a1 "${ra1:-null}" \
    --argjson b0 "${rb0:-null}" --argjson b1 "${rb1:-null}" \
    --argjson ta "$(s2s_tcp_to "$(s2s_port "$name" s2s a)")" --argjson tb "$(s2s_tcp_to "$(s2s_port "$name" s2s b)")" \
    'def per($x; $y): if $x == null or $y == null then null else (($y - $x) / $n * 10 | round / 10) end;
     {"scenario": "s2s_idle_links", "label": $lb, "run": $run, "links": $n, "answered": $ok, "answered_with_error": $err,
      "seconds_to_all_answers": $secs, "a_rss_before_kib": $a0, "a_rss_after_kib": $a1,
      "b_rss_before_kib": $b0, "b_rss_after_kib": $b1, "a_kib_per_link": per($a0; $a1), "b_kib_per_link": per($b0; $b1),
      "tcp_to_a_s2s": $ta, "tcp_to_b_s2s": $tb}' | tee -a "$OUT/$name.jsonl"
  echo quit >&"$wfd"
  exec {rfd}>&- {wfd}>&-
  wait "$S2S_LINKS_PID" 2>/dev/null || true
  S2S_LINKS_PID=""
}

run_s2s() { # server run
  local name=$1 run=$2 side t0
  case $name in sink) return 0 ;; esac  # the sink does not federate
  S2S_PROBE=()
  [ "$name" = ejabberd ] && S2S_PROBE=(--include-children)
  t0=$(date +%s)
  # Fresh instances (and accounts) for each sitting.
  [ "$run" = 1 ] && rm -rf "$(s2s_dir "$name" a)" "$(s2s_dir "$name" b)"
  s2s_helper
  if ! s2s_dns_start "$name"; then
    echo "!! $name s2s: dnsmasq did not start on 127.0.0.150-199: $(tail -n 3 "$S2S_DIR/dnsmasq.out")"
    return 0
  fi
  echo "== run $run: $name s2s, dnsmasq on $S2S_DNS_IP:53"
  for side in a b; do
    if s2s_up "$name" "a b" no; then sleep 2; s2s_chat "$name" "$run" "$side"; fi
    s2s_logs "$name" "$run" "$side" "a b"
    s2s_down
  done
  if s2s_up "$name" a no; then sleep 2; s2s_chat "$name" "$run" local; fi
  s2s_logs "$name" "$run" local a
  s2s_down
  if s2s_up "$name" "a b" yes; then s2s_links "$name" "$run" || true; fi
  s2s_logs "$name" "$run" links "a b"
  s2s_down
  cp "$S2S_DIR/dnsmasq.log" "$OUT/$name-s2s.$run.dnsmasq.log" 2>/dev/null || true
  s2s_dns_stop
  echo "   ($(( $(date +%s) - t0 )) s)"
}

# The "Federation" section of table.md: medians over runs.
s2s_table() {
  local name order=""
  echo
  echo "## Federation (s2s): two instances of each server, a.test and b.test"
  echo
  echo "chat: $S2S_PAIRS pairs, window 10, $SECS s, the second client of each pair on b.test; server CPU per 1 000 messages delivered; \"local\": both clients on A. KiB per idle link: RSS growth over $S2S_LINKS links (a.test to b1.test …) / $S2S_LINKS."
  echo
  echo "| server | msgs/s over s2s (run on A / on B) | CPU s/1000 on A | CPU s/1000 on B | local msgs/s | local CPU s/1000 | A ÷ local | B ÷ local | KiB per idle link on A | on B |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  for name in $SERVERS; do
    [ "$name" = sink ] && continue
    order="$order,$name-s2s-local,$name-s2s-a,$name-s2s-b"
    grep -h '^{' "$OUT"/*.jsonl | jq -rs --arg n "$name" '
      def med: map(select(. != null)) | sort
        | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
          else (.[length / 2 - 1] + .[length / 2]) / 2 end;
      def m($l; $sc; f): [.[] | select(.label == ($n + $l) and .scenario == $sc) | f] | med;
      [m("-s2s-a"; "chat"; .msgs_per_s), m("-s2s-b"; "chat"; .msgs_per_s),
       m("-s2s-a"; "chat"; .server_cpu_s_per_1000), m("-s2s-b"; "chat"; .server_cpu_s_per_1000),
       m("-s2s-local"; "chat"; .msgs_per_s), m("-s2s-local"; "chat"; .server_cpu_s_per_1000),
       m("-s2s-links"; "s2s_idle_links"; .a_kib_per_link), m("-s2s-links"; "s2s_idle_links"; .b_kib_per_link)]
      | map(if . == null then "-" else tostring end) | @tsv' |
    awk -F'\t' -v n="$name" '
      function f(x, fmt) { return x == "-" ? "–" : sprintf(fmt, x) }
      function r(x, y) { return (x == "-" || y == "-" || y == 0) ? "–" : sprintf("%.2f", x / y) }
      { printf "| %s | %s / %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", n, f($1, "%.0f"), f($2, "%.0f"),
          f($3, "%.4f"), f($4, "%.4f"), f($5, "%.0f"), f($6, "%.4f"), r($3, $6), r($4, $6), f($7, "%.1f"), f($8, "%.1f") }'
  done
  echo
  echo "The chat records of these labels (NAME-s2s-local: both clients on A; NAME-s2s-a, -b: across the link, CPU of A, of B):"
  echo
  "$LOAD" table --order "${order#,}" <(grep -h '"label":"[^"]*-s2s-\(a\|b\|local\)"' "$OUT"/*.jsonl)
}

part_args() { # part -> perch-load arguments
  case $1 in
    chat) echo "chat --pairs 50 --window 10 --seconds $SECS" ;;
    chat-sm) echo "chat --sm --pairs 50 --window 10 --seconds $SECS" ;;
    login) echo "login --clients $LOGINS --concurrency 50 --mech PLAIN,SCRAM-SHA-1,SCRAM-SHA-256" ;;
    churn) echo "churn --clients $CHURN --pairs 50 --window 10 --seconds $SECS" ;;
    idle) echo "idle --steps $IDLE_STEPS" ;;
    idle-tls) echo "idle --tls direct --steps $IDLE_STEPS" ;;
    idle-ws) echo "idle --ws-url ws://localhost:$HTTP_PORT/xmpp-websocket --steps $IDLE_STEPS" ;;
    chat-ws) echo "chat --ws-url ws://localhost:$HTTP_PORT/xmpp-websocket --pairs 50 --window 10 --seconds $SECS" ;;
    muc) echo "muc --occupants $MUC_SIZES --senders 5 --muc-window 4 --seconds $SECS" ;;
    *) die "unknown part $1" ;;
  esac
}

run_part() { # server part run
  local name=$1 part=$2 run=$3 port args
  # The sink holds no idle clients and speaks no WebSocket or HTTP.
  case "$name:$part" in sink:idle|sink:idle-tls|sink:idle-ws|sink:chat-ws|sink:upload) return 0 ;; esac
  case $part in
    mam|mam-chat) run_mam "$name" "$part" "$run"; return 0 ;;
    pep) run_pep "$name" "$run"; return 0 ;;
    upload) run_upload "$name" "$run"; return 0 ;;
    s2s) run_s2s "$name" "$run"; return 0 ;;
  esac
  if [ "$name:$part" = sink:muc ]; then
    # No server at all: what K loopback writes and the tool's reading cost here.
    "$LOAD" floor --occupants "$MUC_SIZES" --label sink --run "$run" \
      >> "$OUT/sink.jsonl" 2> "$OUT/sink.floor.$run.txt" || echo "!! floor run $run failed"
    cat "$OUT/sink.floor.$run.txt"
  fi
  PART=$part
  start_server "$name"
  PART=""
  port=$PORT
  [ "$part" = idle-tls ] && port=$TLS_PORT
  sleep 2
  "$LOAD" stats --server-pid "$SERVER_PID" "${PROBE_ARGS[@]}" --label "$name" --run "$run" \
    --startup-s "$STARTUP_S" >> "$OUT/$name.jsonl"
  args=$(part_args "$part")
  echo "== run $run: $name $part (pid $SERVER_PID, up in ${STARTUP_S}s)"
  # shellcheck disable=SC2086
  "$LOAD" $args --port "$port" --server-pid "$SERVER_PID" "${PROBE_ARGS[@]}" \
    --label "$name" --run "$run" --max-phase-seconds 400 \
    >> "$OUT/$name.jsonl" 2> "$OUT/$name.$part.$run.txt" || echo "!! $name $part run $run failed"
  grep -v '^\[perch-load\]' "$OUT/$name.$part.$run.txt" || true
  stop_server
  tail -n 20 "$(data_dir_of "$name")/server.log" > "$OUT/$name.$part.$run.server-log.txt" 2>/dev/null || true
}

environment() {
  {
    echo "date: $(date -u +%FT%TZ)"
    echo "kernel: $(uname -srm)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') × $(nproc)"
    echo "memory: $(free -m | awk '/^Mem:/ { print $2 " MiB" }')"
    echo "ulimit -n: $(ulimit -n)"
    echo "loadavg at start: $(cat /proc/loadavg)"
    echo "perch: $(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo unknown) ($MUSL_TARGET static; perch-gnu: glibc)"
    dpkg-query -W -f='${Package} ${Version}\n' prosody ejabberd erlang-base lua5.4 lua-event 2>/dev/null || true
    echo "runs: $RUNS, parts: $PARTS, servers: $SERVERS, seconds: $SECS"
    case " $PARTS " in *" pep "*) echo "pep: $PEP_ACCOUNTS accounts x $PEP_CONTACTS contacts, rosters $PEP_ROSTER, rates $PEP_RATE publications/s for $PEP_SECONDS s each, chat yardstick $SECS s" ;; esac
    case " $PARTS " in *" upload "*) echo "upload: $UPLOAD_MIB MiB" ;; esac
    case " $PARTS " in *" s2s "*) echo "s2s: chat $S2S_PAIRS pairs x $SECS s, $S2S_LINKS idle links; $(dnsmasq --version 2>/dev/null | head -n 1)" ;; esac
    case " $PARTS " in *" mam"*) echo "mam sizes: perch $MAM_SIZES, prosody $MAM_PROSODY_SIZES; query seconds $MAM_QUERY_SECONDS; mam-chat rates: $MAM_CHAT_RATE msg/s; lua-dbi-sqlite3 $(dpkg-query -W -f='${Version}' lua-dbi-sqlite3 2>/dev/null)" ;; esac
  } > "$OUT/env.txt"
  cat "$OUT/env.txt"
}

accounts_needed() { # part -> how many accounts it logs in (chat: 50 pairs)
  case $1 in
    chat|chat-sm|chat-ws) echo 100 ;;
    login) echo "$LOGINS" ;;
    churn) echo "$CHURN" ;;
    idle|idle-tls|idle-ws) echo "${IDLE_STEPS##*,}" ;;
    muc) echo "${MUC_SIZES##*,}" ;;
    mam|mam-chat|pep|upload|s2s) echo 0 ;;  # their own data directories and accounts
    *) die "unknown part $1" ;;
  esac
}
for part in $PARTS; do
  n=$(accounts_needed "$part")
  [ "$n" -le "$ACCOUNTS" ] || die "$part needs $n accounts; --accounts is $ACCOUNTS"
done
[ "$(ulimit -n)" -ge 10100 ] || echo "warning: ulimit -n is $(ulimit -n); the 10 000-client idle step needs more" >&2
# A server left running by an interrupted sitting would spoil the next one.
# The s2s part's processes first: stop_server waits for every child.
cleanup() {
  s2s_down
  s2s_dns_stop
  if [ -n "${SERVER_PID:-}" ]; then stop_server; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
install_servers
install_s2s_tools
build
environment
# The mam, pep and upload parts create their own accounts; the others share ACCOUNTS.
case " $PARTS " in
  *" chat "*|*" chat-sm "*|*" login "*|*" churn "*|*" idle "*|*" idle-tls "*|*" muc "*|*" idle-ws "*|*" chat-ws "*)
    for s in $SERVERS; do provision "$s"; done ;;
esac
for run in $(seq 1 "$RUNS"); do
  for part in $PARTS; do
    for s in $SERVERS; do run_part "$s" "$part" "$run"; done
  done
done
order=$(echo "$SERVERS" | tr ' ' ',')
# The s2s part's records (labels NAME-s2s-…) get a section of their own.
s2s_records='"label":"[^"]*-s2s-'
: > "$OUT/table.md"
if [ "$(grep -hv "$s2s_records" "$OUT"/*.jsonl | grep -c '^{')" -gt 0 ]; then
  "$LOAD" table --order "$order" <(grep -hv "$s2s_records" "$OUT"/*.jsonl) | tee "$OUT/table.md"
fi
if grep -qh "$s2s_records" "$OUT"/*.jsonl; then
  s2s_table | tee -a "$OUT/table.md"
fi
echo "results in $OUT"
