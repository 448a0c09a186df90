#!/usr/bin/env python3
"""What the access log costs: `/api/v1/chaos/ok` (the trivial plugin route) served with no
access lines (`log.level = "warn"`), and with them in text and in JSON (`"info"`), over
loopback with wrk.

    python3 benches/logs.py [gateway binary ...]     (default: the PROFILE build, release unless set)

Every binary runs each of the three log settings in a gateway of its own, and the rounds
alternate among all of them. Prints each one's gateway CPU time per request (user + system,
from /proc), requests/s and worst p99; the access line's cost is the difference from
"warn". Knobs: ROUNDS (6), DURATION (4s), CONNS, THREADS as in load.py.
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "6"))
DURATION = os.environ.get("DURATION", "4s")
SETTINGS = (("warn", "text"), ("info", "text"), ("info", "json"))


def main():
    binaries = sys.argv[1:] or [load.BIN]
    gateways = []
    try:
        for binary in binaries:
            for log in SETTINGS:
                load.BIN = binary
                tmp = tempfile.mkdtemp(prefix="gw-logs-")
                proc, api, admin, _ = load.launch(tmp, ["test-plugins/chaos"], "", log=log)
                gateways.append([binary, log, proc])
                status, key = load.http("POST", f"{admin}/admin/api-keys",
                                        {"organization": "org_bench", "name": "bench",
                                         "permissions": ["read"]},
                                        {"content-type": "application/json"})
                assert status == 201, (status, key)
                url = f"{api}/api/v1/chaos/ok"
                headers = {"Authorization": f"Bearer {key['secret']}"}
                status, _ = load.http("GET", url, None, headers)
                assert status == 200, status
                load.wrk(url, headers, duration="2s")  # warm-up
                gateways[-1] += [url, headers, []]
        print(f"wrk -t{load.THREADS} -c{load.CONNS} -d{DURATION}, {ROUNDS} rounds, GET /api/v1/chaos/ok")
        for i in range(ROUNDS):
            for _, _, proc, url, headers, results in (gateways if i % 2 == 0 else gateways[::-1]):
                results.append(load.wrk(url, headers, duration=DURATION, pid=proc.pid))
        print(load.ab_header("log"))
        for binary, (level, form), _, _, _, runs in gateways:
            print(load.ab_row(binary, f"{level} {form}", runs))
    finally:
        for g in gateways:
            g[2].terminate()


if __name__ == "__main__":
    main()
