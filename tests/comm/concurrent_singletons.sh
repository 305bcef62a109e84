#!/bin/sh
# Starts 40 isolated MPI singletons (the conformance test binary, one short test each), 5 ms apart
# so that starts overlap other processes' ends; every one must succeed. They share one job name:
# with one shared session directory, one process's MPI_Finalize removes it under another's
# MPI_Init, which failed every such run (5 of 5) before each got a session base of its own.
binary="$1"
pids=""
for i in $(seq 40); do
  "$binary" --gtest_filter='*SingleProcess.RanksAreDistinctAndNumberedFromZero' >/dev/null 2>&1 &
  pids="$pids $!"
  sleep 0.005
done
failed=0
for p in $pids; do wait "$p" || failed=$((failed + 1)); done
[ "$failed" -eq 0 ] || { echo "$failed of 40 concurrent MPI singletons failed to start" >&2; exit 1; }
