#!/usr/bin/env bash
# Every benchmark of the I/O path against its limit, one after another in one run: what new
# memory costs on this host (first touches, memory handed back to a VM's host); ingest
# (NetCDF on tmpfs and on the disk, GeoTIFF u8 and u16 DEFLATE at 8192^2, an HDF5 detector stack)
# against the read + write bound, gdal_retile.py and h5py; staging against cp -r (sizes, shard
# sizes, one process and mpirun -np 2, fsync or not, warm and cold); verify against cat; the
# loader against the raw read (warm and cold). Each prints its own table; all of it also lands in
# OUT/*.txt and *.json.
#
#   bench/io_limits.sh [--build DIR] [--work DIR]      (about 12 minutes on 2 cores)
#
# Run it on a quiet machine: every contender of one benchmark runs in the same minute, but a
# compile beside it moves the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=build/release
WORK=/tmp/tsbench
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) BUILD="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    *) echo "usage: bench/io_limits.sh [--build DIR] [--work DIR]" >&2; exit 2 ;;
  esac
done
PY=/usr/bin/python3
TS="$BUILD/tools/tilestage"
OUT="$WORK/io-limits-$(date -u +%Y%m%dT%H%M%S)"
mkdir -p "$OUT"
cmake --build "$BUILD" --target tilestage netcdf_raw_read netcdf_read_paths \
  ingest_geotiff_gdal_read hdf5_stack_tool loaders_loader_vs_raw_benchmark >/dev/null
run() {  # NAME COMMAND...: runs, shows and keeps the output
  local name="$1"; shift
  echo "=== $name: $*" | tee "$OUT/$name.txt"
  "$@" 2>&1 | tee -a "$OUT/$name.txt"
}
uptime | tee "$OUT/load.txt"
# What touching new memory costs on this host today: the first touch of each page, and of memory
# handed back to the host, bounds every fresh buffer, mapping and page-cache page below.
run host_memory $PY bench/host_memory.py --json "$OUT/host_memory.json"

run netcdf_tmpfs $PY bench/ingest_netcdf/run_bench.py --build "$BUILD" --work "$WORK/nc" \
  --out-dir /dev/shm/tsbench-nc-out --repeat 5
run netcdf_disk $PY bench/ingest_netcdf/run_bench.py --build "$BUILD" --work "$WORK/nc" \
  --out-dir "$WORK/nc-out" --repeat 5
rm -rf /dev/shm/tsbench-nc-out "$WORK/nc-out"
run geotiff $PY bench/ingest_geotiff/run_benchmark.py --build "$BUILD" --work /dev/shm/tsbench-geo \
  --size 8192 --u16-size 8192 --repeat 5 --json "$OUT/geotiff.json"
rm -rf /dev/shm/tsbench-geo
run hdf5 $PY bench/ingest_hdf5/run_bench.py --build "$BUILD" --work "$WORK/h5" --frames 4096 \
  --repeats 2
run staging $PY bench/loaders/stage_vs_cp.py --tilestage "$TS" --workdir "$WORK" --rounds 5 --cold \
  --json "$OUT/staging.json"
STORE="$WORK/load-20000"
[[ -f "$STORE/manifest.json" ]] || "$TS" synth --out "$STORE" --samples 20000 --shape 3,64,64 \
  --codec none --shard-size 64MiB >/dev/null
# Records four times larger (3x128x128 float32, 196 KB) for a second loader run.
BIG="$WORK/load-5000-3x128x128"
[[ -f "$BIG/manifest.json" ]] || "$TS" synth --out "$BIG" --samples 5000 --shape 3,128,128 \
  --codec none --shard-size 64MiB >/dev/null
sync
run verify_warm $PY bench/store/verify_vs_cat.py --store "$STORE" --tilestage "$TS" --rounds 5
run verify_cold $PY bench/store/verify_vs_cat.py --store "$STORE" --tilestage "$TS" --rounds 5 --cold
run loader_warm "$BUILD/bench/loaders/loaders_loader_vs_raw_benchmark" "$STORE" --threads 2 --repeats 5
# The same loader over the larger records: what is paid per record rather than per byte weighs
# less.
run loader_warm_large_records "$BUILD/bench/loaders/loaders_loader_vs_raw_benchmark" "$BIG" \
  --threads 2 --repeats 5
run loader_cold "$BUILD/bench/loaders/loaders_loader_vs_raw_benchmark" "$STORE" --threads 2 --repeats 5 \
  --cold
uptime | tee -a "$OUT/load.txt"
echo "all outputs: $OUT"
