#!/usr/bin/env bash
# Scale and memory with many carts on one node (a script, not a CI test).
#
# 1. Starts a release build on loopback with a fresh data dir and an idle timeout of a
#    day, so every cart it creates stays live (an active, idle actor).
# 2. Creates N carts with `emporium loadgen --mix create-carts --requests N` (each one a
#    durable, fsync'd event), and checks the server's live-cart gauge.
# 3. Reports resident memory per active idle cart: (RSS with N live carts - RSS of the
#    same server before) / N.
# 4. Stops it (SIGTERM) and restarts it on the same data dir: reports the time from
#    process start to /health/ready answering 200, and the data dir size.
# 5. Reports resident memory per passivated (persisted, not live) cart: (RSS of the
#    restarted server - RSS of a server on an empty data dir) / N.
# Loopback only; bounded by N and by every wait's limit.
#
#   scripts/bench-scale.sh [CARTS=1000000] [USERS=64]
set -euo pipefail
carts=${1:-1000000}
users=${2:-64}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release --quiet
bin=./target/release/emporium

work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

export EMPORIUM_ADMIN_TOKEN=bench-scale-admin-token-0123456789 EMPORIUM_LOG__LEVEL=warn EMPORIUM_RATE_LIMIT__ENABLED=false
export EMPORIUM_ACTORS__IDLE_TIMEOUT_MS=86400000

start() { # start DATA_DIR: starts the server, sets $pid and $base, returns ready time (ms)
  rm -f "$1/http.addr"
  local t0 t1
  t0=$(date +%s%N)
  "$bin" serve --http-addr 127.0.0.1:0 --grpc-addr 127.0.0.1:0 --data-dir "$1" >>"$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 12000); do [ -s "$1/http.addr" ] && break; sleep 0.01; done
  base="http://$(cat "$1/http.addr")"
  for _ in $(seq 1 12000); do
    curl -sf -o /dev/null "$base/health/ready" && break
    kill -0 "$pid" 2>/dev/null || { echo "server exited; log:" >&2; tail -20 "$work/server.log" >&2; exit 1; }
    sleep 0.01
  done
  t1=$(date +%s%N)
  ready_ms=$(((t1 - t0) / 1000000))
}
stop() {
  kill -TERM "$pid"
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  wait "$pid" 2>/dev/null || true
  pid=
}
rss_kib() { awk '/VmRSS/{print $2}' "/proc/$pid/status"; }
live_carts() { curl -sf "$base/metrics" | awk '/^emporium_actors_active\{kind="cart"\}/{print $2}'; }

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB RAM, disk $(df -h "$work" | awk 'NR==2{print $1}')"

start "$work/empty"
sleep 1
rss_empty=$(rss_kib)
stop

start "$work/data"
sleep 1
rss_before=$(rss_kib)
echo "== creating $carts carts with $users users"
"$bin" loadgen --target "$base" --mix create-carts --requests "$carts" --duration 3600s \
  --users "$users" --quiet
live=$(live_carts)
sleep 1
rss_live=$(rss_kib)
echo "live carts (emporium_actors_active{kind=\"cart\"}): $live"
stop

size=$(du -sb "$work/data" | awk '{print $1}')
start "$work/data"
restart_ms=$ready_ms
sleep 1
rss_restarted=$(rss_kib)
live_after=$(live_carts)
stop

python3 - "$carts" "$rss_empty" "$rss_before" "$rss_live" "$rss_restarted" "$restart_ms" "$size" "$live" "$live_after" <<'PY'
import sys
n, empty, before, live, restarted, ms, size, live_n, live_after = sys.argv[1:]
n = int(n); empty, before, live, restarted = (int(x) * 1024 for x in (empty, before, live, restarted))
print(f"carts created: {n:,}; live after creation: {float(live_n):,.0f}; live after restart: {float(live_after):,.0f}")
print(f"RSS: empty server {empty/2**20:.1f} MiB, before {before/2**20:.1f} MiB, with {n:,} live carts {live/2**20:.1f} MiB, restarted {restarted/2**20:.1f} MiB")
print(f"memory per active idle cart: {(live - before) / n:,.0f} bytes")
print(f"memory per passivated cart: {(restarted - empty) / n:,.0f} bytes")
print(f"restart to ready with {n:,} persisted carts: {int(ms)} ms")
print(f"data dir: {int(size)/2**20:.1f} MiB ({int(size)/n:.0f} bytes per cart)")
PY
