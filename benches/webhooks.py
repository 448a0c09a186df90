#!/usr/bin/env python3
"""Webhook delivery benchmark (run through `benches/run.sh`, or alone after a release build).

Starts the gateway (load.BIN) on the sandbox engine with the sessions and webhooks plugins,
a local receiver (node's http module: it answers 204 and notes when each delivery
arrived), and TARGETS webhooks subscribed to `message`. Incoming messages are injected
through the sandbox's control API; each becomes TARGETS durable deliveries (written to
redb before the first attempt), signed and POSTed to the receiver.

  1. throughput: EVENTS events injected as fast as the control API takes them; the
     deliveries/s from the first to the last arrival;
  2. latency under API load: events paced at RATE/s (RATE·TARGETS deliveries/s) while
     wrk keeps the API busy (getSession); event → delivered p50/p99, from the envelope's
     `timestamp` (the gateway's clock when the event was published) to the arrival.

Knobs: TARGETS=10 EVENTS=3000 RATE=200 PACED_SECS=10 CONNS=16.
Goal (issue 15): >= 2,000 deliveries/s with p99 < 100 ms on the 2-core machine.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load import http, launch, percentile  # noqa: E402

TARGETS = int(os.environ.get("TARGETS", "10"))
EVENTS = int(os.environ.get("EVENTS", "3000"))
RATE = int(os.environ.get("RATE", "200"))
PACED_SECS = int(os.environ.get("PACED_SECS", "10"))
CONNS = int(os.environ.get("CONNS", "16"))

RECEIVER = r"""
const http = require('http');
let arrivals = [];
http.createServer((req, res) => {
  if (req.method === 'GET') {
    const body = JSON.stringify(arrivals);
    if (req.url === '/_reset') arrivals = [];
    res.writeHead(200, {'content-type': 'application/json'}); res.end(body); return;
  }
  const chunks = [];
  req.on('data', c => chunks.push(c));
  req.on('end', () => {
    const now = Date.now();
    const env = JSON.parse(Buffer.concat(chunks));
    arrivals.push([now, env.timestamp, req.headers['webhook-id'], !!req.headers['webhook-signature']]);
    res.writeHead(204); res.end();
  });
}).listen(0, '127.0.0.1', function () { console.log(this.address().port); });
"""


def log(message):
    print(f"[webhooks bench] {message}", file=sys.stderr, flush=True)


def start(tmp):
    proc, api, admin, _ = launch(tmp, ["plugins/sessions", "plugins/webhooks"], """
[engine.sandbox]
auto_pair = true
connect_delay_ms = 10
[events]
max_queued_per_session = 100000
[webhooks]
allow_http = true
allow_private_targets = true
""")
    return proc, api, admin


def arrivals(port, reset=False):
    url = f"http://127.0.0.1:{port}/{'_reset' if reset else '_all'}"
    with urllib.request.urlopen(url) as r:
        return json.loads(r.read())


def main():
    tmp = tempfile.mkdtemp(prefix="gateway-webhooks-bench-")
    receiver = subprocess.Popen(["node", "-e", RECEIVER], stdout=subprocess.PIPE, text=True)
    port = int(receiver.stdout.readline())
    proc, api, admin = start(tmp)
    try:
        _, created = http("POST", f"{admin}/admin/api-keys",
                          {"organization": "org_bench", "name": "bench", "permissions": ["read", "send", "manage"]},
                          {"content-type": "application/json"})
        auth = {"Authorization": f"Bearer {created['secret']}"}
        headers = {**auth, "content-type": "application/json"}
        _, s = http("POST", f"{api}/api/v1/sessions", {"label": "bench", "start": True}, auth)
        session = s["id"]
        deadline = time.time() + 60
        while http("GET", f"{api}/api/v1/sessions/{session}", None, auth)[1]["status"] != "working":
            if time.time() > deadline:
                sys.exit("the session never paired")
            time.sleep(0.1)
        for n in range(TARGETS):
            st, w = http("POST", f"{api}/api/v1/webhooks",
                         {"url": f"http://127.0.0.1:{port}/t{n}", "events": ["message"]}, headers)
            if st != 201:
                sys.exit(f"createWebhook answered {st}: {w}")
        inject = f"{admin}/sandbox/sessions/{session}/events"
        seq = [0]

        def event():
            seq[0] += 1
            return {"event": "message", "payload": {
                "id": f"3EB0BENCH{seq[0]:012d}", "chat": "6281234567890@s.whatsapp.net",
                "sender": "6281234567890@s.whatsapp.net", "fromMe": False, "type": "text",
                "text": "bench", "timestamp": 1719662400000}}

        def wait_for(count, limit=300):
            end = time.time() + limit
            while True:
                got = arrivals(port)
                if len(got) >= count or time.time() > end:
                    return got
                time.sleep(0.2)

        # 1. Throughput.
        log(f"{TARGETS} webhooks; injecting {EVENTS} events")
        for _ in range(EVENTS):
            st, r = http("POST", inject, event(), {"content-type": "application/json"})
            if st != 200:
                sys.exit(f"inject answered {st}: {r}")
        got = wait_for(EVENTS * TARGETS)
        first = min(a[0] for a in got)
        last = max(a[0] for a in got)
        throughput = len(got) / max((last - first) / 1000, 0.001)
        signed = all(a[3] for a in got)
        log(f"{len(got)} deliveries in {(last - first) / 1000:.1f} s")
        arrivals(port, reset=True)

        # 2. Latency at a paced rate while wrk loads the API.
        script = None
        wrk = subprocess.Popen(["wrk", "-t1", f"-c{CONNS}", f"-d{PACED_SECS + 2}s", "-H",
                                f"Authorization: {auth['Authorization']}",
                                f"{api}/api/v1/sessions/{session}"],
                               stdout=subprocess.PIPE, text=True) if shutil.which("wrk") else None
        time.sleep(1)
        sent = 0
        started = time.time()
        while time.time() - started < PACED_SECS:
            due = started + sent / RATE
            if time.time() < due:
                time.sleep(due - time.time())
            http("POST", inject, event(), {"content-type": "application/json"})
            sent += 1
        paced_rate = sent / (time.time() - started)
        got = wait_for(sent * TARGETS, limit=120)
        api_rps = None
        if wrk:
            out = wrk.communicate()[0]
            m = re.search(r"Requests/sec:\s+([\d.]+)", out)
            api_rps = float(m.group(1)) if m else None
        lat = [a[0] - a[1] for a in got]
        print(f"\nWebhooks: {TARGETS} targets, one local receiver, sandbox engine, {os.cpu_count()} cores\n")
        print(f"sustained deliveries    {throughput:>8.0f}/s  ({EVENTS} events × {TARGETS} targets, every one signed: {signed})")
        print(f"event → delivered       p50 {percentile(lat, 0.5)} ms  p99 {percentile(lat, 0.99)} ms  max {max(lat)} ms  "
              f"at {paced_rate * TARGETS:.0f} deliveries/s ({len(got)} of {sent * TARGETS} arrived)"
              + (f", API serving {api_rps:.0f} req/s (wrk -c{CONNS} getSession)" if api_rps else ""))
        ok = throughput >= 2000 and percentile(lat, 0.99) < 100
        print(f"\ntarget: >= 2000 deliveries/s with p99 < 100 ms → {'met' if ok else 'MISSED'}")
    finally:
        proc.terminate()
        proc.wait()
        receiver.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
