#!/usr/bin/env bash
# Fuzzes the HTTP API from outside with schemathesis, against the served OpenAPI document:
# every route, with `--checks all --mode all` (positive and negative data, the stateful
# phase included), once per role: shopper, operator and admin (the bootstrap token).
# Usage: scripts/api-fuzz.sh [EXAMPLES_PER_OPERATION] (default 25).
# It starts the debug binary with the demo catalog on 127.0.0.1 (port 0, a temporary data
# dir), installs schemathesis with pip if missing, and prints each role's summary; the
# full reports land in target/api-fuzz/<role>/. Exit status: 0 only if every role passed.
set -euo pipefail
n=${1:-25}
cd "$(dirname "$0")/.."
command -v st >/dev/null || { echo "== installing schemathesis"; pip install -q schemathesis; }
cargo build -q
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
admin=api-fuzz-admin-token-0123456789abcdef
EMPORIUM_ADMIN_TOKEN=$admin EMPORIUM_RATE_LIMIT__ENABLED=false \
  target/debug/emporium serve --demo --http-addr 127.0.0.1:0 --grpc-addr 127.0.0.1:0 \
  --data-dir "$dir/data" >"$dir/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do [ -s "$dir/data/http.addr" ] && break; sleep 0.1; done
base="http://$(cat "$dir/data/http.addr")"
for _ in $(seq 1 300); do curl -sf "$base/health/ready" >/dev/null && break; sleep 0.1; done
echo "== server at $base"
# A shopper and an operator, registered and logged in over the API itself.
token() { # email role
  local creds="{\"email\":\"$1\",\"password\":\"correct horse battery\"}"
  local id
  id=$(curl -sf -X POST "$base/v1/auth/register" -d "$creds" | python3 -c 'import json,sys;print(json.load(sys.stdin)["user_id"])')
  if [ "$2" != shopper ]; then
    curl -sf -X PUT "$base/v1/admin/users/$id/roles" -H "Authorization: Bearer $admin" \
      -d "{\"roles\":[\"$2\"]}" >/dev/null
  fi
  curl -sf -X POST "$base/v1/auth/login" -d "$creds" | python3 -c 'import json,sys;print(json.load(sys.stdin)["access_token"])'
}
declare -A tokens=([shopper]=$(token shopper@example.com shopper) [operator]=$(token operator@example.com operator) [admin]=$admin)
status=0
for role in shopper operator admin; do
  out="target/api-fuzz/$role"
  mkdir -p "$out"
  echo "== $role: st run --checks all --mode all -n $n"
  set +e
  st run "$base/openapi.json" --checks all --mode all -n "$n" --seed 1 \
    -H "Authorization: Bearer ${tokens[$role]}" --request-timeout 30 \
    --report junit --report-dir "$out" --no-color >"$out/st.log" 2>&1
  rc=$?
  set -e
  grep -E "^(Test cases|API Operations|Test Phases|Failures|Warnings)|passed|failed|errored|[0-9]+ (failures|generated)" "$out/st.log" | tail -8 || true
  echo "   exit $rc (full log: $out/st.log)"
  [ "$rc" = 0 ] || status=1
done
exit $status
