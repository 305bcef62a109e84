#!/usr/bin/env bash
# Builds tilestage and runs every test. Installs missing Debian packages first.
#   tools/test.sh          the release preset (what CI runs)
#   tools/test.sh --asan   AddressSanitizer + UBSan (tools/sanitizers/lsan.supp for Open MPI)
#   tools/test.sh --tsan   ThreadSanitizer, over a oneTBB built with TSan from Debian's source
set -euo pipefail
cd "$(dirname "$0")/.."
preset=release
case "${1:-}" in
  --asan) preset=asan ;;
  --tsan) preset=tsan ;;
  "") ;;
  *) echo "usage: tools/test.sh [--asan|--tsan]" >&2; exit 2 ;;
esac
tools/setup.sh
if [[ $preset == tsan ]]; then tools/sanitizers/build_tsan_tbb.sh; fi
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)"
ctest --preset "$preset" -j "$(nproc)" --timeout 600
