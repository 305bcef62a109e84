#!/usr/bin/env bash
# Builds tilestage (release preset) and runs the main job. Installs missing Debian packages first.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh --bench
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target tilestage tilestage_python
# The main job: the whole path on the real files in examples/data, in one run, beside the tools
# people use today. Ingest a GeoTIFF scene, a NetCDF file and an HDF5 detector frame; stage the
# GeoTIFF store under mpirun -np 2; train a small ViT masked autoencoder with evaluation under
# mpirun -np 2; then measure the peers (gdal_retile.py, xarray, h5py, cp, PyTorch DataLoader,
# PyTorch), the limits (raw reads, memcpy, sgemm) and the data stalls, and print where the time
# went. Everything lands in build/demo (mllog.txt, results.json, report/).
bin=build/release/tools/tilestage
out=${TILESTAGE_DEMO_DIR:-build/demo}
peers=()
# Without the Python peers (tools/setup.sh --bench) the run still measures tilestage and cp.
/usr/bin/python3 -c 'import torch, xarray, h5py' 2>/dev/null || peers=(--no-peers)
command -v gdal_retile.py >/dev/null || peers=(--no-peers)
start=$(date +%s)
"$bin" bench e2e --preset small --out "$out" "${peers[@]}"
echo
# Should I stage? The run's GeoTIFF store read in place from this disk (cold) against a copy on
# /dev/shm, with the step the data-stall runs emulated (the trainer's compute per loader batch),
# answered for the run's epochs. A few seconds: two epochs of that compute.
read -r compute_ms batch epochs < <(/usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
c = r["provenance"]["config"]
print(r["data_stalls"]["compute_ms"], c["loader_batch"], c["epochs"])' "$out/results.json")
echo "== should I stage? $out/stores/geotiff (disk, cold) vs /dev/shm, ${compute_ms} ms per batch"
"$bin" bench staging --store "$out/stores/geotiff" --node-local /dev/shm --compute-ms "$compute_ms" \
  --batch "$batch" --epochs "$epochs" --out "$out/bench_staging"
echo
# Beside the published MLPerf HPC v1.0 submissions where the sample data is checked out next to the
# repository (../shared/data, see tests/CMakeLists.txt), else beside this run alone.
published=../shared/data/mllog/hpc_results_v1.0
logs=("$out/mllog.txt")
[ -d "$published" ] && logs=("$published" --compare "$out/mllog.txt")
echo "== the staging analysis of the run's MLPerf log, as for published MLPerf HPC logs"
"$bin" bench analyze "${logs[@]}" --compare "$out/bench_staging/staged.mllog" \
  --compare "$out/bench_staging/in_place.mllog" --svg "$out/report/staging_share.svg"
echo
echo "demo finished in $(( $(date +%s) - start )) s; open $out/report/report.md for the report"
