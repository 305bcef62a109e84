#!/usr/bin/env bash
# Builds tilestage (release preset) and runs the main job. Installs missing Debian packages first.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"
bin=build/release/tools/tilestage
out=${TILESTAGE_DEMO_DIR:-build/demo}
rm -rf "$out" && mkdir -p "$out"
echo "== synth: 2048 samples of 3x64x64 float32, zstd, 4 MiB shards"
"$bin" synth --out "$out/synth" --samples 2048 --shape 3,64,64 --dtype f32 --codec zstd \
  --shard-size 4MiB --seed 7
echo "== inspect"
"$bin" inspect "$out/synth"
echo "== verify"
"$bin" verify "$out/synth"
