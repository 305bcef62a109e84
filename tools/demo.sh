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
echo "== the staging analysis of the run's MLPerf log, as for published MLPerf HPC logs"
"$bin" bench analyze "$out/mllog.txt"
echo
echo "demo finished in $(( $(date +%s) - start )) s; open $out/report/report.md for the report"
