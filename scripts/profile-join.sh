#!/usr/bin/env bash
# Where a join's time goes: a 3-node cluster on loopback holding CARTS carts (default
# 100,000, created through node1), then node4 starts and joins. Prints node4's own
# timeline (process start to ready, to a 4-node map, to a settled map) and the per-phase
# medians of the handoffs to node4 (freeze, drain of actors, stream, epoch; stale copies are dropped after), from
# the senders' logs. Needs a release build (`cargo build --release`). Loopback only.
#   scripts/profile-join.sh [CARTS]
set -euo pipefail
CARTS=${1:-100000}
cd "$(dirname "$0")/.."
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/emporium
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 2; }
WORK=$(mktemp -d /tmp/emporium-join.XXXXXX)
# shellcheck source=lib/cluster.sh
. scripts/lib/cluster.sh
start node1 ""; SEED=$(cat "$WORK/node1/data/cluster.addr")
start node2 "$SEED"; wait_settled node1 2
start node3 "$SEED"; wait_settled node1 3
create_carts "$(http node1)" "$CARTS"
sleep 1
T0=$(date +%s.%N)
start node4 "$SEED"
T_READY=$(date +%s.%N)
for _ in $(seq 1 3000); do
  status node1 | python3 -c "import json,sys; s=json.load(sys.stdin); sys.exit(0 if len(s['members'])==4 else 1)" && break
  sleep 0.02
done
T_MEMBER=$(date +%s.%N)
wait_settled node1 4
T1=$(date +%s.%N)
python3 - "$WORK" "$T0" "$T_READY" "$T_MEMBER" "$T1" <<'PY'
import json, sys, glob
work, t0, ready, member, t1 = sys.argv[1], *map(float, sys.argv[2:])
print(f"node4: ready after {ready-t0:.2f} s, a member after {member-t0:.2f} s, settled after {t1-t0:.2f} s")
rows = []
for f in sorted(glob.glob(work + "/node[123]/log")):
    for line in open(f):
        if '"partition handed off"' in line and '"to":"node4"' in line:
            d = json.loads(line); rows.append(d.get("fields", d))
ms = sorted(int(r["ms"]) for r in rows)
print(f"{len(rows)} partitions, {sum(int(r['records']) for r in rows)} records; per-partition ms median {ms[len(ms)//2]}, max {ms[-1]}")
for ph in ("freeze_ms", "drain_ms", "stream_ms", "epoch_ms"):
    v = sorted(int(r.get(ph, 0)) for r in rows)
    print(f"  {ph}: median {v[len(v)//2]}, max {v[-1]}, sum {sum(v)}")
PY
