#!/usr/bin/env bash
# Staging throughput vs `cp -r` of the same store, same file system, same run.
#
#   bench/loaders/stage_vs_cp.sh [--tilestage BIN] [--workdir DIR] [--samples N] [--shape C,H,W]
#                                [--repeats R] [--threads T]
#
# Writes a synthetic uncompressed store (default 10000 x f32[3,128,128] ~ 2.0 GB) under WORKDIR
# unless it is already there, then alternates R times (best time kept, page cache warm for all):
#   cp -r SRC DST                      vs  tilestage stage --no-sync (verified, atomic renames)
#   cp -r SRC DST && sync              vs  tilestage stage           (verified, fsync per shard)
# Timings are wall-clock of the whole command (MPI start-up included) and, for tilestage, also its
# own barrier-to-barrier staging time. Ratio = cp time / tilestage time (>= 1.0: at least as fast).
# Measures; asserts nothing.
set -euo pipefail
BIN="${TILESTAGE:-$(dirname "$0")/../../build/rel/tools/tilestage}"
WORK=/tmp/tilestage-bench-stage
SAMPLES=10000
SHAPE=3,128,128
REPEATS=3
THREADS=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --tilestage) BIN="$2"; shift 2 ;;
    --workdir) WORK="$2"; shift 2 ;;
    --samples) SAMPLES="$2"; shift 2 ;;
    --shape) SHAPE="$2"; shift 2 ;;
    --repeats) REPEATS="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$WORK"
SRC="$WORK/src-$SAMPLES-${SHAPE//,/x}"
if [[ ! -f "$SRC/manifest.json" ]]; then
  "$BIN" synth --out "$SRC" --samples "$SAMPLES" --shape "$SHAPE" --codec none \
    --shard-size 256MiB >/dev/null
fi
BYTES=$(du -sb "$SRC" | cut -f1)
cat "$SRC"/*.tss >/dev/null  # warm

now() { date +%s.%N; }
best() { python3 -c "import sys; print(min(float(x) for x in sys.argv[1:]))" "$@"; }
cp_t=(); cpsync_t=(); ts_t=(); ts_in=(); tsnosync_t=(); tsnosync_in=()
for r in $(seq "$REPEATS"); do
  rm -rf "$WORK/cp" "$WORK/ts"; sync
  t0=$(now); cp -r "$SRC" "$WORK/cp"; t1=$(now); cp_t+=("$(echo "$t1 - $t0" | bc)")
  rm -rf "$WORK/cp"; sync
  t0=$(now); cp -r "$SRC" "$WORK/cp"; sync; t1=$(now); cpsync_t+=("$(echo "$t1 - $t0" | bc)")
  rm -rf "$WORK/cp"; sync
  t0=$(now)
  out=$("$BIN" stage --from "$SRC" --to "$WORK/ts" --mode replicate --no-sync --threads "$THREADS" --json 2>/dev/null)
  t1=$(now); tsnosync_t+=("$(echo "$t1 - $t0" | bc)")
  tsnosync_in+=("$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')")
  rm -rf "$WORK/ts"; sync
  t0=$(now)
  out=$("$BIN" stage --from "$SRC" --to "$WORK/ts" --mode replicate --threads "$THREADS" --json 2>/dev/null)
  t1=$(now); ts_t+=("$(echo "$t1 - $t0" | bc)")
  ts_in+=("$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')")
  rm -rf "$WORK/ts"; sync
done
CP=$(best "${cp_t[@]}"); CPS=$(best "${cpsync_t[@]}")
TSN=$(best "${tsnosync_t[@]}"); TSNI=$(best "${tsnosync_in[@]}")
TS=$(best "${ts_t[@]}"); TSI=$(best "${ts_in[@]}")
python3 - "$BYTES" "$CP" "$CPS" "$TSN" "$TSNI" "$TS" "$TSI" "$SRC" <<'PY'
import json, sys
b, cp, cps, tsn, tsni, ts, tsi = (float(x) for x in sys.argv[1:8])
gb = lambda s: b / s / 1e9
rows = [("cp -r", cp, None), ("tilestage stage --no-sync (wall)", tsn, cp),
        ("tilestage stage --no-sync (staging)", tsni, cp),
        ("cp -r && sync", cps, None), ("tilestage stage (wall)", ts, cps),
        ("tilestage stage (staging)", tsi, cps)]
print(f"store {sys.argv[8]}: {b/1e9:.2f} GB")
print(f"{'command':40s} {'seconds':>8s} {'GB/s':>7s} {'vs cp':>7s}")
for name, s, ref in rows:
    print(f"{name:40s} {s:8.3f} {gb(s):7.3f} " + (f"{ref/s:6.2f}x" if ref else "      -"))
print(json.dumps({"bytes": b, "cp_s": cp, "cp_sync_s": cps, "stage_nosync_wall_s": tsn,
                  "stage_nosync_staging_s": tsni, "stage_wall_s": ts, "stage_staging_s": tsi,
                  "ratio_nosync_wall": cp / tsn, "ratio_nosync_staging": cp / tsni,
                  "ratio_sync_wall": cps / ts, "ratio_sync_staging": cps / tsi}))
PY
