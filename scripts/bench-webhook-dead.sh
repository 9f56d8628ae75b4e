#!/usr/bin/env bash
# Checkout latency with and without a webhook endpoint that never answers (issue 15: a
# dead endpoint must not change checkout latency; p99 within 20%).
#
# One release node on loopback (allow_private_targets on, for the local endpoint). The
# "dead" endpoint is a local TCP server that accepts every connection, reads, and never
# answers, so every delivery attempt waits for webhooks.timeout_ms. It is registered
# with events ["*"] (every event of every checkout is queued for it) and toggled with
# PATCH between rounds, so the two conditions alternate on the same warm node:
#   round i: A = endpoint disabled, B = endpoint enabled (its queue carried over).
# Attempts time out after 500 ms and retry from 100 ms (instead of 5 s and 1 s), so that
# during each B run the endpoint's slots are full of hanging attempts and timeouts and
# retries keep happening; each run starts 1 s after the toggle, once the slots fill.
# Each run is `emporium loadgen --mix checkout --requests N`. Bounded: ROUNDS x 2 runs.
#
#   scripts/bench-webhook-dead.sh [REQUESTS=200] [USERS=8] [ROUNDS=5]
set -euo pipefail
requests=${1:-200}
users=${2:-8}
rounds=${3:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release --quiet
bin=./target/release/emporium
token=bench-admin-token-0123456789abcdef

work=$(mktemp -d)
cleanup() {
  for p in ${pid:-} ${dead:-}; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The dead endpoint: accepts, reads, never answers (connections closed at exit).
python3 - "$work/dead.port" <<'PY' &
import asyncio, sys
async def hold(reader, writer):
    try:
        while await reader.read(65536):
            pass
    except Exception:
        pass
async def main():
    srv = await asyncio.start_server(hold, "127.0.0.1", 0)
    open(sys.argv[1], "w").write(str(srv.sockets[0].getsockname()[1]))
    await srv.serve_forever()
asyncio.run(main())
PY
dead=$!
for _ in $(seq 1 100); do [ -s "$work/dead.port" ] && break; sleep 0.1; done

EMPORIUM_ADMIN_TOKEN=$token EMPORIUM_LOG__LEVEL=warn EMPORIUM_RATE_LIMIT__ENABLED=false \
  EMPORIUM_WEBHOOKS__ALLOW_PRIVATE_TARGETS=true EMPORIUM_WEBHOOKS__TIMEOUT_MS=500 \
  EMPORIUM_WEBHOOKS__RETRY_INITIAL_MS=100 \
  "$bin" serve --http-addr 127.0.0.1:0 --data-dir "$work/data" >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do [ -s "$work/data/http.addr" ] && break; sleep 0.1; done
base="http://$(cat "$work/data/http.addr")"
for _ in $(seq 1 100); do curl -sf "$base/health/ready" >/dev/null && break; sleep 0.1; done

auth=(-H "Authorization: Bearer $token" -H 'content-type: application/json')
hook=$(curl -sf "${auth[@]}" -X POST "$base/v1/webhooks" \
  -d "{\"url\":\"http://127.0.0.1:$(cat "$work/dead.port")/hook\",\"events\":[\"*\"],\"description\":\"never answers\"}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
toggle() {
  curl -sf "${auth[@]}" -X PATCH "$base/v1/webhooks/$hook" -d "{\"enabled\":$1}" >/dev/null
  sleep 1
}

run() { # run NAME SEED
  EMPORIUM_ADMIN_TOKEN=$token "$bin" loadgen --target "$base" --mix checkout --users "$users" \
    --requests "$requests" --duration 120s --seed "$2" --quiet --json "$work/$1.json" >/dev/null ||
    echo "!! loadgen $1 had errors: its figure does not count"
  python3 - "$work/$1.json" "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
op = next(o for o in r["summary"]["ops"] if o["op"] == "checkout")
print(f'{sys.argv[2]:<10} clean={r["clean"]} checkouts ok={op["ok"]} errors={op["errors"]} '
      f'p50={op["p50_ms"]:.2f} ms p99={op["p99_ms"]:.2f} ms max={op["max_ms"]:.2f} ms')
PY
}
outcomes() { curl -sf "$base/metrics" | grep '^emporium_webhook_deliveries_total' || echo "(no outcomes yet)"; }

echo "\$ emporium loadgen --mix checkout --users $users --requests $requests (per run)"
toggle false
run warmup 100 >/dev/null
for i in $(seq 1 "$rounds"); do
  toggle false
  run "A$i" "$i"
  toggle true
  run "B$i" "$((i + 50))"
done
echo "the dead endpoint's delivery outcomes at the end:"
outcomes
python3 - "$work" "$rounds" <<'PY'
import json, sys, statistics
work, rounds = sys.argv[1], int(sys.argv[2])
def p99(n):
    r = json.load(open(f"{work}/{n}.json"))
    return next(o for o in r["summary"]["ops"] if o["op"] == "checkout")["p99_ms"]
a = [p99(f"A{i}") for i in range(1, rounds + 1)]
b = [p99(f"B{i}") for i in range(1, rounds + 1)]
ma, mb = statistics.median(a), statistics.median(b)
print(f"median p99 of {rounds} runs without the endpoint: {ma:.2f} ms; with it: {mb:.2f} ms; "
      f"ratio {mb / ma:.2f}")
PY
