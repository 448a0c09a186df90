#!/usr/bin/env python3
"""What one plugin costs, Rust next to JavaScript: component size, compile time (empty
cache), gateway start-up with the compiled component cached, the first call (a fresh
instance), a reused-instance call, a call that instantiates every time, and the linear
memory one instance holds (the admin listener's `instanceMemoryBytes`).

Usage: python3 benches/plugin_costs.py [gateway binary]   (after `cargo xtask plugins`;
the binary defaults to the release build, else the debug one, in CARGO_TARGET_DIR or target/).
"""

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# (component, where it is built, the call measured, the capability that call needs)
PLUGINS = [
    ("chaos", "target/test-plugins", "/chaos/ok", "read"),
    ("sessions", "target/plugins", "/sessions", "manage"),
    ("chaos-js", "target/test-plugins", "/chaos-js/ok", "read"),
    ("labels", "target/plugins", "/labels?limit=50", "read"),
]
CALLS = 300


def gateway_binary():
    if len(sys.argv) > 1:
        return sys.argv[1]
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    for profile in ("release", "debug"):
        path = os.path.join(target, profile, "gateway")
        if os.path.exists(path):
            return path
    sys.exit("no gateway binary: cargo build --release -p gateway")


def write_config(work, name, cache, idle):
    plugins = os.path.join(work, "plugins")
    path = os.path.join(work, f"{name}.toml")
    with open(path, "w") as f:
        f.write(
            f"""[server]
listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
[storage]
data_dir = "{os.path.join(work, 'data-' + name)}"
[plugins]
dir = "{plugins}"
cache_dir = "{cache}"
watch = false
[plugins.grants]
sessions = ["session-control", "log"]
[plugins.limits.chaos-js]
memory_bytes = 134217728
[limits]
idle_instances_per_org = {idle}
[log]
level = "info"
"""
        )
    return path


def start(binary, config, log):
    started = time.monotonic()
    proc = subprocess.Popen(
        [binary, "--config", config, "serve"],
        stdout=subprocess.PIPE,
        stderr=open(log, "w"),
        text=True,
    )
    api = admin = None
    for line in proc.stdout:
        if line.startswith("listening api "):
            api = line.split()[-1]
        elif line.startswith("listening admin "):
            admin = line.split()[-1]
        if api and admin:
            break
    return proc, api, admin, time.monotonic() - started


def call(url, key=None, method="GET", body=None):
    req = urllib.request.Request(url, method=method, data=body)
    if key:
        req.add_header("authorization", f"Bearer {key}")
    if body is not None:
        req.add_header("content-type", "application/json")
    started = time.perf_counter()
    with urllib.request.urlopen(req) as r:
        data = r.read()
    return time.perf_counter() - started, data


def mint_key(admin):
    """An API key of the benchmark's organization, minted on the admin listener."""
    _, secret = call(
        f"{admin}/admin/api-keys",
        method="POST",
        body=json.dumps(
            {"organization": "org_costs", "name": "costs", "permissions": ["read", "send", "manage"]}
        ).encode(),
    )
    return json.loads(secret)["secret"]


def stop(proc):
    proc.terminate()
    proc.wait(timeout=30)


def measure(binary, name, folder, path, capability):
    work = tempfile.mkdtemp(prefix=f"plugin-costs-{name}-")
    try:
        os.makedirs(os.path.join(work, "plugins"))
        component = os.path.join(ROOT, folder, f"{name}.wasm")
        shutil.copy(component, os.path.join(work, "plugins"))
        cache = os.path.join(work, "cache")
        # 1. Empty cache: the component is compiled.
        cold = write_config(work, "cold", cache, 4)
        proc, _, _, _ = start(binary, cold, os.path.join(work, "cold.log"))
        stop(proc)
        log = open(os.path.join(work, "cold.log")).read()
        compiled = re.search(r"compiled plugin component.*?ms=(\d+)", log)
        compile_ms = int(compiled.group(1)) if compiled else None
        # 2. Warm cache: start-up, first call, reused calls, memory.
        proc, api, admin, startup = start(binary, cold, os.path.join(work, "warm.log"))
        key = mint_key(admin)
        first, _ = call(f"{api}/api/v1{path}", key)
        reused = [call(f"{api}/api/v1{path}", key)[0] for _ in range(CALLS)]
        _, listing = call(f"{admin}/admin/plugins")
        status = next(p for p in json.loads(listing)["data"] if p["name"] == name)
        memory = status.get("instanceMemoryBytes")
        stop(proc)
        # 3. No idle instances: every call instantiates.
        fresh_cfg = write_config(work, "fresh", cache, 0)
        proc, api, admin, _ = start(binary, fresh_cfg, os.path.join(work, "fresh.log"))
        key = mint_key(admin)
        fresh = [call(f"{api}/api/v1{path}", key)[0] for _ in range(CALLS // 5)]
        stop(proc)
        return {
            "size": os.path.getsize(component),
            "compile_ms": compile_ms,
            "startup_ms": startup * 1000,
            "first_ms": first * 1000,
            "reused_ms": statistics.median(reused) * 1000,
            "fresh_ms": statistics.median(fresh) * 1000,
            "memory": memory,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    binary = gateway_binary()
    print(f"gateway: {binary}; {CALLS} sequential calls over loopback HTTP, medians")
    print(
        f"{'plugin':<10} {'size':>9} {'compile':>9} {'start-up':>9} {'1st call':>9} "
        f"{'reused':>9} {'fresh':>9} {'instance memory':>16}"
    )
    for name, folder, path, capability in PLUGINS:
        m = measure(binary, name, folder, path, capability)
        memory = f"{m['memory'] / 2**20:.1f} MiB" if m["memory"] else "-"
        compile_ms = f"{m['compile_ms']} ms" if m["compile_ms"] is not None else "-"
        print(
            f"{name:<10} {m['size'] / 2**20:>5.1f} MiB {compile_ms:>9} {m['startup_ms']:>6.0f} ms "
            f"{m['first_ms']:>6.1f} ms {m['reused_ms']:>6.2f} ms {m['fresh_ms']:>6.2f} ms {memory:>16}"
        )


if __name__ == "__main__":
    main()
