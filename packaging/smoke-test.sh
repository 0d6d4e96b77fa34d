#!/usr/bin/env bash
# Usage: packaging/smoke-test.sh BINARY
#
# Starts a footrest binary the way a user would, with a temporary config and data
# directory on a loopback port, asks it for GetOperations (expects 200 and a JSON
# object), sends SIGTERM and expects a clean exit (status 0). An ARM binary runs under
# qemu-user with the Debian cross libc as its root (qemu-aarch64 -L /usr/aarch64-linux-gnu,
# qemu-arm -L /usr/arm-linux-gnueabihf); an x86-64 binary runs as it is.
#
# Needs readelf (binutils), curl, and for ARM qemu-user with libc6-arm64-cross or
# libc6-armhf-cross: packaging/cross-build.sh installs them. Nothing leaves 127.0.0.1.
set -euo pipefail

bin=${1:?usage: packaging/smoke-test.sh BINARY}
[ -x "$bin" ] || { echo "smoke-test: $bin is not an executable file" >&2; exit 2; }
bin=$(realpath "$bin")

machine=$(readelf -h "$bin" | sed -n 's/^ *Machine: *//p')
case "$machine" in
    AArch64) runner=(qemu-aarch64 -L /usr/aarch64-linux-gnu) ;;
    ARM) runner=(qemu-arm -L /usr/arm-linux-gnueabihf) ;;
    *X86-64*) runner=() ;;
    *) echo "smoke-test: $bin is for '$machine', which this script cannot run" >&2; exit 2 ;;
esac
# A static binary needs no libc root. QEMU_CPU (read by qemu itself) picks the CPU to
# emulate, e.g. QEMU_CPU=arm1176 for a Pi Zero's.
if ! readelf -l "$bin" | grep -q 'program interpreter'; then
    runner=("${runner[@]:0:1}")
fi
if [ ${#runner[@]} -gt 0 ]; then
    command -v "${runner[0]}" >/dev/null || {
        echo "smoke-test: ${runner[0]} is missing: apt-get install qemu-user" >&2; exit 2; }
fi
if [ ${#runner[@]} -gt 1 ] && [ ! -d "${runner[2]}" ]; then
    echo "smoke-test: ${runner[2]} is missing: apt-get install libc6-arm64-cross" \
        "(for aarch64) or libc6-armhf-cross (for arm)" >&2
    exit 2
fi

work=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# No repos and no plans: the smoke test is about the binary (HTTP, SQLite, signals),
# not about restic.
cat > "$work/config.json" <<'EOF'
{"version": 6, "instance": "smoke-test", "repos": [], "plans": [], "auth": {"disabled": true}}
EOF
chmod 600 "$work/config.json"

echo "smoke-test: ${QEMU_CPU:+QEMU_CPU=$QEMU_CPU }${runner[*]:+${runner[*]} }$bin"
"${runner[@]}" "$bin" --config "$work/config.json" --data-dir "$work/data" \
    --bind 127.0.0.1:0 2> "$work/stderr" &
pid=$!

# Wait for the "listening on http://ADDR" line (emulation is slow: up to 60 s), or for
# the process to die.
addr=
for _ in $(seq 600); do
    addr=$(sed -n 's/.*listening on http:\/\/\([^ ]*\).*/\1/p' "$work/stderr" | head -n1)
    [ -n "$addr" ] && break
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "smoke-test: FAIL: footrest exited before listening; its stderr:" >&2
        cat "$work/stderr" >&2
        exit 1
    fi
    sleep 0.1
done
if [ -z "$addr" ]; then
    echo "smoke-test: FAIL: footrest did not listen within 60 s; its stderr:" >&2
    cat "$work/stderr" >&2
    exit 1
fi

status=$(curl -sS --max-time 30 -o "$work/body" -w '%{http_code} %{content_type}' \
    -X POST -H 'Content-Type: application/json' -d '{}' \
    "http://$addr/v1.Backrest/GetOperations")
body=$(cat "$work/body")
echo "smoke-test: POST /v1.Backrest/GetOperations -> $status $body"
case "$status" in
    "200 application/json"*) ;;
    *) echo "smoke-test: FAIL: expected 200 application/json" >&2; cat "$work/stderr" >&2; exit 1 ;;
esac
case "$body" in
    "{"*"}") ;;
    *) echo "smoke-test: FAIL: the answer is not a JSON object" >&2; exit 1 ;;
esac

kill -TERM "$pid"
set +e
wait "$pid"
code=$?
set -e
pid=
echo "smoke-test: SIGTERM -> exit status $code"
if [ "$code" -ne 0 ]; then
    echo "smoke-test: FAIL: expected exit status 0; footrest's stderr:" >&2
    cat "$work/stderr" >&2
    exit 1
fi
grep -q 'stopped' "$work/stderr" || {
    echo "smoke-test: FAIL: no 'stopped' line in footrest's stderr:" >&2; cat "$work/stderr" >&2; exit 1; }
echo "smoke-test: ok ($machine)"
