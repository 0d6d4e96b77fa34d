#!/usr/bin/env bash
# The schedule benchmark: the release binary's idle CPU and wake-ups per thread with 20
# plans scheduled, and the time to replan 1,000 schedules in-process. Prints Markdown
# tables. Bounded: the idle window (BENCH_IDLE_SECS, default 600 s) plus a few minutes.
#   BENCH_IDLE_SECS=600 BENCH_PLANS=1000 BENCH_REPLANS=20 bench/schedule.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps
cargo build --release --quiet
cargo bench --quiet --bench schedule --no-run
idle=${BENCH_IDLE_SECS:-600}
export BENCH_IDLE_SECS=$idle
timeout $((idle + 900)) cargo bench --quiet --bench schedule
