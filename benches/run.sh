#!/usr/bin/env bash
# The load benchmark: release build (PROFILE=dist: the deployment build), sandbox engine with
# a seeded world, wrk over loopback.
# Usage: benches/run.sh            (or: cargo xtask bench)
# Knobs: PROFILE=release CONNS=64 THREADS=2 DURATION=10s ROUNDS=3 CONTACTS=500 SWAPS=10 WORKERS=(one per core)
#        ACCEPT_SAMPLES=200 (outbox); TARGETS=10 EVENTS=3000 RATE=200 (webhooks)
#        ROUNDS/DURATION (auth, logs)
#        ONLY=load|outbox|webhooks|auth|logs runs one part
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)"
  apt-get install -y wrk >/dev/null 2>&1 || sudo apt-get install -y wrk
fi
cargo xtask plugins
cargo build --profile "${PROFILE:=release}" -p gateway
export PROFILE
run() { [ -z "${ONLY:-}" ] || [ "${ONLY}" = "$1" ]; }
if run load; then python3 benches/load.py; fi
if run outbox; then python3 benches/outbox.py; fi
if run webhooks; then python3 benches/webhooks.py; fi
if run auth; then python3 benches/auth.py; fi
if run logs; then python3 benches/logs.py; fi
