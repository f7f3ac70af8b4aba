#!/usr/bin/env bash
# Cross-builds the Swift node for a 64-bit ARM board (Raspberry Pi 3/4/5/Zero 2 W on a 64-bit OS)
# with a Swift SDK made by swift-sdk-generator for Debian 12 aarch64:
#   boards/cross/swift-build.sh [SDK-ID]        (default: the installed SDK whose id names aarch64)
# Output: .build/aarch64-unknown-linux-gnu/release/flowchain, linked with --static-swift-stdlib,
# so the board needs only the packages boards/<board>/board.yaml lists.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v swift >/dev/null 2>&1; then
    echo "swift-build: no 'swift' on PATH: install a Swift 6 toolchain from swift.org first" >&2
    exit 1
fi
sdk="${1:-}"
if [ -z "$sdk" ]; then
    sdk=$(swift sdk list 2>/dev/null | grep -i aarch64 | head -1 || true)
fi
if [ -z "$sdk" ]; then
    cat >&2 <<'MSG'
swift-build: no Swift SDK for aarch64 is installed (swift sdk list shows none). Make one for Debian 12:
  git clone https://github.com/swiftlang/swift-sdk-generator && cd swift-sdk-generator
  swift run swift-sdk-generator make-linux-sdk --distribution-name debian --distribution-version 12 \
      --target aarch64-unknown-linux-gnu
  swift sdk install Bundles/<the bundle it made>.artifactbundle
and add the node's C libraries for arm64 (libssl-dev libsodium-dev libsqlite3-dev libmosquitto-dev
libgpiod-dev) to the SDK's sysroot (e.g. dpkg-deb -x each arm64 .deb into it). Then run this again.
MSG
    exit 3
fi
echo "swift-build: building flowchain for aarch64 with the Swift SDK $sdk" >&2
swift build -c release --swift-sdk "$sdk" --static-swift-stdlib --product flowchain
ls -la .build/aarch64-unknown-linux-gnu/release/flowchain
