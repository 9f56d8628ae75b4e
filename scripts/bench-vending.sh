#!/usr/bin/env bash
# Vending load: N simulated machines, each on its own gRPC connection, heartbeating every
# HEARTBEAT_MS and selling at random, against one emporium node on loopback. Every
# heartbeat and vend is journaled and fsync'd before its ack.
#
# Registers the machines over HTTP (vm-sim --http), lets them connect, then measures the
# server over a steady window of DURATION seconds: CPU (utime+stime from /proc, as a
# share of one core), resident memory (VmRSS, and VmHWM the peak), acks per second, and
# the data dir size. vm-sim runs on the same machine and its CPU is reported too.
# Bounded: one run, loopback only.
#
#   scripts/bench-vending.sh [MACHINES=2000] [DURATION_S=60] [HEARTBEAT_MS=1000] [SALES_PER_MIN=1]
set -euo pipefail
machines=${1:-2000}
duration=${2:-60}
heartbeat_ms=${3:-1000}
sales=${4:-1}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release --quiet
bin=./target/release/emporium

work=$(mktemp -d)
cleanup() {
  [ -n "${sim:-}" ] && kill "$sim" 2>/dev/null
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# The edge's rate limit is for shoppers, and the gRPC per-IP connection cap is for a
# site's machines: every simulated machine dials from loopback, and registering
# thousands of machines from one address would only wait on the rate limit.
EMPORIUM_ADMIN_TOKEN=bench-admin-token-0123456789abcdef EMPORIUM_LOG__LEVEL=warn EMPORIUM_RATE_LIMIT__ENABLED=false \
  EMPORIUM_GRPC__MAX_CONNECTIONS_PER_IP=$((machines + 64)) \
  EMPORIUM_VENDING__HEARTBEAT_INTERVAL_S=$(( (heartbeat_ms + 999) / 1000 )) \
  "$bin" serve --http-addr 127.0.0.1:0 --grpc-addr 127.0.0.1:0 --data-dir "$work/data" \
  >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do [ -s "$work/data/grpc.addr" ] && break; sleep 0.1; done
http="http://$(cat "$work/data/http.addr")"
grpc="http://$(cat "$work/data/grpc.addr")"
for _ in $(seq 1 100); do curl -sf "$http/health/ready" >/dev/null && break; sleep 0.1; done

# vm-sim's clock starts once its machines are registered; it runs 30 s past that (to
# connect and settle), the window, and a margin, then prints its summary and exits.
EMPORIUM_ADMIN_TOKEN=bench-admin-token-0123456789abcdef "$bin" vm-sim --gateway "$grpc" --http "$http" \
  --machines "$machines" --heartbeat-ms "$heartbeat_ms" --sales-per-min "$sales" \
  --duration "$((30 + duration + 10))s" \
  --json "$work/sim.json" >"$work/sim.out" 2>"$work/sim.err" &
sim=$!

ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
metric() { curl -sf "$http/metrics" | awk -v m="$1" '$1 == m {v = $2} END {print v + 0}'; }

# Warm-up: registration, then every machine connected (bounded), then 5 s to settle.
for _ in $(seq 1 600); do
  [ "$(metric emporium_grpc_sessions)" -ge "$machines" ] && break
  kill -0 "$sim" 2>/dev/null || { cat "$work/sim.err"; exit 1; }
  sleep 0.5
done
sleep 5
echo "sessions before the window: $(metric emporium_grpc_sessions) of $machines"
s0=$(cpu "$pid"); c0=$(cpu "$sim"); a0=$(metric emporium_grpc_messages_total); t0=$(date +%s.%N)
sleep "$duration"
s1=$(cpu "$pid"); c1=$(cpu "$sim"); a1=$(metric emporium_grpc_messages_total); t1=$(date +%s.%N)
echo "sessions after the window:  $(metric emporium_grpc_sessions) of $machines"
echo "sessions opened in all: $(metric emporium_grpc_sessions_opened_total)"
elapsed=$(echo "$t1 - $t0" | bc -l)
printf 'window: %.1f s\n' "$elapsed"
printf 'server CPU: %.1f%% of one core\n' "$(echo "($s1 - $s0) / $ticks / $elapsed * 100" | bc -l)"
printf 'vm-sim CPU: %.1f%% of one core\n' "$(echo "($c1 - $c0) / $ticks / $elapsed * 100" | bc -l)"
printf 'machine messages applied and acked: %.0f/s\n' "$(echo "($a1 - $a0) / $elapsed" | bc -l)"
grep -E 'VmRSS|VmHWM' "/proc/$pid/status" | sed 's/^/server /'
echo "data dir: $(du -sh "$work/data" | cut -f1)"
wait "$sim" || echo "vm-sim exited non-zero: see its summary"
cat "$work/sim.out"
