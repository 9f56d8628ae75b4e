# Shared by the cluster scripts (bench-cluster.sh, profile-drain.sh): the environment of a
# loopback cluster and the helpers that start nodes, read their addresses and status, wait
# for a settled map and create carts. The caller sets BIN (the binary) and WORK (a temp
# dir) and sources this file. Loopback only.
# shellcheck shell=bash
export EMPORIUM_CLUSTER_COOKIE=bench-cluster-cookie-0123456789
export EMPORIUM_ADMIN_TOKEN=bench-admin-token-0123456789abcdef
export EMPORIUM_RATE_LIMIT__ENABLED=false
export EMPORIUM_LOG__LEVEL=info
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

start() { # name seed-or-empty -> starts, waits for readiness, echoes nothing
  local n=$1 seed=$2 dir=$WORK/$1
  mkdir -p "$dir"
  cat > "$dir/node.toml" <<TOML
[cluster]
enabled = true
node_name = "$n"
listen_addr = "127.0.0.1:0"
seeds = [${seed:+\"$seed\"}]
TOML
  "$BIN" serve --config "$dir/node.toml" --data-dir "$dir/data" --http-addr 127.0.0.1:0 \
    --grpc-addr 127.0.0.1:0 --log-format json > "$dir/log" 2>&1 &
  PIDS+=($!); echo $! > "$dir/pid"
  for _ in $(seq 1 600); do
    [ -s "$dir/data/http.addr" ] && curl -fs "http://$(cat "$dir/data/http.addr")/health/ready" >/dev/null && return 0
    sleep 0.1
  done
  echo "node $n did not become ready" >&2; tail -20 "$dir/log" >&2; exit 1
}
http() { cat "$WORK/$1/data/http.addr"; }
status() { curl -fs -H "Authorization: Bearer $EMPORIUM_ADMIN_TOKEN" "http://$(http "$1")/v1/cluster"; }
settled() { # node members
  status "$1" | python3 -c "import json,sys; s=json.load(sys.stdin); m=s['members']; sys.exit(0 if len(m)==$2 and all(x['status']=='alive' for x in m) and not s['moving'] and s['quorum'] else 1)"
}
wait_settled() { for _ in $(seq 1 3000); do settled "$1" "$2" && return 0; sleep 0.05; done; echo "not settled" >&2; exit 1; }

create_carts() { # http-addr count
  python3 - "$1" "$2" <<'PY'
import http.client, sys, threading, time
addr, total = sys.argv[1], int(sys.argv[2])
host, port = addr.split(":")
lock = threading.Lock(); left = [total]; errors = {}
def worker():
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    while True:
        with lock:
            if left[0] == 0: return
            left[0] -= 1
        c.request("POST", "/v1/carts", headers={"Content-Length": "0"})
        r = c.getresponse(); r.read()
        if r.status != 201:
            with lock: errors[r.status] = errors.get(r.status, 0) + 1
t = time.time()
ts = [threading.Thread(target=worker) for _ in range(32)]
[x.start() for x in ts]; [x.join() for x in ts]
print(f"created {total - sum(errors.values())} carts in {time.time()-t:.1f} s, errors by status: {errors or 'none'}")
PY
}

