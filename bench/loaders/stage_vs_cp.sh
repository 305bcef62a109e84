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
# Timings are wall-clock of the whole command (process and MPI start-up included) and, for
# tilestage, also its own barrier-to-barrier staging time. Ratio = cp time / tilestage time
# (>= 1.0: at least as fast). CPU seconds (user + system, from /usr/bin/time, of the run with the
# best wall time) are printed alongside: on a shared machine they show the work each side does,
# which the load of other jobs does not change as much as the wall time. `sync` is a separate
# process, so "cp -r && sync" CPU excludes the kernel's writeback. Measures; asserts nothing.
set -euo pipefail
BIN="${TILESTAGE:-$(dirname "$0")/../../build/release/tools/tilestage}"
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
TIMEF=$(mktemp); trap 'rm -f "$TIMEF"' EXIT
cpu() { awk '{print $1 + $2}' "$TIMEF"; }  # user + system of the last timed command
best() { python3 -c "import sys; print(min(float(x) for x in sys.argv[1:]))" "$@"; }
cp_t=(); cpsync_t=(); ts_t=(); ts_in=(); tsnosync_t=(); tsnosync_in=()
cp_c=(); cpsync_c=(); ts_c=(); tsnosync_c=()
for r in $(seq "$REPEATS"); do
  rm -rf "$WORK/cp" "$WORK/ts"; sync
  t0=$(now); /usr/bin/time -o "$TIMEF" -f "%U %S" cp -r "$SRC" "$WORK/cp"; t1=$(now)
  cp_t+=("$(echo "$t1 - $t0" | bc)"); cp_c+=("$(cpu)")
  rm -rf "$WORK/cp"; sync
  t0=$(now); /usr/bin/time -o "$TIMEF" -f "%U %S" cp -r "$SRC" "$WORK/cp"; sync; t1=$(now)
  cpsync_t+=("$(echo "$t1 - $t0" | bc)"); cpsync_c+=("$(cpu)")
  rm -rf "$WORK/cp"; sync
  t0=$(now)
  out=$(/usr/bin/time -o "$TIMEF" -f "%U %S" "$BIN" stage --from "$SRC" --to "$WORK/ts" \
    --mode replicate --no-sync --threads "$THREADS" --json 2>/dev/null)
  t1=$(now); tsnosync_t+=("$(echo "$t1 - $t0" | bc)"); tsnosync_c+=("$(cpu)")
  tsnosync_in+=("$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')")
  rm -rf "$WORK/ts"; sync
  t0=$(now)
  out=$(/usr/bin/time -o "$TIMEF" -f "%U %S" "$BIN" stage --from "$SRC" --to "$WORK/ts" \
    --mode replicate --threads "$THREADS" --json 2>/dev/null)
  t1=$(now); ts_t+=("$(echo "$t1 - $t0" | bc)"); ts_c+=("$(cpu)")
  ts_in+=("$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')")
  rm -rf "$WORK/ts"; sync
done
# CPU seconds of the run with the best wall time.
at_best() { local -n t=$1 c=$2; python3 -c "import sys; n=len(sys.argv)//2; t=[float(x) for x in sys.argv[1:n+1]]; print(sys.argv[1+n+t.index(min(t))])" "${t[@]}" "${c[@]}"; }
CP=$(best "${cp_t[@]}"); CPS=$(best "${cpsync_t[@]}")
TSN=$(best "${tsnosync_t[@]}"); TSNI=$(best "${tsnosync_in[@]}")
TS=$(best "${ts_t[@]}"); TSI=$(best "${ts_in[@]}")
CPC=$(at_best cp_t cp_c); CPSC=$(at_best cpsync_t cpsync_c)
TSNC=$(at_best tsnosync_t tsnosync_c); TSC=$(at_best ts_t ts_c)
python3 - "$BYTES" "$CP" "$CPS" "$TSN" "$TSNI" "$TS" "$TSI" "$SRC" "$CPC" "$CPSC" "$TSNC" "$TSC" \
  "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import json, sys
b, cp, cps, tsn, tsni, ts, tsi = (float(x) for x in sys.argv[1:8])
cpc, cpsc, tsnc, tsc = (float(x) for x in sys.argv[9:13])
gb = lambda s: b / s / 1e9
rows = [("cp -r", cp, None, cpc), ("tilestage stage --no-sync (wall)", tsn, cp, tsnc),
        ("tilestage stage --no-sync (staging)", tsni, cp, None),
        ("cp -r && sync", cps, None, cpsc), ("tilestage stage (wall)", ts, cps, tsc),
        ("tilestage stage (staging)", tsi, cps, None)]
print(f"store {sys.argv[8]}: {b/1e9:.2f} GB; load average {sys.argv[13]}")
print(f"{'command':40s} {'seconds':>8s} {'GB/s':>7s} {'vs cp':>7s} {'cpu s':>7s}")
for name, s, ref, c in rows:
    print(f"{name:40s} {s:8.3f} {gb(s):7.3f} " + (f"{ref/s:6.2f}x" if ref else "      -") +
          (f" {c:7.2f}" if c is not None else "       -"))
print(json.dumps({"bytes": b, "cp_s": cp, "cp_sync_s": cps, "stage_nosync_wall_s": tsn,
                  "stage_nosync_staging_s": tsni, "stage_wall_s": ts, "stage_staging_s": tsi,
                  "cp_cpu_s": cpc, "cp_sync_cpu_s": cpsc, "stage_nosync_cpu_s": tsnc,
                  "stage_cpu_s": tsc, "loadavg": sys.argv[13],
                  "ratio_nosync_wall": cp / tsn, "ratio_nosync_staging": cp / tsni,
                  "ratio_sync_wall": cps / ts, "ratio_sync_staging": cps / tsi}))
PY
