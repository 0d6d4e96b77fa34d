#!/usr/bin/env bash
# Fuzzes footrest's parsers with cargo-fuzz (libFuzzer + AddressSanitizer), each target
# for a bounded time, and prints a Markdown table: target, seconds, executions, result.
#
#   bench/fuzz.sh                      every target, 60 s each
#   FUZZ_SECONDS=10 bench/fuzz.sh      shorter
#   bench/fuzz.sh template cron_schedule   only those
#   FUZZ_BUILD_ONLY=1 bench/fuzz.sh    install cargo-fuzz if needed and build, no run
#
# Targets (fuzz/fuzz_targets/, each a thin wrapper over src/fuzzing.rs):
#   request_json   request bodies through the lenient decoder, selectors to SQL, round trip
#   restic_output  restic's --json lines and stderr through every output parser
#   cron_schedule  cron parse, compile, next run times in UTC and a DST zone
#   template       hook templates parsed and rendered with real variables, output bounded
#   config         a whole config.json parsed, validated, written back and loaded again
#
# cargo fuzz needs nightly compiler flags (-Z sanitizer, -C passes=sancov). This machine
# has only a stable toolchain, so the script sets RUSTC_BOOTSTRAP=1, which lets stable
# rustc accept them; nothing else in the project uses it. cargo-fuzz itself is installed
# from crates.io when missing.
#
# Seeds: fuzz/seeds/<target> (committed), tests/fixtures (real restic 0.14 output, a
# Backrest config); the growing corpus is fuzz/corpus/<target> and a crash is saved in
# fuzz/artifacts/<target>/ (both ignored by git). Logs: bench/out/fuzz/<target>.log.
# Exit status: 0 when every target passed, 1 when one found a crash or did not run.
set -uo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH="${FUZZ_SECONDS:-60}"
ALL=(request_json restic_output cron_schedule template config)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL[@]}"); fi

export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz from crates.io..." >&2
  cargo install --locked cargo-fuzz >&2 || { echo "cargo-fuzz could not be installed" >&2; exit 1; }
fi

mkdir -p bench/out/fuzz
echo "building the fuzz targets (release, AddressSanitizer)..." >&2
if ! cargo fuzz build -s address >bench/out/fuzz/build.log 2>&1; then
  tail -30 bench/out/fuzz/build.log >&2
  echo "the fuzz targets did not build; see bench/out/fuzz/build.log" >&2
  exit 1
fi
[ "${FUZZ_BUILD_ONLY:-0}" = 1 ] && exit 0

# Extra seed folders per target, beside fuzz/seeds/<target>.
extra_seeds() {
  case "$1" in
    restic_output) echo "tests/fixtures/restic" ;;
    config)
      mkdir -p fuzz/corpus/.fixture-config
      cp tests/fixtures/backrest-config.json fuzz/corpus/.fixture-config/
      echo "fuzz/corpus/.fixture-config"
      ;;
  esac
}

dict_for() {
  case "$1" in
    cron_schedule) echo "fuzz/dicts/cron.dict" ;;
    template) echo "fuzz/dicts/template.dict" ;;
    *) echo "fuzz/dicts/json.dict" ;;
  esac
}

status=0
echo "| fuzz target | seconds | executions | result |"
echo "|---|---|---|---|"
for t in "${TARGETS[@]}"; do
  log="bench/out/fuzz/$t.log"
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  # shellcheck disable=SC2046
  start=$(date +%s)
  timeout $((SECONDS_EACH + 120)) cargo fuzz run -s address "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" \
    $(extra_seeds "$t") -- \
    -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -dict="$(dict_for "$t")" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  took=$(($(date +%s) - start))
  execs=$(grep -oE 'Done [0-9]+ runs' "$log" | tail -1 | grep -oE '[0-9]+')
  [ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  [ -n "$execs" ] || execs="?"
  if [ $rc -eq 0 ]; then
    result="PASS"
  else
    status=1
    artifact=$(grep -oE 'fuzz/artifacts/[^ ]+' "$log" | tail -1)
    why=$(grep -m1 -E 'panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer' "$log" | cut -c1-120)
    result="FAIL (exit $rc) ${why:-see $log} ${artifact:+; input: $artifact}"
  fi
  echo "| $t | $took | $execs | $result |"
done
exit $status
