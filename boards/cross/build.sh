#!/usr/bin/env bash
# Cross-builds the C side of Flowchain for a board and tests it under qemu-user:
#   boards/cross/build.sh aarch64|armhf|mipsel
# Builds, as static musl binaries with zig (PyPI's ziglang), the C shims' unit test (fio_test),
# the sensor agent's unit test and the agent itself, against libgpiod and libmosquitto built
# from their Debian 12 source tarballs for the target; then runs both tests under
# qemu-<arch>-static (called directly: binfmt is not needed). mipsel is the LinkIt Smart 7688:
# MIPS 24KEc without an FPU, so soft-float, tested under `qemu-mipsel-static -cpu 24KEc`.
# Output: .build/cross/<arch>/ (flowchain-agent, fio_test, agent_test). Installs qemu-user-static
# (apt) and ziglang (pip) when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
arch="${1:-}"
case "$arch" in
    aarch64) target=aarch64-linux-musl;    host=aarch64-linux-musl;    cpu=();                          qemu=qemu-aarch64-static; qcpu=() ;;
    armhf)   target=arm-linux-musleabihf;  host=arm-linux-musleabihf;  cpu=(-mcpu=cortex_a7);           qemu=qemu-arm-static;     qcpu=() ;;
    mipsel)  target=mipsel-linux-musl;     host=mipsel-linux-musl;     cpu=(-mcpu=mips32r2+soft_float); qemu=qemu-mipsel-static;  qcpu=(-cpu 24KEc) ;;
    *) echo "usage: boards/cross/build.sh aarch64|armhf|mipsel" >&2; exit 2 ;;
esac
root="$PWD"
work="$root/.build/cross/$arch"
src="$root/.build/cross/src"
mkdir -p "$work" "$src"
say() { echo "cross[$arch]: $*" >&2; }

sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
if ! command -v "$qemu" >/dev/null 2>&1; then
    say "installing qemu-user-static"
    $sudo apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq qemu-user-static >/dev/null
fi
if ! python3 -m ziglang version >/dev/null 2>&1; then
    say "installing zig (pip: ziglang)"
    python3 -m pip install -q ziglang==0.13.0
fi

# zig as cc/ar/ranlib for the target, as scripts configure and make can call.
for tool in cc ar ranlib; do
    if [ "$tool" = cc ]; then
        printf '#!/bin/sh\nexec python3 -m ziglang cc -target %s %s -static "$@"\n' "$target" "${cpu[*]:-}" > "$work/$tool"
    else
        printf '#!/bin/sh\nexec python3 -m ziglang %s "$@"\n' "$tool" > "$work/$tool"
    fi
    chmod +x "$work/$tool"
done
cc="$work/cc"

# Debian 12's sources of the two C libraries (the URI the system's own apt sources use).
mirror=$( (grep -hE '^[[:space:]]*(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true) \
    | grep -oE 'https?://[^ ]+' | grep -v security | head -1 || true)
mirror="${mirror:-http://deb.debian.org/debian}"
fetch() {
    [ -s "$src/$2" ] && return 0
    say "fetching $2 from ${mirror%/}/$1"
    curl -fsSL --retry 3 -o "$src/$2.part" "${mirror%/}/$1/$2" && mv "$src/$2.part" "$src/$2"
}
fetch pool/main/libg/libgpiod libgpiod_1.6.3.orig.tar.xz
fetch pool/main/m/mosquitto mosquitto_2.0.11.orig.tar.gz

sysroot="$work/sysroot"
if [ ! -f "$sysroot/lib/libgpiod.a" ]; then
    say "building libgpiod 1.6.3 for $target"
    rm -rf "$work/libgpiod" && mkdir -p "$work/libgpiod"
    tar -xJf "$src/libgpiod_1.6.3.orig.tar.xz" -C "$work/libgpiod" --strip-components=1
    # musl declares basename() only in libgen.h (glibc also in string.h, which libgpiod relies on).
    (cd "$work/libgpiod" && ac_cv_func_malloc_0_nonnull=yes ac_cv_func_realloc_0_nonnull=yes \
        ./configure -q --host="$host" CC="$cc" AR="$work/ar" RANLIB="$work/ranlib" CFLAGS="-Os -include libgen.h" \
            --enable-static --disable-shared --disable-tools --disable-bindings-cxx --disable-bindings-python \
            --prefix="$sysroot" >"$work/libgpiod.log" 2>&1 \
        && make -s -j"$(nproc)" >>"$work/libgpiod.log" 2>&1 && make -s install >>"$work/libgpiod.log" 2>&1) \
        || { say "libgpiod failed to build; see $work/libgpiod.log"; tail -20 "$work/libgpiod.log" >&2; exit 1; }
fi
if [ ! -f "$sysroot/lib/libmosquitto.a" ]; then
    say "building libmosquitto 2.0.11 (without TLS) for $target"
    rm -rf "$work/mosquitto" && mkdir -p "$work/mosquitto"
    tar -xzf "$src/mosquitto_2.0.11.orig.tar.gz" -C "$work/mosquitto" --strip-components=1
    (cd "$work/mosquitto/lib" && make -s -j"$(nproc)" libmosquitto.a CC="$cc" AR="$work/ar" CFLAGS="-Os -I.. -I../include" \
        WITH_TLS=no WITH_CJSON=no WITH_SHARED_LIBRARIES=no WITH_STATIC_LIBRARIES=yes WITH_DOCS=no >"$work/mosquitto.log" 2>&1) \
        || { say "libmosquitto failed to build; see $work/mosquitto.log"; tail -20 "$work/mosquitto.log" >&2; exit 1; }
    mkdir -p "$sysroot/lib" "$sysroot/include"
    cp "$work/mosquitto/lib/libmosquitto.a" "$sysroot/lib/"
    cp "$work/mosquitto/include/mosquitto.h" "$work/mosquitto/include/mqtt_protocol.h" "$sysroot/include/"
fi

flags=(-std=c11 -Os -static -Wall -Wextra -Werror -Wno-unknown-warning-option -I"$sysroot/include")
say "building the C shims' unit test"
"$cc" "${flags[@]}" -I CShims/CFlowchainIO/include CShims/CFlowchainIO/fio_gpio.c CShims/CFlowchainIO/tests/fio_test.c \
    "$sysroot/lib/libgpiod.a" -o "$work/fio_test"
say "building the sensor agent and its unit test"
make -s -C boards/sensor-agent OUT="$work" CC="$cc" CFLAGS="-Os -static -Wno-unknown-warning-option -I$sysroot/include" \
    LIBS="$sysroot/lib/libmosquitto.a $sysroot/lib/libgpiod.a -lpthread" "$work/flowchain-agent" "$work/agent_test"
python3 -m ziglang objcopy --strip-all "$work/flowchain-agent" "$work/flowchain-agent.stripped" 2>/dev/null \
    || cp "$work/flowchain-agent" "$work/flowchain-agent.stripped"

say "running the tests under $qemu ${qcpu[*]:-}"
"$qemu" "${qcpu[@]}" "$work/fio_test"
"$qemu" "${qcpu[@]}" "$work/agent_test"
"$qemu" "${qcpu[@]}" "$work/flowchain-agent" --help >/dev/null 2>&1
file "$work/flowchain-agent" 2>/dev/null | sed 's/^/cross: /' >&2 || true
say "ok: $(stat -c %s "$work/flowchain-agent.stripped") bytes stripped ($work/flowchain-agent.stripped)"
