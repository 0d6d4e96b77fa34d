#!/usr/bin/env bash
# The fault and load drills against footrest's release binary: kill -9 during backups,
# forgets and prunes; a full data dir; a repository that goes away mid-backup; restic
# missing or too old; a garbage config on SIGHUP; 300 idle connections, 40 pollers and
# 50 event streams during a backup. One PASS/FAIL line per drill, figures as
# `key: value`; exit status 1 when a drill failed. Needs root (tmpfs) and rclone.
# Bounded: about 10 minutes on 2 cores.
#   bench/drills.sh                 all drills
#   bench/drills.sh load kill9      some of them
#   DRILL_KILLS=20 DRILL_SEED=1 bench/drills.sh kill9
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps
if ! command -v rclone >/dev/null 2>&1; then
    echo "drills: installing rclone from Debian's packages (the REST repository drill)" >&2
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get install -y -qq rclone >/dev/null
fi
cargo build --release --quiet
mkdir -p bench/out
status=0
timeout 3600 cargo bench --quiet --bench drills -- "$@" | tee bench/out/drills.log || status=$?
# The summary bench/report.sh puts into BENCHMARKS.md: the verdicts and the figures.
{
    echo "\`bench/drills.sh${*:+ $*}\`, $(date -u '+%Y-%m-%d %H:%M UTC'), exit status $status:"
    echo
    echo '```'
    grep -E '^(drill |drills: |[A-Za-z0-9_.]+: )' bench/out/drills.log || true
    echo '```'
} >bench/out/drills.md
exit "$status"
