#!/usr/bin/env python3
"""Authentication cost: `/api/v1/chaos/ok` (the trivial plugin route) called with a dashboard
JWT (EdDSA, from a JWKS file) and with an API key, over loopback with wrk.

    python3 benches/auth.py [gateway binary ...]     (default: the PROFILE build, release unless set)

With several binaries (an A/B), each gets its own gateway and the rounds alternate between
them. Prints the gateway's CPU time per request (user + system, from /proc), requests/s and
the worst p99 of each. Knobs: ROUNDS (4), DURATION (4s), CONNS, THREADS as in load.py.
Installs PyPI's PyJWT and cryptography (to mint the token) when missing.
"""

import base64
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load  # noqa: E402

try:
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
except ImportError:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "pyjwt", "cryptography"],
                   check=True)
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROUNDS = int(os.environ.get("ROUNDS", "4"))
DURATION = os.environ.get("DURATION", "4s")
CREDENTIALS = ("jwt", "api key")


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def main():
    binaries = sys.argv[1:] or [load.BIN]
    signing = Ed25519PrivateKey.generate()
    public = signing.public_key().public_bytes(serialization.Encoding.Raw,
                                               serialization.PublicFormat.Raw)
    jwks = json.dumps({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "use": "sig",
                                 "x": b64url(public)}]})
    token = jwt.encode({"sub": "user_1", "org": "org_bench", "role": "owner",
                        "exp": int(time.time()) + 3600},
                       signing, algorithm="EdDSA", headers={"kid": "k1"})
    gateways = []
    try:
        for binary in binaries:
            load.BIN = binary
            tmp = tempfile.mkdtemp(prefix="gw-auth-")
            with open(os.path.join(tmp, "jwks.json"), "w") as f:
                f.write(jwks)
            proc, api, admin, _ = load.launch(
                tmp, ["test-plugins/chaos"], f'[auth]\njwks_url = "{tmp}/jwks.json"\n')
            gateways.append((binary, proc))
            status, key = load.http("POST", f"{admin}/admin/api-keys",
                                    {"organization": "org_bench", "name": "bench",
                                     "permissions": ["read", "send", "manage"]},
                                    {"content-type": "application/json"})
            assert status == 201, (status, key)
            headers = {"jwt": {"Authorization": f"Bearer {token}"},
                       "api key": {"Authorization": f"Bearer {key['secret']}"}}
            url = f"{api}/api/v1/chaos/ok"
            for name, h in headers.items():
                status, _ = load.http("GET", url, None, h)
                assert status == 200, (name, status)
                load.wrk(url, h, duration="2s")  # warm-up
            gateways[-1] = (binary, proc, url, headers)
        results = {(g[0], c): [] for g in gateways for c in CREDENTIALS}
        print(f"wrk -t{load.THREADS} -c{load.CONNS} -d{DURATION}, {ROUNDS} rounds, GET /api/v1/chaos/ok")
        for i in range(ROUNDS):
            order = gateways if i % 2 == 0 else list(reversed(gateways))
            for binary, proc, url, headers in order:
                for name in CREDENTIALS:
                    results[(binary, name)].append(
                        load.wrk(url, headers[name], duration=DURATION, pid=proc.pid))
        print(load.ab_header("credential"))
        for binary, *_ in gateways:
            for name in CREDENTIALS:
                print(load.ab_row(binary, name, results[(binary, name)]))
    finally:
        for g in gateways:
            g[1].terminate()


if __name__ == "__main__":
    main()
