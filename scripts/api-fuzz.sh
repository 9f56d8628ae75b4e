#!/usr/bin/env bash
# Fuzzes the HTTP API against its own OpenAPI document with schemathesis.
#
# Starts a release build of emporium on loopback with a fresh data dir, the demo
# catalog, a known bootstrap admin token and rate limiting off, then runs schemathesis
# against http://ADDR/openapi.json with two checks: no 5xx (`not_a_server_error`) and
# every response matches the documented schema (`response_schema_conformance`).
#
# First a scripted flow through the whole shop (paid, declined, fulfilled, refunded
# orders, users and tokens), each response validated against the document with
# schemathesis's Python API, since random inputs rarely reach those states. Then two
# `st run` passes, so that every route is reached with a credential it accepts:
#   1. as a registered user with every role (its JWT): /v1/me, claims, carts it owns;
#   2. as the bootstrap admin token (`Authorization: Bearer fuzz`).
# One worker: schemathesis's threads can trip a CPython 3.11 ast.parse race.
# Bounded: MAX_EXAMPLES cases per operation and a time limit per pass; loopback only.
# Exits non-zero when the flow or either pass fails (schemathesis's status first).
#
#   scripts/api-fuzz.sh [MAX_EXAMPLES=50] [TIME_LIMIT_S=600]
#   SEED=1 scripts/api-fuzz.sh     # a reproducible run
set -euo pipefail
max_examples=${1:-50}
time_limit=${2:-600}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if ! command -v st >/dev/null; then
  python3 -m pip install --quiet schemathesis
fi
cargo build --release --quiet

work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

EMPORIUM_ADMIN_TOKEN=fuzz EMPORIUM_RATE_LIMIT__ENABLED=false EMPORIUM_LOG__LEVEL=warn \
  EMPORIUM_AUTH__ACCESS_TOKEN_TTL_S=7200 \
  ./target/release/emporium serve --demo --http-addr 127.0.0.1:0 --data-dir "$work/data" \
  >"$work/server.log" 2>&1 &
pid=$!

for _ in $(seq 1 300); do [ -s "$work/data/http.addr" ] && break; sleep 0.1; done
if [ ! -s "$work/data/http.addr" ]; then
  echo "api-fuzz: the server did not start; its log:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
base="http://$(cat "$work/data/http.addr")"
ready=
for _ in $(seq 1 300); do
  if curl -sf "$base/health/ready" >/dev/null; then ready=1; break; fi
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "api-fuzz: $base never became ready; its log:" >&2
  cat "$work/server.log" >&2
  exit 1
fi

# A user with every role, for the first pass.
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
creds='{"email":"fuzz-admin@example.com","password":"fuzz-password-123"}'
user_id=$(curl -sf -X POST "$base/v1/auth/register" -H 'content-type: application/json' \
  -d "$creds" | json_field user_id)
curl -sf -X PUT "$base/v1/admin/users/$user_id/roles" -H 'Authorization: Bearer fuzz' \
  -H 'content-type: application/json' -d '{"roles":["shopper","operator","admin"]}' >/dev/null
user_token=$(curl -sf -X POST "$base/v1/auth/login" -H 'content-type: application/json' \
  -d "$creds" | json_field access_token)

# A scripted walk through the whole shop (products, stock, carts, checkout paid and
# declined, fulfil, refund, cancel, the audit trail, users and tokens), every response
# checked against the document. Random inputs rarely reach these states, so this is
# what checks the order, cart and event schemas on real data.
flow_status=0
echo "=== api-fuzz: scripted flow ==="
BASE="$base" USER_TOKEN="$user_token" python3 - <<'PY' || flow_status=$?
import os, sys, uuid
import requests
import schemathesis

base = os.environ["BASE"]
schema = schemathesis.openapi.from_url(base + "/openapi.json")
staff = {"Authorization": "Bearer " + os.environ["USER_TOKEN"]}
boot = {"Authorization": "Bearer fuzz"}
checked, failures = 0, []

def call(method, template, expect, path=None, **kw):
    global checked
    r = requests.request(method, base + (path or template), timeout=10, **kw)
    checked += 1
    where = f"{method} {path or template} -> {r.status_code}"
    if r.status_code not in expect:
        failures.append(f"{where}: expected {expect}: {r.text[:300]}")
    try:
        schema[template][method].validate_response(r)
    except BaseExceptionGroup as group:  # schemathesis's FailureGroup
        for e in group.exceptions:
            failures.append(f"{where}: does not match the document: {e}\n  body: {r.text[:500]}")
    except Exception as e:
        failures.append(f"{where}: does not match the document: {e}\n  body: {r.text[:500]}")
    return r.json() if r.content and r.headers.get("content-type", "").startswith("application/json") else None

card = {"card_number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}
declined = dict(card, card_number="4000000000000002")

call("GET", "/health/live", [200]); call("GET", "/health/ready", [200])
page = call("GET", "/v1/products", [200], params={"limit": 2})
first = page["items"][0]["sku"]
call("GET", "/v1/products", [200], params={"limit": 2, "cursor": page["next_cursor"]})
call("GET", "/v1/products", [400], params={"limit": 0})
call("GET", "/v1/products/{sku}", [200], path=f"/v1/products/{first}")
call("GET", "/v1/products/{sku}", [404], path="/v1/products/NOPE-404")
call("GET", "/v1/inventory/{sku}", [200], path=f"/v1/inventory/{first}")

# Catalog writes by staff, with the audit trail.
sku = "FLOW-" + uuid.uuid4().hex[:8]
product = {"name": "Flow mug", "price_minor": 990, "category": "flow", "tags": ["a"]}
call("PUT", "/v1/products/{sku}", [201], path=f"/v1/products/{sku}", headers=staff, json=product)
call("PUT", "/v1/products/{sku}", [200], path=f"/v1/products/{sku}", headers=boot,
     json=dict(product, description="now described"))
call("PUT", "/v1/products/{sku}", [401], path=f"/v1/products/{sku}", json=product)
call("POST", "/v1/inventory/{sku}/adjustments", [200], path=f"/v1/inventory/{sku}/adjustments",
     headers=staff, json={"delta": 5, "reason": "restock"})
call("POST", "/v1/inventory/{sku}/adjustments", [400], path=f"/v1/inventory/{sku}/adjustments",
     headers=staff, json={"delta": 0, "reason": "nothing"})
for kind in ("product", "inventory"):
    call("GET", "/v1/admin/entities/{kind}/{id}/events", [200],
         path=f"/v1/admin/entities/{kind}/{sku}/events", headers=staff)

# A guest cart, paid, fulfilled and refunded; a replayed checkout.
cart = call("POST", "/v1/carts", [201])
cid = cart["id"]
call("POST", "/v1/carts/{id}/items", [200], path=f"/v1/carts/{cid}/items", json={"sku": first, "quantity": 2})
call("POST", "/v1/carts/{id}/items", [200], path=f"/v1/carts/{cid}/items", json={"sku": sku, "quantity": 1})
call("PUT", "/v1/carts/{id}/items/{sku}", [200], path=f"/v1/carts/{cid}/items/{first}", json={"quantity": 3})
call("DELETE", "/v1/carts/{id}/items/{sku}", [200], path=f"/v1/carts/{cid}/items/{sku}")
call("GET", "/v1/carts/{id}", [200], path=f"/v1/carts/{cid}")
key = {"Idempotency-Key": uuid.uuid4().hex}
body = {"email": "guest@example.com", "payment": card}
order = call("POST", "/v1/carts/{id}/checkout", [201, 202], path=f"/v1/carts/{cid}/checkout", headers=key, json=body)
call("POST", "/v1/carts/{id}/checkout", [201, 202], path=f"/v1/carts/{cid}/checkout", headers=key, json=body)
call("POST", "/v1/carts/{id}/checkout", [409], path=f"/v1/carts/{cid}/checkout", headers=key,
     json=dict(body, email="other@example.com"))
call("POST", "/v1/carts/{id}/checkout", [400], path=f"/v1/carts/{cid}/checkout", json=body)
call("GET", "/v1/carts/{id}", [200], path=f"/v1/carts/{cid}")
oid = order["id"]
call("GET", "/v1/orders/{id}", [200], path=f"/v1/orders/{oid}")
call("POST", "/v1/orders/{id}/cancel", [409], path=f"/v1/orders/{oid}/cancel")
call("POST", "/v1/orders/{id}/fulfil", [200, 202], path=f"/v1/orders/{oid}/fulfil", headers=staff)
call("POST", "/v1/orders/{id}/fulfil", [401], path=f"/v1/orders/{oid}/fulfil",
     headers={"Authorization": "Bearer not-a-token"})
call("POST", "/v1/orders/{id}/refund", [200, 202], path=f"/v1/orders/{oid}/refund", headers=boot)
call("GET", "/v1/orders/{id}", [200], path=f"/v1/orders/{oid}")
for kind, ident in (("order", oid), ("cart", cid)):
    call("GET", "/v1/admin/entities/{kind}/{id}/events", [200],
         path=f"/v1/admin/entities/{kind}/{ident}/events", headers=staff)

# A declined card: the order is cancelled with a failure.
cart2 = call("POST", "/v1/carts", [201])["id"]
call("POST", "/v1/carts/{id}/items", [200], path=f"/v1/carts/{cart2}/items", json={"sku": first, "quantity": 1})
o2 = call("POST", "/v1/carts/{id}/checkout", [201, 202], path=f"/v1/carts/{cart2}/checkout",
          headers={"Idempotency-Key": uuid.uuid4().hex}, json={"email": "d@example.com", "payment": declined})
call("GET", "/v1/orders/{id}", [200], path=f"/v1/orders/{o2['id']}")

# A shopper: register, tokens, profile, an owned cart claimed and ordered.
email = f"flow-{uuid.uuid4().hex[:8]}@example.com"
creds = {"email": email, "password": "flow-password-1"}
reg = call("POST", "/v1/auth/register", [201], json=creds)
call("POST", "/v1/auth/register", [409], json=creds)
call("POST", "/v1/auth/register", [400], json={"email": "nope", "password": "flow-password-1"})
call("POST", "/v1/auth/login", [401], json=dict(creds, password="wrong-password-1"))
pair = call("POST", "/v1/auth/login", [200], json=creds)
pair2 = call("POST", "/v1/auth/refresh", [200], json={"refresh_token": pair["refresh_token"]})
call("POST", "/v1/auth/refresh", [401], json={"refresh_token": pair["refresh_token"]})
pair = call("POST", "/v1/auth/login", [200], json=creds)
me = {"Authorization": "Bearer " + pair["access_token"]}
call("GET", "/v1/me", [200], headers=me)
call("GET", "/v1/me", [401])
call("GET", "/v1/me", [403], headers=boot)
call("PATCH", "/v1/me", [200], headers=me, json={"name": "Flow Shopper", "phone": "+44 20 7946 0958"})
call("PATCH", "/v1/me", [400], headers=me, json={"phone": "x"})
guest = call("POST", "/v1/carts", [201])["id"]
call("POST", "/v1/carts/{id}/claim", [200], path=f"/v1/carts/{guest}/claim", headers=me)
call("POST", "/v1/carts/{id}/items", [200], path=f"/v1/carts/{guest}/items", headers=me, json={"sku": first, "quantity": 1})
call("GET", "/v1/carts/{id}", [404], path=f"/v1/carts/{guest}")
o3 = call("POST", "/v1/carts/{id}/checkout", [201, 202], path=f"/v1/carts/{guest}/checkout",
          headers=dict(me, **{"Idempotency-Key": uuid.uuid4().hex}), json={"email": email, "payment": card})
call("GET", "/v1/me/orders", [200], headers=me, params={"limit": 1})
call("GET", "/v1/orders/{id}", [404], path=f"/v1/orders/{o3['id']}")
call("POST", "/v1/orders/{id}/refund", [403], path=f"/v1/orders/{o3['id']}/refund", headers=me)
call("PUT", "/v1/admin/users/{user_id}/roles", [403], path=f"/v1/admin/users/{reg['user_id']}/roles",
     headers=me, json={"roles": ["admin"]})
call("PUT", "/v1/admin/users/{user_id}/roles", [200], path=f"/v1/admin/users/{reg['user_id']}/roles",
     headers=boot, json={"roles": ["shopper", "operator"]})
call("PUT", "/v1/admin/users/{user_id}/roles", [400], path=f"/v1/admin/users/{reg['user_id']}/roles",
     headers=boot, json={"roles": ["king"]})
call("GET", "/v1/admin/entities/{kind}/{id}/events", [200],
     path=f"/v1/admin/entities/user/{reg['user_id']}/events", headers=staff)
call("POST", "/v1/auth/logout", [204], json={"refresh_token": pair["refresh_token"]})
call("POST", "/v1/auth/refresh", [401], json={"refresh_token": pair["refresh_token"]})

# Archive last: the product stays readable.
call("DELETE", "/v1/products/{sku}", [200], path=f"/v1/products/{sku}", headers=staff)
call("POST", "/v1/carts/{id}/items", [409], path=f"/v1/carts/{cart2}/items", json={"sku": sku, "quantity": 1})
call("GET", "/v1/products/{sku}", [200], path=f"/v1/products/{sku}")

for f in failures:
    print("FAIL", f)
print(f"flow: {checked} responses checked against the document, {len(failures)} failed")
sys.exit(1 if failures else 0)
PY

seed_args=()
[ -n "${SEED:-}" ] && seed_args=(--seed "$SEED")
fuzz() { # NAME TOKEN
  echo
  echo "=== api-fuzz pass: $1 ==="
  timeout --signal=INT --kill-after=30 "$time_limit" \
    st run "$base/openapi.json" \
      --checks not_a_server_error,response_schema_conformance \
      -H "Authorization: Bearer $2" \
      --max-examples "$max_examples" \
      --request-timeout 10 \
      --workers 1 \
      "${seed_args[@]}"
}
status=0
fuzz "admin user (JWT)" "$user_token" || status=$?
pass2=0
fuzz "bootstrap admin token" fuzz || pass2=$?
[ "$status" -eq 0 ] && status=$pass2
[ "$status" -eq 0 ] && status=$flow_status

if ! kill -0 "$pid" 2>/dev/null; then
  echo "api-fuzz: the server died during the run; its log:" >&2
  tail -n 100 "$work/server.log" >&2
  [ "$status" -eq 0 ] && status=1
fi
exit "$status"
