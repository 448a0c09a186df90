#!/usr/bin/env python3
"""Outbox benchmark (run through `benches/run.sh`, or alone after a release build).

Starts the gateway (load.BIN) on the sandbox engine with the sessions, messages and chats
plugins, pairs a session, and measures:

  1. durable async accepts: `POST /sessions/{s}/messages?async=true` with wrk at CONNS
     connections — every 202 is answered only after its item (and the Idempotency-Key
     record, and the messages plugin's pending row) is committed to redb; requests/s and
     p50/p99;
  2. how fast the queue drains: the time until every accepted item is `sent`;
  The session is created with `presenceTyping: false`: with it, each text shows "typing…"
  for up to a second before it goes, by design.

  3. accept→sent latency one at a time (p50/p99 over ACCEPT_SAMPLES sends), from the
     pending timestamp of the 202 to the sent timestamp of the item, both the gateway's
     clock.

Knobs: CONNS=64 THREADS=2 DURATION=10s ACCEPT_SAMPLES=200 WORKERS=(one per core).
"""

import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load import ROOT, THREADS, CONNS, DURATION, WORKERS, http, launch, percentile, wrk  # noqa: E402

SAMPLES = int(os.environ.get("ACCEPT_SAMPLES", "200"))
DRAIN_LIMIT = int(os.environ.get("DRAIN_LIMIT_SECS", "600"))


def log(message):
    print(f"[outbox bench] {message}", file=sys.stderr, flush=True)
ALICE = "6281234567890@s.whatsapp.net"


def start(tmp):
    proc, api, admin, _ = launch(tmp, [f"plugins/{p}" for p in ("sessions", "contacts", "messages", "chats")], f"""
[engine.sandbox]
world = "{ROOT}/examples/sandbox-world.json"
auto_pair = true
connect_delay_ms = 10
# Receipts much later than the run, so an item's timestamp stays the time it was sent.
delivered_after_ms = 3600000
[messages]
default_rate_per_min = 100000000
default_rate_per_hour = 1000000000
max_pending_per_session = 10000000
[quotas]
max_stored_bytes_per_org = 0
""")
    return proc, api, admin


def drain(api, session, auth, send, headers):
    """Waits until the session's queue is empty: the queue is FIFO per session, so once one
    more item sent now is out, every item before it is. Answers when."""
    st, marker = http("POST", f"{send}?async=true", {"type": "text", "to": ALICE, "text": "last"}, headers)
    if st != 202:
        sys.exit(f"async send answered {st}: {marker}")
    deadline = time.time() + DRAIN_LIMIT
    while True:
        st, item = http("GET", f"{api}/api/v1/sessions/{session}/outbox/{marker['outboxId']}", None, auth)
        if item["status"] != "pending":
            return time.time()
        if time.time() > deadline:
            sys.exit(f"the queue did not drain within {DRAIN_LIMIT} s")
        time.sleep(0.2)


def main():
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")
    tmp = tempfile.mkdtemp(prefix="gateway-outbox-bench-")
    proc, api, admin = start(tmp)
    try:
        _, created = http("POST", f"{admin}/admin/api-keys",
                          {"organization": "org_bench", "name": "bench", "permissions": ["read", "send", "manage"]},
                          {"content-type": "application/json"})
        auth = {"Authorization": f"Bearer {created['secret']}"}
        _, s = http("POST", f"{api}/api/v1/sessions", {"label": "bench", "start": True, "presenceTyping": False}, auth)
        session = s["id"]
        deadline = time.time() + 60
        while http("GET", f"{api}/api/v1/sessions/{session}", None, auth)[1]["status"] != "working":
            if time.time() > deadline:
                sys.exit("the session never paired")
            time.sleep(0.1)
        send = f"{api}/api/v1/sessions/{session}/messages"
        headers = {**auth, "content-type": "application/json"}

        # 3 first, on an idle gateway: accept→sent one at a time.
        log(f"session {session} working; {SAMPLES} sends one at a time")
        latencies = []
        for i in range(SAMPLES):
            st, r = http("POST", f"{send}?async=true", {"type": "text", "to": ALICE, "text": f"sample {i}"}, headers)
            if st != 202:
                sys.exit(f"async send answered {st}: {r}")
            accepted = r["timestamp"]
            while True:
                st, item = http("GET", f"{api}/api/v1/sessions/{session}/outbox/{r['outboxId']}", None, auth)
                if item["status"] != "pending":
                    break
                time.sleep(0.001)
            if item["status"] != "sent":
                sys.exit(f"item ended {item}")
            latencies.append(item["timestamp"] - accepted)

        # 1: durable accepts under load.
        log(f"accept→sent sampled; wrk -c{CONNS} -d{DURATION}")
        script = os.path.join(tmp, "send.lua")
        with open(script, "w") as f:
            f.write('wrk.method = "POST"\n'
                    f'wrk.body = {json.dumps(json.dumps({"type": "text", "to": ALICE, "text": "bench"}))}\n'
                    'wrk.headers["Content-Type"] = "application/json"\n')
        url = f"{send}?async=true"
        wrk(url, auth, script, duration="2s")
        drain(api, session, auth, send, headers)

        # 1a: accepts alone: the session is disconnected, so nothing is sent meanwhile and
        # the queue grows; then it reconnects and drains.
        control = f"{admin}/sandbox/sessions/{session}"
        http("POST", f"{control}/disconnect", None, {})
        alone = wrk(url, auth, script, pid=proc.pid)
        http("POST", f"{control}/reconnect", None, {})
        log(f"accepts alone: {alone['requests']} requests; draining")
        drain(api, session, auth, send, headers)

        # 1b: accepts while the queue drains at full speed (sends, receipts, events and the
        # message store's writes share the two cores and the disk with the accepts).
        started = time.time()
        result = wrk(url, auth, script, pid=proc.pid)
        load_end = time.time()
        log(f"load done: {result['requests']} requests; waiting for the queue to drain")
        drained = drain(api, session, auth, send, headers)
        total_items = result["requests"] - result["non2xx"]

        workers = f", worker_threads={WORKERS}" if WORKERS else ""
        print(f"\nOutbox: wrk -t{THREADS} -c{CONNS} -d{DURATION}, sandbox engine, {os.cpu_count()} cores{workers}\n")
        print(f"durable async accepts, session disconnected (accepts alone)   {alone['rps']:>8.0f}/s  p50 {alone['p50']:.2f} ms  "
              f"p99 {alone['p99']:.2f} ms  non-2xx {alone['non2xx']}  CPU {alone['cpu_us']:.1f} µs/req")
        print(f"durable async accepts while the queue drains   {result['rps']:>8.0f}/s  p50 {result['p50']:.2f} ms  p99 {result['p99']:.2f} ms  "
              f"non-2xx {result['non2xx']}  CPU {result['cpu_us']:.1f} µs/req")
        if result["errors"]:
            print(f"    {result['errors']}")
        print(f"queue drained           {total_items} items sent, last one {drained - load_end:.1f} s after the load "
              f"stopped ({total_items / (drained - started):.0f} items/s end to end)")
        print(f"accept→sent (idle)      p50 {percentile(latencies, 0.5)} ms  p99 {percentile(latencies, 0.99)} ms  "
              f"over {len(latencies)} sends")
        ok = alone["rps"] >= 3000 and alone["non2xx"] == 0
        print(f"\ntarget: >= 3000 durable accepts/s at {CONNS} connections (accepts alone) → {'met' if ok else 'MISSED'}")
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
