#!/usr/bin/env bash
# Cluster benchmarks on loopback: forwarded against local reads (req/s, p50, p99 via wrk),
# the handoff time when a 4th node joins a cluster holding N carts, and the time to
# detect a SIGKILLed node. Usage: scripts/bench-cluster.sh [CARTS] [DURATION_S]
# Needs wrk (Debian package `wrk`; installed if missing).
set -euo pipefail
CARTS=${1:-100000}
DUR=${2:-10}
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || sudo -n apt-get install -y wrk >/dev/null 2>&1 || apt-get install -y wrk >/dev/null
cargo build --release --quiet
BIN=$PWD/target/release/emporium
WORK=$(mktemp -d /tmp/emporium-bench-cluster.XXXXXX)
# shellcheck source=lib/cluster.sh
. scripts/lib/cluster.sh

start node1 ""
SEED=$(cat "$WORK/node1/data/cluster.addr")
start node2 "$SEED"; wait_settled node1 2
start node3 "$SEED"; wait_settled node1 3
N1=$(http node1)
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; 3 nodes on loopback"

# --- forwarded against local reads ---------------------------------------------------
curl -fs -X PUT -H "Authorization: Bearer $EMPORIUM_ADMIN_TOKEN" -H 'content-type: application/json' \
  -d '{"name":"Bench","price_minor":100,"category":"bench"}' "http://$N1/v1/products/BENCH-1" >/dev/null
OWNERS=$(status node1)
pick() { # wanted-owner -> a cart id whose owner is $1
  for _ in $(seq 1 200); do
    local id; id=$(curl -fs -X POST "http://$N1/v1/carts" | python3 -c "import json,sys; print(json.load(sys.stdin)['id'])")
    if echo "$OWNERS" | python3 -c "
import json,sys
s=json.load(sys.stdin); h=0xcbf29ce484222325
for b in bytes([2])+b'$id': h=((h^b)*0x100000001b3)&0xffffffffffffffff
sys.exit(0 if s['owners'][h%s['partitions']]=='$1' else 1)"; then echo "$id"; return; fi
  done
}
LOCAL=$(pick node1); REMOTE=$(pick node2)
for kind in local forwarded; do
  id=$LOCAL; [ $kind = forwarded ] && id=$REMOTE
  echo "== GET /v1/carts/{id} through node1, cart owned by $([ $kind = local ] && echo node1 || echo node2) ($kind): wrk -t2 -c32 -d${DUR}s --latency"
  wrk -t2 -c32 -d"${DUR}s" --latency "http://$N1/v1/carts/$id" | grep -E "Requests/sec|^ +50%|^ +99%|Non-2xx|errors"
done
echo "== remote ask (node1's emporium_cluster_remote_ask_seconds: send to reply, both hops and the owner's work)"
curl -fs "http://$N1/metrics" | python3 -c "
import re, sys
b = [(float('inf') if m.group(1) == '+Inf' else float(m.group(1)), float(m.group(2)))
     for m in re.finditer(r'^emporium_cluster_remote_ask_seconds_bucket\{le=\"([^\"]+)\"\} (\S+)', sys.stdin.read(), re.M)]
b.sort(); total = b[-1][1]
def q(f):  # histogram_quantile: linear within the bucket
    want, lo, prev = f * total, 0.0, 0.0
    for le, c in b:
        if c >= want:
            return lo + (le - lo) * ((want - prev) / (c - prev) if c > prev else 0)
        lo, prev = le, c
print(f'remote asks {int(total)}; p50 {q(0.5)*1000:.2f} ms, p99 {q(0.99)*1000:.2f} ms (interpolated within histogram buckets)')
"

# --- handoff time with N carts -------------------------------------------------------
echo "== creating $CARTS carts through node1 (32 keep-alive clients, POST /v1/carts)"
create_carts "$N1" "$CARTS"
T0=$(date +%s.%N)
start node4 "$SEED"
wait_settled node1 4
T1=$(date +%s.%N)
python3 - "$WORK" "$T0" "$T1" <<'PY'
import json, sys, glob
work, t0, t1 = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
parts = recs = 0; ms = []
for f in glob.glob(work + "/node[123]/log"):
    for line in open(f):
        if '"partition handed off"' in line and '"to":"node4"' in line:
            d = json.loads(line); d = d.get("fields", d); parts += 1; recs += int(d["records"]); ms.append(int(d["ms"]))
ms.sort()
print(f"join of node4: {parts} partitions, {recs} records moved; from node4 start to a settled 4-node map: {t1-t0:.2f} s; per-partition handoff ms: median {ms[len(ms)//2] if ms else '-'}, max {ms[-1] if ms else '-'}")
PY

# --- detection time of a killed node ---------------------------------------------------
for round in 1 2 3; do
  kill -9 "$(cat "$WORK/node3/pid")"
  T0=$(date +%s%N)
  for _ in $(seq 1 2000); do
    status node1 | python3 -c "import json,sys; s=json.load(sys.stdin); sys.exit(0 if any(m['name']=='node3' and m['status']=='down' for m in s['members']) else 1)" && break
    sleep 0.01
  done
  echo "round $round: node3 marked down by node1 $(( ($(date +%s%N) - T0) / 1000000 )) ms after SIGKILL"
  "$BIN" serve --config "$WORK/node3/node.toml" --data-dir "$WORK/node3/data" --http-addr 127.0.0.1:0 \
    --grpc-addr 127.0.0.1:0 --log-format json >> "$WORK/node3/log" 2>&1 &
  PIDS+=($!); echo $! > "$WORK/node3/pid"
  wait_settled node1 4
done

# --- drain of a node holding about CARTS entities -------------------------------------
for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; PIDS=()
start drain1 ""
DSEED=$(cat "$WORK/drain1/data/cluster.addr")
start drain2 "$DSEED"; wait_settled drain1 2
echo "== a 2-node cluster; creating $((2 * CARTS)) carts through drain1"
create_carts "$(http drain1)" $((2 * CARTS))
T0=$(date +%s.%N)
curl -fs -X POST -H "Authorization: Bearer $EMPORIUM_ADMIN_TOKEN" "http://$(http drain2)/v1/cluster/leave" >/dev/null
for _ in $(seq 1 6000); do
  status drain1 | python3 -c "import json,sys; s=json.load(sys.stdin); sys.exit(0 if len(s['members'])==1 and not s['moving'] else 1)" && break
  sleep 0.05
done
T1=$(date +%s.%N)
python3 - "$WORK" "$T0" "$T1" <<'PY'
import json, sys
work, t0, t1 = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
parts = recs = 0
for line in open(work + "/drain2/log"):
    if '"partition handed off"' in line:
        d = json.loads(line); d = d.get("fields", d); parts += 1; recs += int(d["records"])
print(f"drain of drain2: {parts} partitions, {recs} records moved; from POST /v1/cluster/leave to drain2 out of the map: {t1-t0:.2f} s")
PY
