#!/usr/bin/env python3
"""Load benchmark of the gateway over loopback (run through `benches/run.sh`).

Starts the gateway binary (the release build, or PROFILE's) on the sandbox engine with a
seeded world, pairs a session, then drives it with wrk at fixed concurrency and prints
requests/s and p50/p99 latency for:

  /healthz (host only: the ceiling), getContact, listContacts?limit=50, unblockContact,
  /chaos/ok (the trivial plugin route: the pipeline without storage),

each with its ratio to the ceiling; then the hot-reload figures: time from a file change
to the new version serving, and request latency during plugin swaps versus without.
"""

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The gateway binary: BENCH_BIN, else the PROFILE build (release; `dist` is the deployment
# build) under CARGO_TARGET_DIR (default target/).
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
PROFILE = os.environ.get("PROFILE", "release")
BIN = os.environ.get("BENCH_BIN") or os.path.join(TARGET, PROFILE, "gateway")
CONNS = int(os.environ.get("CONNS", "64"))
THREADS = int(os.environ.get("THREADS", "2"))
DURATION = os.environ.get("DURATION", "10s")
# Each endpoint is measured once per round, the rounds interleaved, and the median round
# reported: on a shared 2-core machine one run's ceiling can be 20% off the next one's.
ROUNDS = int(os.environ.get("ROUNDS", "3"))
CONTACTS = int(os.environ.get("CONTACTS", "500"))
WORKERS = os.environ.get("WORKERS")  # server.worker_threads; unset = one per core
SWAPS = int(os.environ.get("SWAPS", "10"))


def http(method, url, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw and r.headers.get("content-type", "").startswith("application/json") else raw
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def world(path):
    contacts = [
        {"lid": f"{600000000000000 + i}@lid", "phone": f"1555{i:07d}", "name": f"Bench Person {i}",
         "about": "benchmarking", "dm": i % 2 == 0}
        for i in range(CONTACTS)
    ]
    groups = [
        {"jid": f"1203630000000{g:05d}@g.us", "subject": f"Group {g}",
         "participants": [{"lid": contacts[(g * 7 + k) % CONTACTS]["lid"], "role": "admin" if k == 0 else "member",
                           "tag": f"t{k}"} for k in range(20)]}
        for g in range(10)
    ]
    with open(path, "w") as f:
        json.dump({"contacts": contacts, "groups": groups}, f)
    return contacts[7]["lid"]


def ab_header(label):
    """The header of an A/B table (benches/auth.py, benches/logs.py)."""
    return f"\n{'gateway':40} {label:10} {'CPU µs/req':>11} {'req/s':>8} {'p99 ms':>7}"


def ab_row(binary, label, runs):
    """One gateway's row in an A/B table: median CPU per request and req/s, worst p99."""
    return (f"{binary[-40:]:40} {label:10} "
            f"{statistics.median(x['cpu_us'] for x in runs):11.1f} "
            f"{statistics.median(x['rps'] for x in runs):8.0f} "
            f"{max(x['p99'] for x in runs):7.2f}")


def launch(tmp, plugins, extra, watch=False, log=("warn", "text")):
    """Starts the gateway (`BIN`) in `tmp` with `plugins` (paths under target/, without
    .wasm), the TOML sections in `extra` and `log` = (level, format); returns (process,
    api, admin, config path)."""
    folder = os.path.join(tmp, "plugins")
    os.makedirs(folder, exist_ok=True)
    for plugin in plugins:
        shutil.copy(os.path.join(ROOT, "target", f"{plugin}.wasm"), folder)
    config = os.path.join(tmp, "gateway.toml")
    with open(config, "w") as f:
        f.write(f"""
[server]
listen = "127.0.0.1:0"
{'worker_threads = ' + str(int(WORKERS)) if WORKERS else ''}
[admin]
listen = "127.0.0.1:0"
[storage]
data_dir = "{tmp}/data"
[plugins]
dir = "{folder}"
watch = {"true" if watch else "false"}
watch_debounce_ms = 50
[log]
level = "{log[0]}"
format = "{log[1]}"
{extra}""")
    proc = subprocess.Popen([BIN, "--config", config, "serve"], stdout=subprocess.PIPE,
                            stderr=open(os.path.join(tmp, "gateway.log"), "w"), text=True)
    addrs = {}
    while len(addrs) < 2:
        line = proc.stdout.readline()
        if not line:
            sys.exit("gateway exited; see " + os.path.join(tmp, "gateway.log"))
        m = re.match(r"listening (\w+) (\S+)", line)
        if m:
            addrs[m.group(1)] = m.group(2)
    return proc, addrs["api"], addrs["admin"], config


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def start(tmp, watch=False):
    return launch(tmp, ["plugins/sessions", "plugins/contacts", "test-plugins/chaos"], f"""
[engine.sandbox]
world = "{tmp}/world.json"
auto_pair = true
connect_delay_ms = 10
""", watch)


WRK_LINE = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$")


def cpu_seconds(pid):
    """User + system CPU time the process has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url, headers, script=None, duration=DURATION, pid=None):
    cmd = ["wrk", f"-t{THREADS}", f"-c{CONNS}", f"-d{duration}", "--latency", "--timeout", "5s"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    cpu_before = cpu_seconds(pid) if pid else None
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(pid) - cpu_before if pid else None
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {}
    for line in out.splitlines():
        m = WRK_LINE.match(line)
        if m:
            scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(3)]
            lat[m.group(1)] = float(m.group(2)) * scale
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    total = re.search(r"(\d+) requests in", out)
    cpu_us = cpu * 1e6 / int(total.group(1)) if cpu is not None and total else None
    return {"rps": rps, "p50": lat.get("50"), "p99": lat.get("99"), "cpu_us": cpu_us,
            "non2xx": int(non2xx.group(1)) if non2xx else 0, "errors": errors.group(0) if errors else "",
            "requests": int(total.group(1)) if total else 0}


def main():
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")
    tmp = tempfile.mkdtemp(prefix="gateway-bench-")
    lid = world(os.path.join(tmp, "world.json"))
    proc, api, admin, _ = start(tmp)
    try:
        status, created = http("POST", f"{admin}/admin/api-keys",
                               {"organization": "org_bench", "name": "bench", "permissions": ["read", "send", "manage"]},
                               {"content-type": "application/json"})
        key = created["secret"]
        auth = {"Authorization": f"Bearer {key}"}
        status, s = http("POST", f"{api}/api/v1/sessions", {"label": "bench", "start": True}, auth)
        session = s["id"]
        deadline = time.time() + 60
        while True:
            st, page = http("GET", f"{api}/api/v1/sessions/{session}/contacts?limit=1&q=Bench%20Person%20{CONTACTS - 1}", None, auth)
            if st == 200 and page["data"]:
                break
            if time.time() > deadline:
                sys.exit(f"contacts never synced: {st} {page}")
            time.sleep(0.2)
        base = f"{api}/api/v1/sessions/{session}/contacts"
        post = os.path.join(tmp, "post.lua")
        with open(post, "w") as f:
            f.write('wrk.method = "POST"\nwrk.body = "{}"\nwrk.headers["Content-Type"] = "application/json"\n')
        runs = [
            ("/healthz (host ceiling)", f"{admin}/healthz", {}, None),
            ("getContact", f"{base}/{lid}", auth, None),
            ("listContacts?limit=50", f"{base}?limit=50", auth, None),
            ("unblockContact (sandbox)", f"{base}/{lid}/unblock", auth, post),
            ("/chaos/ok", f"{api}/api/v1/chaos/ok", auth, None),
        ]
        for name, url, headers, script in runs:
            # A short warm-up so instance pools and caches are populated.
            wrk(url, headers, script, duration="2s")
        rounds = [[wrk(url, headers, script, pid=proc.pid) for _, url, headers, script in runs]
                  for _ in range(ROUNDS)]
        # Ratios are taken within a round (each endpoint against that round's ceiling).
        results = []
        for i, (name, *_) in enumerate(runs):
            per_round = [dict(r[i], ratio=r[i]["rps"] / r[0]["rps"]) for r in rounds]
            median = {k: statistics.median(x[k] for x in per_round)
                      for k in ("rps", "p50", "p99", "cpu_us", "ratio")}
            median["non2xx"] = sum(x["non2xx"] for x in per_round)
            median["errors"] = "; ".join(x["errors"] for x in per_round if x["errors"])
            median["ratios"] = [x["ratio"] for x in per_round]
            results.append((name, median))
        workers = f", worker_threads={WORKERS}" if WORKERS else ""
        print(f"\nLoad: wrk -t{THREADS} -c{CONNS} -d{DURATION}, {CONTACTS} contacts, {os.cpu_count()} cores{workers}, "
              f"median of {ROUNDS} interleaved rounds\n{BIN}\n")
        print(f"{'endpoint':<28}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'vs ceiling':>12}{'non-2xx':>9}{'CPU µs/req':>12}"
              f"  ratio per round")
        for name, r in results:
            rounds_text = " ".join(f"{x:.0%}" for x in r["ratios"])
            print(f"{name:<28}{r['rps']:>10.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['ratio']:>11.0%}{r['non2xx']:>9}"
                  f"{r['cpu_us']:>12.1f}  {rounds_text}")
            if r["errors"]:
                print(f"    {r['errors']}")
        print()
        for index, name, target in ((1, "getContact", 0.6), (2, "listContacts?limit=50", 0.4), (4, "/chaos/ok", 0.75)):
            r = results[index][1]
            print(f"{name} target: >= {target:.0%} of ceiling and p99 < 5 ms → "
                  f"{r['ratio']:.0%}, p99 {r['p99']:.2f} ms: "
                  f"{'met' if r['ratio'] >= target and r['p99'] < 5 else 'MISSED'}")
    finally:
        proc.terminate()
        proc.wait()
    reload_bench(tmp)
    shutil.rmtree(tmp, ignore_errors=True)


def swap_to(tmp, version):
    src = os.path.join(ROOT, "target", "test-plugins", "chaos-v2.wasm" if version == "2.0.0" else "chaos.wasm")
    dst = os.path.join(tmp, "plugins", "chaos.wasm")
    shutil.copy(src, dst + ".tmp")
    os.rename(dst + ".tmp", dst)


def reload_bench(tmp):
    shutil.rmtree(os.path.join(tmp, "data"), ignore_errors=True)
    proc, api, admin, _ = start(tmp, watch=True)
    try:
        _, created = http("POST", f"{admin}/admin/api-keys",
                          {"organization": "org_bench", "name": "bench", "permissions": ["read"]},
                          {"content-type": "application/json"})
        auth = {"Authorization": f"Bearer {created['secret']}"}
        url = f"{api}/api/v1/chaos/version"

        def serving():
            return http("GET", url, None, auth)[1]["version"]

        times = []
        current = serving()
        for i in range(SWAPS):
            target = "2.0.0" if current == "1.0.0" else "1.0.0"
            t0 = time.perf_counter()
            swap_to(tmp, target)
            while serving() != target:
                time.sleep(0.002)
            times.append((time.perf_counter() - t0) * 1000)
            current = target
            time.sleep(0.2)
        times.sort()
        print(f"\nHot reload, file change → new version serving (watcher, 50 ms debounce), {SWAPS} swaps:")
        print(f"  median {times[len(times) // 2]:.0f} ms, min {times[0]:.0f} ms, max {times[-1]:.0f} ms")

        calm = wrk(url, auth)
        stop = threading.Event()
        swaps = [0]

        def swapper():
            v = serving()
            while not stop.is_set():
                v = "2.0.0" if v == "1.0.0" else "1.0.0"
                swap_to(tmp, v)
                swaps[0] += 1
                time.sleep(0.5)

        t = threading.Thread(target=swapper)
        t.start()
        busy = wrk(url, auth)
        stop.set()
        t.join()
        print(f"\nLatency of /chaos/version, -c{CONNS}, without and during swaps ({swaps[0]} swaps in {DURATION}):")
        print(f"{'':<16}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}")
        for name, r in (("no swap", calm), ("during swaps", busy)):
            print(f"{name:<16}{r['rps']:>10.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['non2xx']:>9}")
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
