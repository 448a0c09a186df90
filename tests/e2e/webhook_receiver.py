"""A webhook receiver for the end-to-end tests.

Every delivery is verified with the reference Standard Webhooks library (PyPI
`standardwebhooks`), never with the gateway's own code, and recorded. Each path behaves as
the test configures it over `POST /_control`: the secret to verify with, the status to
answer (and `Retry-After`), a delay, or a redirect. `GET /_log` answers what arrived.
For every verified delivery the receiver also checks that the library refuses the same
request with a tampered body and with a timestamp 10 minutes old.
"""

import base64
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

LOCK = threading.Lock()
CONTROL = {}  # path -> {secret, status, delay, location}
LOG = []


def refuses(wh, body, headers):
    try:
        wh.verify(body, headers)
        return False
    except WebhookVerificationError:
        return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/_log"):
            with LOCK:
                body = json.dumps(LOG).encode()
            return self.answer(200, body, {"content-type": "application/json"})
        self.answer(404)

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        if self.path == "/_control":
            c = json.loads(body)
            with LOCK:
                CONTROL.setdefault(c["path"], {}).update(c)
            return self.answer(204)
        path = self.path.split("?")[0]
        with LOCK:
            c = dict(CONTROL.get(path, {}))
        headers = {k.lower(): v for k, v in self.headers.items()}
        record = {
            "path": path,
            "at": time.time(),
            "id": headers.get("webhook-id"),
            "event": headers.get("x-wa-event"),
            "delivery": headers.get("x-wa-delivery"),
            "attempt": headers.get("x-wa-attempt"),
            "signature": headers.get("webhook-signature"),
            "headers": headers,
            "body": body.decode("utf-8", "replace"),
        }
        secrets = c.get("secrets") or ([c["secret"]] if c.get("secret") else [])
        record["verified_with"] = []
        for i, secret in enumerate(secrets):
            wh = Webhook(secret)
            try:
                wh.verify(body, headers)
            except WebhookVerificationError as e:
                record.setdefault("errors", []).append(f"secret {i}: {e}")
                continue
            record["verified_with"].append(i)
            tampered = body[:-1] + (b" " if body[-1:] != b" " else b"x")
            old = dict(headers)
            old["webhook-timestamp"] = str(int(time.time()) - 600)
            record["tamper_refused"] = refuses(wh, tampered, headers) and refuses(wh, body, old)
        record["verified"] = bool(record["verified_with"])
        with LOCK:
            LOG.append(record)
        if c.get("delay"):
            time.sleep(c["delay"])
        if c.get("location"):
            return self.answer(302, b"", {"location": c["location"]})
        if not record["verified"] and secrets:
            return self.answer(400, b"signature not verified")
        status = c.get("status", 200)
        extra = {"retry-after": str(c["retry_after"])} if c.get("retry_after") else {}
        self.answer(status, f"answered {status} for {path}".encode(), extra)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
