#!/usr/bin/env bash
# emporium side by side with the stack it replaces, on this machine, in one run.
#
# Builds release, starts on loopback (each in a temporary directory, all stopped at exit):
#   - emporium (fsync'd group commit, rate limits off: one client IP sends everything),
#   - Redis with appendonly yes + appendfsync always,
#   - PostgreSQL with synchronous_commit=on (and fsync on),
#   - the warp "hello" example (examples/hello.rs),
# then runs each pair at the same concurrency and prints the figures and their ratios:
#   1. redis-benchmark -t incr          vs  emporium loadgen --mix cart-writes
#   2. pgbench -N                       vs  emporium loadgen --mix checkout
#   3. loadgen --mix get on hello       vs  emporium loadgen --mix cart-reads
# Redis and PostgreSQL come from Debian's packages; they are installed if missing.
# Bounded: each run lasts DURATION seconds (Redis: REDIS_REQUESTS requests).
#
#   scripts/bench-peers.sh [DURATION_S=30] [CLIENTS=64]
# Env: REDIS_REQUESTS (default 40000 per second of DURATION), PGBENCH_SCALE (default 10),
#      KEEP=1 keeps the work directory (logs, JSON reports).
set -euo pipefail
duration=${1:-30}
clients=${2:-64}
redis_requests=${REDIS_REQUESTS:-$((40000 * duration))}
pg_scale=${PGBENCH_SCALE:-10}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

need_pkgs=()
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || need_pkgs+=(redis-server redis-tools)
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
{ [ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ] && command -v pgbench >/dev/null; } || need_pkgs+=(postgresql postgresql-contrib)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "installing ${need_pkgs[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
command -v python3 >/dev/null || { echo "python3 is needed to read the JSON reports" >&2; exit 2; }

echo "== build (release)"
cargo build --release --quiet
cargo build --release --quiet --example hello
bin=./target/release/emporium

work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
  [ -n "${pg_data:-}" ] && [ -f "$pg_data/postmaster.pid" ] &&
    runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_data" -m immediate stop >/dev/null 2>&1 || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP:-}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # wait_for SECONDS CMD...: bounded wait until CMD succeeds
  local until=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge "$until" ] && { echo "gave up waiting for: $*" >&2; return 1; }
    sleep 0.1
  done
}

echo "== machine"
echo "nproc: $(nproc); memory: $(free -g | awk '/Mem:/{print $2}') GiB; disk: $(df -h "$work" | awk 'NR==2{print $1" "$2}') ($(lsblk -ndo ROTA "$(df "$work" | awk 'NR==2{print $1}')" 2>/dev/null | tr -d ' ' | sed 's/1/rotational/;s/0/non-rotational/' || echo unknown))"
echo "redis: $(redis-server --version | awk '{print $3}'); postgres: $("$pg_bin/postgres" --version | awk '{print $3}')"

echo "== start emporium, Redis, PostgreSQL and hello on loopback"
token=bench-admin-token-$RANDOM$RANDOM-0123456789abcdef
EMPORIUM_ADMIN_TOKEN=$token EMPORIUM_LOG__LEVEL=warn EMPORIUM_RATE_LIMIT__ENABLED=false \
  "$bin" serve --http-addr 127.0.0.1:0 --grpc-addr 127.0.0.1:0 --data-dir "$work/emporium" \
  >"$work/emporium.log" 2>&1 &
pids+=($!)
wait_for 30 test -s "$work/emporium/http.addr"
emporium="http://$(cat "$work/emporium/http.addr")"
wait_for 30 curl -sf "$emporium/health/ready"

redis_port=$(free_port)
mkdir -p "$work/redis"
redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$work/redis" --save '' \
  --appendonly yes --appendfsync always >"$work/redis.log" 2>&1 &
pids+=($!)
wait_for 30 redis-cli -p "$redis_port" ping
echo "redis: appendonly=$(redis-cli -p "$redis_port" config get appendonly | tail -1), appendfsync=$(redis-cli -p "$redis_port" config get appendfsync | tail -1)"

pg_port=$(free_port)
pg_data="$work/pg"
mkdir -p "$pg_data" && chown postgres "$pg_data"
runuser -u postgres -- "$pg_bin/initdb" -D "$pg_data" -A trust -U postgres >"$work/initdb.log" 2>&1
mkdir -p "$work/pglog" && chown postgres "$work/pglog"
runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_data" -l "$work/pglog/pg.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_data -c synchronous_commit=on -c fsync=on -c max_connections=200" \
  start >/dev/null
psql_() { psql -h 127.0.0.1 -p "$pg_port" -U postgres -qAt "$@"; }
echo "postgres: synchronous_commit=$(psql_ -c 'show synchronous_commit'), fsync=$(psql_ -c 'show fsync')"
pgbench -h 127.0.0.1 -p "$pg_port" -U postgres -i -q -s "$pg_scale" postgres >"$work/pgbench-init.log" 2>&1

"./target/release/examples/hello" 127.0.0.1:0 >"$work/hello.addr" 2>"$work/hello.log" &
pids+=($!)
wait_for 30 test -s "$work/hello.addr"
hello="http://$(head -1 "$work/hello.addr")"

# loadgen NAME TARGET ARGS...: a run whose errors fail the comparison.
loadgen() {
  local name=$1 target=$2; shift 2
  echo "\$ emporium loadgen --target $target --users $clients --duration ${duration}s $*"
  if EMPORIUM_ADMIN_TOKEN=$token "$bin" loadgen --target "$target" --users "$clients" \
      --duration "${duration}s" --quiet --json "$work/$name.json" "$@"; then
    :
  else
    echo "!! loadgen $name had errors or could not run: its figure does not count"
  fi
}
field() { # field NAME OP KEY: a number from a loadgen JSON report (op "all" = overall)
  python3 - "$work/$1.json" "$2" "$3" <<'PY'
import json, sys
path, op, key = sys.argv[1:]
try:
    r = json.load(open(path))
except Exception:
    print("nan"); sys.exit()
s = r["summary"]
row = s["overall"] if op == "all" else next((o for o in s["ops"] if o["op"] == op), None)
clean = r["clean"]
print(row[key] if (row and clean) else "nan")
PY
}

echo
echo "== 1. durable writes: Redis INCR (AOF always) vs emporium add-to-cart"
echo "\$ redis-benchmark -p PORT -t incr -c $clients -n $redis_requests --csv"
redis-benchmark -p "$redis_port" -t incr -c "$clients" -n "$redis_requests" --csv | tee "$work/redis.csv"
redis_rps=$(awk -F'","' '/INCR/{print $2}' "$work/redis.csv")
redis_p99=$(awk -F'","' '/INCR/{print $7}' "$work/redis.csv")
loadgen cart-writes "$emporium" --mix cart-writes
cw_rps=$(field cart-writes add_to_cart ok_per_s)
cw_p99=$(field cart-writes add_to_cart p99_ms)

echo
echo "== 2. orders: pgbench -N (synchronous_commit=on) vs emporium checkout"
echo "\$ pgbench -N -c $clients -j 2 -T $duration (scale $pg_scale)"
pgbench -h 127.0.0.1 -p "$pg_port" -U postgres -N -c "$clients" -j 2 -T "$duration" postgres 2>&1 |
  tee "$work/pgbench.txt" | grep -E 'tps|latency|failed|processed'
pg_tps=$(awk '/^tps = /{print $3; exit}' "$work/pgbench.txt")
loadgen checkout "$emporium" --mix checkout
co_rps=$(field checkout order ok_per_s)
co_p99=$(field checkout order p99_ms)
oversold=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["stock"]["oversold"] if r.get("stock") else "nan")' "$work/checkout.json" 2>/dev/null || echo nan)

echo
echo "== 3. reads: warp hello vs emporium cart read"
loadgen hello "$hello" --mix get --path /
hello_rps=$(field hello get ok_per_s)
loadgen cart-reads "$emporium" --mix cart-reads
cr_rps=$(field cart-reads view_cart ok_per_s)

echo
echo "== result ($clients clients, ${duration}s runs, one machine: load generators and servers share $(nproc) cores)"
python3 - "$redis_rps" "$redis_p99" "$cw_rps" "$cw_p99" "$pg_tps" "$co_rps" "$co_p99" "$oversold" "$hello_rps" "$cr_rps" <<'PY'
import math, sys
v = [float(x) if x not in ("", "nan") else math.nan for x in sys.argv[1:]]
redis, redis_p99, cw, cw_p99, pg, co, co_p99, oversold, hello, cr = v
def ratio(a, b): return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan
rows = [
    ("add-to-cart / Redis INCR", f"{cw:,.0f} req/s (p99 {cw_p99:.1f} ms)", f"{redis:,.0f} ops/s (p99 {redis_p99:.1f} ms)", ratio(cw, redis), 1.5,
     not math.isnan(cw_p99) and cw_p99 < 10),
    ("checkout / pgbench -N", f"{co:,.0f} orders/s (p99 {co_p99:.1f} ms)", f"{pg:,.0f} TPS", ratio(co, pg), 2.0,
     oversold == 0),
    ("cart read / warp hello", f"{cr:,.0f} req/s", f"{hello:,.0f} req/s", ratio(cr, hello), 0.6, True),
]
print(f"{'pair':<26} {'emporium':<34} {'peer':<34} {'ratio':>6} {'target':>7}  met")
for name, ours, peer, r, target, extra in rows:
    met = "yes" if (not math.isnan(r) and r >= target and extra) else "no"
    print(f"{name:<26} {ours:<34} {peer:<34} {r:>6.2f} {'>= ' + str(target):>7}  {met}")
print(f"checkout oversold units: {oversold:.0f}" if not math.isnan(oversold) else "checkout oversold units: unknown (run not clean)")
PY
