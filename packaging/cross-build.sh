#!/usr/bin/env bash
# Usage: packaging/cross-build.sh [--no-smoke-test] [--armv6-cpu-test] [TARGET...]
#
# Builds release binaries of footrest for ARM from an x86-64 Debian machine:
#   aarch64-unknown-linux-gnu     Raspberry Pi 3/4/5 on a 64-bit OS, 64-bit ARM NAS boxes
#   arm-unknown-linux-gnueabihf   32-bit ARMv6 hard-float: Pi Zero / Zero W / Pi 1, and
#                                 every later Pi on 32-bit Raspberry Pi OS
# (both by default), links them against an old glibc (FOOTREST_GLIBC, default 2.17) so
# they run on old systems too, checks what they need (ELF machine, ARM attributes, the
# highest GLIBC_x.y symbol version), and smoke-tests each under qemu-user
# (packaging/smoke-test.sh). The binaries end up in target/<triple>/release/footrest and
# are copied to dist/footrest-<version>-<triple>.
#
# How: cargo-zigbuild (crates.io) with zig as linker and C compiler (the ziglang package
# from PyPI). zig brings glibc stubs for any version and builds the C runtime objects
# for the target CPU; Debian's armhf cross libc is ARMv7, which a Pi Zero cannot run.
# The bundled SQLite and ring's C are compiled by zig for the target CPU too.
# The ARMv6 target has no prebuilt standard library on every rustup mirror: when
# `rustup target add arm-unknown-linux-gnueabihf` fails, std is built from source
# (`-Zbuild-std`, needs the rust-src component) with RUSTC_BOOTSTRAP=1, which lets a
# stable toolchain take that one unstable flag; the code built is the same stable std.
#
# --armv6-cpu-test also builds a static (musl) ARMv6 binary with the same code and
# flags and smoke-tests it on an emulated ARM1176 (QEMU_CPU=arm1176, a Pi Zero's CPU).
# The glibc binary cannot be run that way here: the only armhf glibc Debian has is ARMv7,
# so qemu must emulate a newer CPU for it, and its ELF attributes are what say ARMv6.
# The static binary is not copied to dist/ (about 4 minutes more on 2 cores).
#
# Installs what is missing, and only that (so a second run installs nothing):
# rustup targets and rust-src, ziglang (pip), cargo-zigbuild (cargo install),
# qemu-user, libc6-arm64-cross, libc6-armhf-cross, binutils and curl (apt-get).
# Needs network access to crates.io, PyPI and Debian's archive on its first run. Not
# part of scripts/test.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)

smoke=1
cpu_test=0
targets=()
for arg in "$@"; do
    case "$arg" in
        --no-smoke-test) smoke=0 ;;
        --armv6-cpu-test) cpu_test=1 ;;
        aarch64-unknown-linux-gnu | arm-unknown-linux-gnueabihf) targets+=("$arg") ;;
        -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "cross-build: unknown argument or target '$arg'" >&2; exit 2 ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=(aarch64-unknown-linux-gnu arm-unknown-linux-gnueabihf)

# The oldest glibc the binaries link against. 2.17 is the oldest Rust's std supports;
# raise it only if the link fails for a symbol that glibc added later.
glibc=${FOOTREST_GLIBC:-2.17}
# The cargo-zigbuild version installed when none is there.
zigbuild_version=0.24.1

say() { echo "cross-build: $*" >&2; }

# --- what the build needs ---------------------------------------------------------

apt_missing=()
command -v readelf >/dev/null || apt_missing+=(binutils)
command -v curl >/dev/null || apt_missing+=(curl)
if [ "$smoke" = 1 ]; then
    for t in "${targets[@]}"; do
        case "$t" in
            aarch64-*)
                command -v qemu-aarch64 >/dev/null || apt_missing+=(qemu-user)
                [ -d /usr/aarch64-linux-gnu/lib ] || apt_missing+=(libc6-arm64-cross) ;;
            arm-*)
                command -v qemu-arm >/dev/null || apt_missing+=(qemu-user)
                [ -d /usr/arm-linux-gnueabihf/lib ] || apt_missing+=(libc6-armhf-cross) ;;
        esac
    done
fi
if [ "$cpu_test" = 1 ]; then
    command -v qemu-arm >/dev/null || apt_missing+=(qemu-user)
fi
if [ ${#apt_missing[@]} -gt 0 ]; then
    mapfile -t apt_missing < <(printf '%s\n' "${apt_missing[@]}" | sort -u)
    say "installing ${apt_missing[*]} from Debian's packages"
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${apt_missing[@]}" >/dev/null
fi

# zig: on PATH, or the ziglang wheel from PyPI (cargo-zigbuild runs `python3 -m ziglang`).
if ! command -v zig >/dev/null && ! python3 -m ziglang version >/dev/null 2>&1; then
    say "installing zig (the ziglang package) from PyPI"
    python3 -m pip install --quiet ziglang ||
        python3 -m pip install --quiet --break-system-packages ziglang
fi
if ! command -v cargo-zigbuild >/dev/null; then
    say "installing cargo-zigbuild $zigbuild_version from crates.io"
    cargo install --locked cargo-zigbuild --version "$zigbuild_version"
fi

installed_targets=$(rustup target list --installed)
build_std=()
for t in "${targets[@]}"; do
    if ! grep -qx "$t" <<<"$installed_targets"; then
        say "adding the Rust standard library for $t"
        if ! err=$(RUST_BACKTRACE=0 rustup target add "$t" 2>&1); then
            if [ "$t" = arm-unknown-linux-gnueabihf ]; then
                say "no prebuilt std for $t from this rustup mirror" \
                    "($(grep -c 404 <<<"$err" >/dev/null && echo 'HTTP 404' || echo 'rustup failed')):" \
                    "std is built from source (rust-src)"
            else
                echo "$err" >&2
                say "cannot add the Rust target $t"; exit 1
            fi
        fi
    fi
done
if ! rustup target list --installed | grep -qx arm-unknown-linux-gnueabihf &&
    printf '%s\n' "${targets[@]}" | grep -qx arm-unknown-linux-gnueabihf; then
    rustup component list --installed | grep -q '^rust-src' || rustup component add rust-src
    build_std=(-Zbuild-std=std,panic_unwind)
fi

# --- build, check, smoke-test -----------------------------------------------------

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
mkdir -p dist
summary=()
for t in "${targets[@]}"; do
    extra=()
    env_extra=()
    if [ "$t" = arm-unknown-linux-gnueabihf ] && [ ${#build_std[@]} -gt 0 ]; then
        extra=("${build_std[@]}")
        env_extra=(RUSTC_BOOTSTRAP=1)
    fi
    say "building $t against glibc $glibc${extra[*]:+ (${extra[*]})}"
    env "${env_extra[@]}" cargo zigbuild --locked --release --bin footrest \
        --target "$t.$glibc" "${extra[@]}"
    bin=target/$t/release/footrest
    [ -x "$bin" ] || { say "no binary at $bin after the build"; exit 1; }

    machine=$(readelf -h "$bin" | sed -n 's/^ *Machine: *//p')
    floor=$(readelf -V --wide "$bin" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' |
        sort -u -V | tail -n1)
    interp=$(readelf -l "$bin" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
    size=$(stat -c %s "$bin")
    case "$t" in
        aarch64-*)
            [ "$machine" = AArch64 ] || { say "$bin is for $machine, not AArch64"; exit 1; } ;;
        arm-*)
            [ "$machine" = ARM ] || { say "$bin is for $machine, not ARM"; exit 1; }
            attrs=$(readelf -A "$bin")
            cpu=$(sed -n 's/^ *Tag_CPU_arch: *//p' <<<"$attrs")
            fp=$(sed -n 's/^ *Tag_FP_arch: *//p' <<<"$attrs")
            flags=$(readelf -h "$bin" | sed -n 's/^ *Flags: *//p')
            say "$t: Tag_CPU_arch: $cpu, Tag_FP_arch: $fp, ELF flags: $flags"
            # A Pi Zero's ARM1176JZF-S is ARMv6 with VFPv2: a v7 tag or Thumb-2 means
            # some object in the link was built for a newer CPU.
            [ "$cpu" = v6 ] || [ "$cpu" = v6KZ ] ||
                { say "$bin: Tag_CPU_arch is '$cpu', not v6: a Pi Zero cannot run it"; exit 1; }
            [ "$fp" = VFPv2 ] ||
                { say "$bin: Tag_FP_arch is '$fp', not VFPv2 (a Pi Zero's FPU)"; exit 1; }
            grep -q 'hard-float ABI' <<<"$flags" ||
                { say "$bin: not built for the hard-float ABI (ELF flags: $flags)"; exit 1; }
            if grep -q 'Tag_THUMB_ISA_use: Thumb-2' <<<"$attrs"; then
                say "$bin uses Thumb-2, which ARMv6 lacks"; exit 1
            fi
            ;;
    esac
    say "$t: $size bytes, interpreter $interp, needs glibc >= $floor"
    cp "$bin" "dist/footrest-$version-$t"
    line="$t: $size bytes, glibc >= $floor"
    if [ "$smoke" = 1 ]; then
        "$root/packaging/smoke-test.sh" "$bin"
        line="$line, smoke test ok"
    fi
    summary+=("$line")
done

if [ "$cpu_test" = 1 ]; then
    # Same target CPU (arm1176jzf-s features: v6, VFPv2, strict alignment) and the same
    # std-from-source, but musl linked statically by zig, so no ARMv7 libc is involved.
    # Rust's musl targets bring their own crt objects in the prebuilt std only; with
    # build-std zig provides them (link-self-contained=no).
    t=arm-unknown-linux-musleabihf
    say "building $t (static) for the ARM1176 test"
    CARGO_TARGET_ARM_UNKNOWN_LINUX_MUSLEABIHF_RUSTFLAGS="-C link-self-contained=no" \
        RUSTC_BOOTSTRAP=1 cargo zigbuild --locked --release --bin footrest --target "$t" \
        -Zbuild-std=std,panic_unwind
    QEMU_CPU=arm1176 "$root/packaging/smoke-test.sh" "target/$t/release/footrest"
    summary+=("$t (static, not shipped): smoke test ok on an emulated ARM1176")
fi

say "done; binaries in dist/:"
printf '  %s\n' "${summary[@]}" >&2
