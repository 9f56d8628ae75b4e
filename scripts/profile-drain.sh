#!/usr/bin/env bash
# Profile of a drain: a 2-node cluster on loopback, 200,000 carts created through d1, then
# `perf record -e cpu-clock -F 499 -g` on both nodes while d2 leaves (d2 sends, d1
# receives). Prints the drain time, the per-partition handoff times and the top symbols of
# each node, with the per-phase medians of a handoff (freeze, drain of actors, stream, epoch). Needs perf and a release build (`cargo build --release`). Loopback only.
#   scripts/profile-drain.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/emporium
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 2; }
WORK=$(mktemp -d /tmp/emporium-prof.XXXXXX)
# shellcheck source=lib/cluster.sh
. scripts/lib/cluster.sh
start d1 ""; SEED=$(cat "$WORK/d1/data/cluster.addr"); start d2 "$SEED"
wait_settled d1 2
create_carts "$(http d1)" 200000
perf record -e cpu-clock -F 499 -g -o "$WORK/d2.perf" -p "$(cat "$WORK/d2/pid")" 2>/dev/null &
PERF2=$!
perf record -e cpu-clock -F 499 -g -o "$WORK/d1.perf" -p "$(cat "$WORK/d1/pid")" 2>/dev/null &
PERF1=$!
sleep 1
T0=$(date +%s.%N)
curl -fs -X POST -H "Authorization: Bearer $EMPORIUM_ADMIN_TOKEN" "http://$(http d2)/v1/cluster/leave" >/dev/null
for _ in $(seq 1 6000); do status d1 | python3 -c "import json,sys; s=json.load(sys.stdin); sys.exit(0 if len(s['members'])==1 and not s['moving'] else 1)" && break; sleep 0.05; done
T1=$(date +%s.%N)
kill -INT $PERF1 $PERF2; wait $PERF1 $PERF2 2>/dev/null || true
echo "drain: $(python3 -c "print(f'{$T1-$T0:.2f}')") s"
grep '"partition handed off"' "$WORK/d2/log" | python3 -c "
import json,sys
rows=[json.loads(l) for l in sys.stdin]; rows=[r.get('fields',r) for r in rows]
ms=sorted(int(r['ms']) for r in rows)
print(f'{len(ms)} partitions; per-partition ms median {ms[len(ms)//2]}, max {ms[-1]}')
for ph in ('freeze_ms','drain_ms','stream_ms','epoch_ms'):
    v=sorted(int(r.get(ph,0)) for r in rows)
    print(f'  {ph}: median {v[len(v)//2]}, max {v[-1]}, sum {sum(v)}')"
set +o pipefail  # `head` closes the pipes below early
for n in d2 d1; do
  echo "== $n (sender d2, receiver d1): perf report --no-children --sort symbol"
  perf report -i "$WORK/$n.perf" --no-children --sort symbol --stdio 2>/dev/null | grep -E '^# Event count'
  perf report -i "$WORK/$n.perf" --no-children --sort symbol --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -10 | cut -c1-110
  perf report -i "$WORK/$n.perf" --no-children --sort comm --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -3
done
