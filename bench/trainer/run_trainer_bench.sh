#!/bin/bash
# Trainer benchmark driver: in one run on the same cores,
#   1. tilestage's ViT training samples/s (trainer_bench) with the same config as
#   2. PyTorch (Debian python3-torch, torch_vit.py bench: same architecture, AdamW, clipping,
#      same batch, torch.set_num_threads = THREADS), and, when OPENBLAS_DIR names a directory
#      holding OpenBLAS's libblas.so.3, PyTorch again with that BLAS (Debian's default libblas.so.3
#      alternative is the netlib reference BLAS, which makes PyTorch's GEMMs very slow);
#   3. achieved GFLOP/s against the Eigen sgemm rate measured in the same process;
#   4. under mpirun -np 2 (1 thread per rank): allreduce time hidden behind backward (overlap vs
#      blocking);
#   5. the loader-fed run on a synthetic store: the data stall per step.
# Usage: bench/trainer/run_trainer_bench.sh [BUILD_DIR] [OUT_DIR]
# Env: THREADS (2) BATCH (32) STEPS (4) TORCH_STEPS (2) OPENBLAS_DIR (unset)
set -euo pipefail
BUILD=${1:-build/release}
OUT=${2:-/tmp/tilestage-trainer-bench}
THREADS=${THREADS:-2}
BATCH=${BATCH:-32}
STEPS=${STEPS:-4}
TORCH_STEPS=${TORCH_STEPS:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
MPIRUN="mpirun --allow-run-as-root --oversubscribe --bind-to none"
PY=/usr/bin/python3
mkdir -p "$OUT"
rm -rf "$OUT/store"
"$BUILD/tools/tilestage" synth --out "$OUT/store" --samples $((BATCH * (STEPS + 2))) \
  --shape 3,64,64 --classes 10 --codec lz4 >/dev/null

echo "== tilestage (1 rank, $THREADS threads), loader-fed run included"
"$BUILD/bench/trainer/trainer_bench" --threads "$THREADS" --batch "$BATCH" --steps "$STEPS" \
  --warmup 1 --store "$OUT/store" | tee "$OUT/tilestage.txt"
tail -1 "$OUT/tilestage.txt" > "$OUT/tilestage.json"

echo "== PyTorch (Debian python3-torch, default BLAS), $THREADS threads"
$PY "$HERE/torch_vit.py" bench --threads "$THREADS" --batch "$BATCH" --steps "$TORCH_STEPS" \
  --warmup 1 | tee "$OUT/torch.json"
if [[ -n "${OPENBLAS_DIR:-}" ]]; then
  echo "== PyTorch with OpenBLAS from $OPENBLAS_DIR, $THREADS threads"
  LD_LIBRARY_PATH="$OPENBLAS_DIR" OPENBLAS_NUM_THREADS="$THREADS" $PY "$HERE/torch_vit.py" bench \
    --threads "$THREADS" --batch "$BATCH" --steps "$STEPS" --warmup 1 | tee "$OUT/torch_openblas.json"
fi

echo "== tilestage, mpirun -np 2 x 1 thread: overlap vs blocking allreduce"
$MPIRUN -np 2 "$BUILD/bench/trainer/trainer_bench" --threads 1 --batch "$BATCH" \
  --steps "$STEPS" --warmup 1 | tee "$OUT/mpi.txt"
tail -1 "$OUT/mpi.txt" > "$OUT/mpi.json"

$PY - "$OUT" <<'PYEOF'
import json, os, sys
out = sys.argv[1]
ts = json.load(open(os.path.join(out, "tilestage.json")))
torch = json.load(open(os.path.join(out, "torch.json")))
mpi = json.load(open(os.path.join(out, "mpi.json")))
ob = os.path.join(out, "torch_openblas.json")
rows = [("tilestage samples/s (1 rank)", ts["overlap"]["samples_per_s"]),
        ("pytorch samples/s (Debian default BLAS)", torch["samples_per_s"])]
if os.path.exists(ob):
    rows.append(("pytorch samples/s (OpenBLAS)", json.load(open(ob))["samples_per_s"]))
for name, v in rows:
    print(f"{name:42s} {v:9.2f}")
print(f"{'ratio tilestage / pytorch default':42s} {rows[0][1] / rows[1][1]:9.2f}x")
if len(rows) > 2:
    print(f"{'ratio tilestage / pytorch OpenBLAS':42s} {rows[0][1] / rows[2][1]:9.2f}x")
g = ts["overlap"]["achieved_gflops"]
print(f"{'achieved GFLOP/s':42s} {g:9.1f}  ({100 * g / ts['sgemm_gflops_mlp_shape']:.0f}% of the "
      f"{ts['sgemm_gflops_mlp_shape']:.1f} GFLOP/s sgemm at {ts['sgemm_shape']}, "
      f"{ts['sgemm_gflops_1024']:.1f} at 1024^3; kernel {ts['gemm_kernel']})")
print(f"{'np2 overlap allreduce exposed ms/step':42s} {mpi['overlap']['allreduce_exposed_ms']:9.1f}")
print(f"{'np2 blocking allreduce ms/step':42s} {mpi['blocking']['allreduce_exposed_ms']:9.1f}")
print(f"{'allreduce hidden behind backward':42s} {100 * mpi['allreduce_hidden_fraction']:8.1f}%")
print(f"{'np2 samples/s overlap / blocking':42s} {mpi['overlap']['samples_per_s']:9.2f} / {mpi['blocking']['samples_per_s']:.2f}")
lf = ts.get("loader_fed")
if lf:
    print(f"{'loader-fed samples/s, stall fraction':42s} {lf['samples_per_s']:9.2f}, {100 * lf['stall_fraction']:.2f}%")
PYEOF
