#!/usr/bin/env bash
# Kill -9 chaos, measured: ROUNDS rounds of the real binary under a mixed load (cart
# writes, checkouts with good and declined cards, app purchases at a simulated vending
# machine over gRPC, its cash vends, inventory adjustments). Each round starts the load,
# kills the server with SIGKILL at a random moment (0.5-3 s, seeded and printed),
# restarts it on the same data directory and the same ports, lets the load reconnect,
# stops the load, and runs `emporium chaos check`: every acknowledged write present,
# stock conserved, every order terminal, no unit sold twice. One line per round, a
# summary at the end; exits non-zero at the first violation, with the server log tail.
#
#   scripts/chaos-kill9.sh ROUNDS [--release]      (CHAOS_SEED=n to repeat a run,
#                                                   CHAOS_KEEP=1 to keep the ledger and logs)
#
# Debug build by default (CI reuses the `cargo test` build); --release for long runs.
# Loopback only; every wait is bounded; children are killed on exit.
set -euo pipefail
rounds=${1:?usage: scripts/chaos-kill9.sh ROUNDS [--release]}
[[ $rounds =~ ^[0-9]+$ ]] && [ "$rounds" -ge 1 ] || { echo "ROUNDS must be a positive integer" >&2; exit 2; }
profile=debug
build=(cargo build --quiet)
if [ "${2:-}" = "--release" ]; then
  profile=release
  build=(cargo build --quiet --release)
fi
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"${build[@]}"
bin=${CARGO_TARGET_DIR:-$root/target}/$profile/emporium

seed=${CHAOS_SEED:-$(( $(date +%s) % 100000 ))}
RANDOM=$seed
work=$(mktemp -d -t emporium-chaos.XXXXXX)
data=$work/data
ledger=$work/ledger.jsonl
log=$work/server.log
server=""
load=""
ok=0

cleanup() {
  [ -n "$load" ] && kill -9 "$load" 2>/dev/null || true
  # The last server stops cleanly (SIGTERM), within 10 s, else it is killed.
  if [ -n "$server" ] && kill -TERM "$server" 2>/dev/null; then
    wait_gone "$server" 100 || kill -9 "$server" 2>/dev/null || true
  fi
  { wait; } 2>/dev/null || true
  if [ "$ok" = 1 ] && [ -z "${CHAOS_KEEP:-}" ]; then rm -rf "$work"; else echo "chaos-kill9: kept $work (ledger, server log)" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  echo "chaos-kill9: $1" >&2
  echo "--- server log tail ($log) ---" >&2
  tail -n 40 "$log" >&2 || true
  exit "${2:-1}"
}

# Waits up to $2 tenths of a second for process $1 to end.
wait_gone() {
  for _ in $(seq 1 "$2"); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  return 1
}

# Starts the server on the given addresses (port 0 the first time).
start_server() {
  rm -f "$data/http.addr" "$data/grpc.addr"
  EMPORIUM_RATE_LIMIT__ENABLED=false EMPORIUM_LOG__LEVEL=warn \
  EMPORIUM_VENDING__HEARTBEAT_INTERVAL_S=1 \
  EMPORIUM_VENDING__COMMAND_RESEND_MS=500 \
  EMPORIUM_VENDING__DISPENSE_TIMEOUT_MS=4000 \
    "$bin" serve --http-addr "$1" --grpc-addr "$2" --data-dir "$data" >>"$log" 2>&1 &
  server=$!
  for _ in $(seq 1 300); do
    [ -s "$data/grpc.addr" ] && [ -s "$data/http.addr" ] && return 0
    kill -0 "$server" 2>/dev/null || fail "the server exited at start" 2
    sleep 0.1
  done
  fail "the server did not write its addresses within 30 s" 2
}

started=$(date +%s.%N)
mkdir -p "$data"
echo "chaos-kill9: $rounds rounds, seed $seed, $profile build, data in $data"
start_server 127.0.0.1:0 127.0.0.1:0
http=$(cat "$data/http.addr")
grpc=$(cat "$data/grpc.addr")
for _ in $(seq 1 100); do [ -s "$data/admin.token" ] && break; sleep 0.1; done
export EMPORIUM_ADMIN_TOKEN
EMPORIUM_ADMIN_TOKEN=$(cat "$data/admin.token")
for _ in $(seq 1 300); do curl -sf "http://$http/health/ready" >/dev/null && break; sleep 0.1; done
"$bin" chaos seed --addr "$http" --ledger "$ledger" --seed "$seed" || fail "seeding failed" 2

total_acked=0
total_orders=0
total_unknown=0
for round in $(seq 1 "$rounds"); do
  echo "=== round $round" >>"$log"
  "$bin" chaos load --addr "$http" --grpc-addr "$grpc" --ledger "$ledger" \
    --seed $(( seed * 1000 + round )) >"$work/load.out" 2>"$work/load.err" &
  load=$!
  delay_ms=$(( 500 + RANDOM % 2501 ))
  sleep "$(( delay_ms / 1000 )).$(printf '%03d' $(( delay_ms % 1000 )))"
  kill -0 "$load" 2>/dev/null || { cat "$work/load.err" >&2; fail "round $round: the load exited early" 2; }
  kill -9 "$server"
  wait "$server" 2>/dev/null || true
  echo "=== round $round: killed after $delay_ms ms, restarting" >>"$log"
  start_server "$http" "$grpc"
  # Let the load reconnect and replay against the restarted server before stopping it.
  sleep 1
  kill -TERM "$load"
  wait_gone "$load" 400 || fail "round $round: the load did not stop within 40 s" 2
  load_rc=0
  wait "$load" || load_rc=$?
  load=""
  [ "$load_rc" = 0 ] || { cat "$work/load.err" >&2; fail "round $round: the load failed ($load_rc)" 2; }
  check_rc=0
  timeout 120 "$bin" chaos check --addr "$http" --ledger "$ledger" >"$work/check.out" 2>&1 || check_rc=$?
  line=$(tail -n 1 "$work/load.out")
  acked=$(sed -nE 's/.*acked ([0-9]+) writes.*/\1/p' <<<"$line")
  orders=$(sed -nE 's/.* ([0-9]+) orders.*/\1/p' <<<"$line")
  unknown=$(sed -nE 's/.* ([0-9]+) unknown.*/\1/p' <<<"$line")
  total_acked=$(( total_acked + ${acked:-0} ))
  total_orders=$(( total_orders + ${orders:-0} ))
  total_unknown=$(( total_unknown + ${unknown:-0} ))
  secs="$(( delay_ms / 1000 )).$(( delay_ms % 1000 / 100 ))"
  case "$check_rc" in
    0) echo "round $round/$rounds: killed after $secs s; acked ${acked:-0} writes, ${orders:-0} orders, ${unknown:-0} unknown; check ok" ;;
    1)
      echo "round $round/$rounds: killed after $secs s; acked ${acked:-0} writes, ${orders:-0} orders, ${unknown:-0} unknown; VIOLATION"
      cat "$work/check.out"
      fail "round $round: violation (ledger $ledger)" 1
      ;;
    *)
      cat "$work/check.out" >&2
      fail "round $round: the check could not run ($check_rc)" 2
      ;;
  esac
done
wall=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo "summary: $rounds rounds, $total_acked acked writes, $total_orders orders, $total_unknown unknown, violations 0, wall time $wall s (seed $seed, $profile)"
tail -n 1 "$work/check.out"
ok=1
