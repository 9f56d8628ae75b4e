#!/usr/bin/env bash
# Durable add-to-cart over HTTP: every 200 is acknowledged only after its fsync.
#
# Starts a release build of emporium on loopback with a fresh data dir, creates one
# product with stock and N carts, then drives POST /v1/carts/{id}/items with wrk
# (each request picks a cart at random), and prints wrk's summary with latency
# percentiles. Bounded: one run of DURATION seconds, loopback only.
#
#   scripts/bench-add-to-cart.sh [DURATION_S=20] [CONNECTIONS=64] [CARTS=1024]
set -euo pipefail
duration=${1:-20}
conns=${2:-64}
carts=${3:-1024}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --quiet

work=$(mktemp -d)
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

EMPORIUM_ADMIN_TOKEN=bench-admin-token-0123456789abcdef EMPORIUM_LOG__LEVEL=warn \
  ./target/release/emporium serve --http-addr 127.0.0.1:0 --data-dir "$work/data" >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do [ -s "$work/data/http.addr" ] && break; sleep 0.1; done
base="http://$(cat "$work/data/http.addr")"
for _ in $(seq 1 100); do curl -sf "$base/health/ready" >/dev/null && break; sleep 0.1; done

# 8 products: a cart line holds at most 1000 units, so adds are spread over 8 lines.
for i in 1 2 3 4 5 6 7 8; do
  curl -sf -X PUT "$base/v1/products/BENCH-$i" -H 'Authorization: Bearer bench' \
    -d '{"name":"Bench item","price_minor":100,"category":"bench"}' >/dev/null
done
: >"$work/carts.txt"
for _ in $(seq 1 "$carts"); do
  # One id per line (the JSON body has no trailing newline).
  printf '%s\n' "$(curl -sf -X POST "$base/v1/carts" | sed -E 's/.*"id":"([^"]+)".*/\1/')" >>"$work/carts.txt"
done

cat >"$work/add.lua" <<LUA
local carts = {}
for line in io.lines("$work/carts.txt") do carts[#carts + 1] = line end
local errors = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local body = '{"sku":"BENCH-' .. math.random(8) .. '","quantity":1}'
  return wrk.format(nil, "/v1/carts/" .. carts[math.random(#carts)] .. "/items", nil, body)
end
response = function(status, headers, body)
  if status ~= 200 then
    errors = errors + 1
    if errors == 1 then io.stderr:write("first error: " .. status .. " " .. body .. "\n") end
  end
end
done = function(summary, latency, requests)
  io.write(string.format("non-2xx: %d\n", summary.errors.status))
  for _, p in ipairs({50, 90, 99, 99.9}) do
    io.write(string.format("p%g: %.2f ms\n", p, latency:percentile(p) / 1000))
  end
end
LUA

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB RAM, disk $(df -h "$work" | awk 'NR==2{print $1}')"
echo "run: wrk -t2 -c$conns -d${duration}s over $carts carts"
wrk -t2 -c"$conns" -d"${duration}s" -s "$work/add.lua" "$base"
echo "--- fsync batch size (server metrics)"
curl -sf "$base/metrics" | grep -E '^emporium_journal_fsync_batch_size_(sum|count)' || true
