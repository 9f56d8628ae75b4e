#!/usr/bin/env python3
"""A webhook receiver for emporium, with the standard library only (docs/WEBHOOKS.md).

It verifies each delivery's Standard Webhooks signature, refuses stale timestamps,
deduplicates on `webhook-id` (deliveries are at least once), and prints each event.

    python3 scripts/webhook-receiver.py --secret whsec_... --port 8081
    python3 scripts/webhook-receiver.py --selftest
"""

import argparse
import base64
import hashlib
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

TOLERANCE_S = 5 * 60  # refuse a timestamp further than this from now (replay guard)


class Invalid(Exception):
    pass


def verify(secret: str, headers, body: bytes, now: float | None = None) -> dict:
    """Returns the event if the delivery is authentic; raises Invalid otherwise."""
    msg_id = headers.get("webhook-id")
    ts = headers.get("webhook-timestamp")
    sigs = headers.get("webhook-signature")
    if not (msg_id and ts and sigs):
        raise Invalid("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        ts_int = int(ts)
    except ValueError:
        raise Invalid("webhook-timestamp is not an integer")
    now = time.time() if now is None else now
    if abs(now - ts_int) > TOLERANCE_S:
        raise Invalid("webhook-timestamp is too old or too new")
    if not secret.startswith("whsec_"):
        raise Invalid("the secret starts with whsec_")
    key = base64.b64decode(secret[len("whsec_"):])
    signed = msg_id.encode() + b"." + ts.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    # During a secret rotation the header carries two signatures; any one may match.
    for sig in sigs.split(" "):
        version, _, value = sig.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return json.loads(body)
    raise Invalid("no signature matches")


def selftest() -> None:
    # The Standard Webhooks specification's example, which emporium's signer also passes.
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert verify(secret, headers, body, now=1614265330) == {"test": 2432232314}
    for bad_body, now in [(b'{"test": 1}', 1614265330), (body, 1614265330 + 3600)]:
        try:
            verify(secret, headers, bad_body, now=now)
            raise SystemExit("selftest: a bad delivery verified")
        except Invalid:
            pass
    print("selftest: ok")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--secret")
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument("--selftest", action="store_true")
    args = ap.parse_args()
    if args.selftest:
        return selftest()
    if not args.secret:
        ap.error("--secret is required")
    seen: set[str] = set()  # a real receiver keeps this in its database, bounded by age

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            try:
                event = verify(args.secret, self.headers, body)
            except Invalid as e:
                self.send_response(400)
                self.end_headers()
                print(f"refused: {e}", file=sys.stderr)
                return
            msg_id = self.headers["webhook-id"]
            if msg_id not in seen:
                seen.add(msg_id)
                print(json.dumps(event), flush=True)
            self.send_response(204)  # 2xx: done; a redelivery of a seen id is acked too
            self.end_headers()

        def log_message(self, *_):
            pass

    HTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
