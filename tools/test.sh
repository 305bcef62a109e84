#!/usr/bin/env bash
# Builds tilestage (release preset) and runs every test. Installs missing Debian packages first.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"
ctest --preset release -j "$(nproc)" --timeout 600
