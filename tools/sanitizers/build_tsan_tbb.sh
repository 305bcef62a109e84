#!/usr/bin/env bash
# Builds Debian's oneTBB from its source package with ThreadSanitizer into build/tsan-tbb, so that
# the tsan preset sees TBB's own synchronisation: Debian's libtbb12 is not instrumented, and TSan
# reports every handoff between TBB workers as a race. TBB_STRICT=OFF: GCC warns (-Wtsan) that TSan
# does not model atomic_thread_fence, which oneTBB uses. Idempotent; needs deb-src (added here).
set -euo pipefail
cd "$(dirname "$0")/../.."
prefix="$PWD/build/tsan-tbb"
[[ -f "$prefix/lib/cmake/TBB/TBBConfig.cmake" ]] && exit 0
sources=/etc/apt/sources.list.d/debian.sources
if [[ -f $sources ]] && ! grep -q deb-src "$sources"; then
  sed -i 's/^Types: deb$/Types: deb deb-src/' "$sources"
  apt-get update -qq
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
version="$(dpkg-query -W -f '${source:Version}' libtbb-dev)"
(cd "$work" && apt-get source -qq "onetbb=$version" >/dev/null)
cmake -S "$work"/onetbb-*/ -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTBB_SANITIZE=thread -DTBB_STRICT=OFF -DTBB_TEST=OFF -DTBB_EXAMPLES=OFF -DTBBMALLOC_BUILD=OFF \
  -DCMAKE_INSTALL_PREFIX="$prefix" >/dev/null
cmake --build "$work/build" -j "$(nproc)"
cmake --install "$work/build" >/dev/null
echo "ThreadSanitizer oneTBB $version installed in $prefix"
