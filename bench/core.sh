#!/usr/bin/env bash
# The core benchmark: footrest's release binary against plain restic and bcrypt, side by
# side in one run. Prints a Markdown table. Bounded: about 5 minutes on 2 cores.
#   BENCH_ROUNDS=5 BENCH_OPS=100000 BENCH_FILES=10000 bench/core.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps
cargo build --release --quiet
timeout 1800 cargo bench --quiet --bench core
