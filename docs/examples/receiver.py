#!/usr/bin/env python3
"""A minimal workflow-system receiver for aupd's webhooks.

Verifies each message the Standard Webhooks way (HMAC-SHA256 over
"id.timestamp.body", constant-time compare, five-minute tolerance), prints
the event type and the idempotency key of the order it carries, and answers
204. Usage: WEBHOOK_SECRET=whsec_... python3 docs/examples/receiver.py 9000
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

SECRET = os.environ["WEBHOOK_SECRET"]
KEY = base64.b64decode(SECRET.removeprefix("whsec_"))


def verified(headers, body: bytes) -> bool:
    msg_id = headers.get("webhook-id", "")
    ts = headers.get("webhook-timestamp", "0")
    if not ts.isdigit() or abs(time.time() - int(ts)) > 300:
        return False
    expected = base64.b64encode(
        hmac.new(KEY, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    )
    for sig in headers.get("webhook-signature", "").split(" "):
        version, _, value = sig.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            return True
    return False


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if not verified(self.headers, body):
            self.send_response(401)
            self.end_headers()
            print("refused a message with a bad signature", flush=True)
            return
        msg = json.loads(body)
        print(msg["type"], msg["idempotency_key"], "dry_run" if msg.get("dry_run") else "", flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    HTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 9000), Handler).serve_forever()
