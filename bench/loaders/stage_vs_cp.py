#!/usr/bin/env python3
"""Staging vs `cp -r` of the same store, across store and shard sizes, one process and
`mpirun -np 2` on one node, warm and cold page cache, in one run.

For each store (synthetic, uncompressed, built once under --workdir) it alternates, round by round
(best of --rounds kept; the page cache warm for every contender unless --cold):
    cp -r SRC DST                 vs  tilestage stage --no-sync  and  mpirun -np 2 tilestage stage --no-sync
    cp -r SRC DST && sync         vs  tilestage stage            and  mpirun -np 2 tilestage stage
tilestage verifies every shard's XXH3 and publishes each shard atomically; with fsync it syncs
each shard before publishing it. Timings are wall-clock of the whole command, process and MPI
start-up included. Ratio = cp's time / tilestage's (>= 1.0: at least as fast).

The floor beside each store: the least time any stager that starts as tilestage does and copies
as cp does could take. Its fixed cost is measured here as `tilestage stage` of a 4-record store
(process and library start, manifest; under mpirun, MPI start-up too); its copy time is the
largest-first schedule of the shards over the cores (one thread per shard: two threads writing
one ext4 file serialize on its inode lock), at cp's own copy rate for this store (cp's time less
its time for the 4-record store). cp / floor is the best ratio that start-up and shard sizes
allow; the floor leaves out the verification. Warm stores only: cold, the device's read bounds
both sides (the cold `cat` column), and parallel reads of several shards beat cp's one stream.

Cold (--cold, added beside the warm table): the source's pages are evicted with
posix_fadvise(DONTNEED) before every command, and `cat` of the same files, cold too, is the
device's read rate both sides are bound by.

    /usr/bin/python3 bench/loaders/stage_vs_cp.py --workdir /tmp/tsbench --rounds 3 --cold

Measures and prints; asserts nothing.
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from load_watch import LoadWatch  # noqa: E402
from page_cache import evict, warm  # noqa: E402

MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", "2"]


def make_store(tilestage, workdir, megabytes, shard_mib):
    sample_bytes = 3 * 64 * 64 * 4
    samples = megabytes * 1000 * 1000 // sample_bytes
    src = os.path.join(workdir, f"src-{megabytes}MB-{shard_mib}MiB")
    if not os.path.exists(os.path.join(src, "manifest.json")):
        subprocess.run([tilestage, "synth", "--out", src, "--samples", str(samples), "--shape",
                        "3,64,64", "--codec", "none", "--shard-size", f"{shard_mib}MiB"],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["sync"], check=True)
    return src


def lpt_makespan(sizes, cores):
    """Largest first, each shard to the least loaded core: the bytes the busiest core copies."""
    loads = [0] * cores
    for size in sorted(sizes, reverse=True):
        loads[loads.index(min(loads))] += size
    return max(loads)


def measure_fixed_cost(tilestage, workdir, rounds):
    """Best wall seconds of staging a 4-record store (one process, and under mpirun -np 2) and of
    cp -r of it (what cp's time for a store spends other than copying)."""
    src = os.path.join(workdir, "src-tiny")
    if not os.path.exists(os.path.join(src, "manifest.json")):
        subprocess.run([tilestage, "synth", "--out", src, "--samples", "4", "--shape", "3,8,8",
                        "--codec", "none"], check=True, stdout=subprocess.DEVNULL)
    dst = os.path.join(workdir, "dst-tiny")
    stage = [tilestage, "stage", "--from", src, "--to", dst, "--mode", "replicate", "--no-sync"]
    best = {}
    contenders = [("single", stage), ("mpirun", MPIRUN + stage), ("cp", ["cp", "-r", src, dst])]
    for name, cmd in contenders:
        runs = []
        for _ in range(max(rounds, 5)):
            shutil.rmtree(dst, ignore_errors=True)
            runs.append(timed(cmd))
        best[name] = min(runs)
    shutil.rmtree(dst, ignore_errors=True)
    return best


def timed(cmd, sync_after=False):
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if sync_after:
        subprocess.run(["sync"], check=True)
    return time.perf_counter() - t0


def measure_store(tilestage, src, dst, rounds, cold):
    files = sorted(glob.glob(os.path.join(src, "*")))
    stage = [tilestage, "stage", "--from", src, "--to", dst, "--mode", "replicate"]
    contenders = {
        "cp": (["cp", "-r", src, dst], False),
        "stage_nosync": (stage + ["--no-sync"], False),
        "mpirun_stage_nosync": (MPIRUN + stage + ["--no-sync"], False),
        "cp_sync": (["cp", "-r", src, dst], True),
        "stage": (stage, False),
        "mpirun_stage": (MPIRUN + stage, False),
    }
    if cold:
        contenders["cat"] = (["cat"] + files, False)
    times = {name: [] for name in contenders}
    for round_index in range(rounds):
        order = list(contenders.items())
        if round_index % 2:
            order.reverse()  # each contender runs after a different one every other round
        for name, (cmd, sync_after) in order:
            shutil.rmtree(dst, ignore_errors=True)
            subprocess.run(["sync"], check=True)
            if cold:
                evict(files)
            else:
                warm(files)
            if name == "cat":
                t0 = time.perf_counter()
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
                times[name].append(time.perf_counter() - t0)
            else:
                times[name].append(timed(cmd, sync_after))
    shutil.rmtree(dst, ignore_errors=True)
    best = {name: min(t) for name, t in times.items()}
    ratios = {
        "stage_nosync_vs_cp": best["cp"] / best["stage_nosync"],
        "mpirun_stage_nosync_vs_cp": best["cp"] / best["mpirun_stage_nosync"],
        "stage_vs_cp_sync": best["cp_sync"] / best["stage"],
        "mpirun_stage_vs_cp_sync": best["cp_sync"] / best["mpirun_stage"],
    }
    if cold:
        ratios["cat_vs_stage_nosync"] = best["cat"] / best["stage_nosync"]
        ratios["cat_vs_cp"] = best["cat"] / best["cp"]
    return {"seconds": best, "runs": times, "ratios": ratios}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    ap.add_argument("--tilestage", default=os.path.join(root, "build/release/tools/tilestage"))
    ap.add_argument("--workdir", default="/tmp/tilestage-bench-stage")
    ap.add_argument("--sizes-mb", default="100,2000", help="store sizes, MB")
    ap.add_argument("--shards-mib", default="32,256", help="shard sizes, MiB")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cold", action="store_true", help="also the cold-cache case")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    dst = os.path.join(args.workdir, "dst")
    results = {"stores": []}
    stores = [(int(mb), int(mib)) for mb in args.sizes_mb.split(",")
              for mib in args.shards_mib.split(",")]
    sources = {key: make_store(args.tilestage, args.workdir, *key) for key in stores}
    watch = LoadWatch()
    fixed = measure_fixed_cost(args.tilestage, args.workdir, args.rounds)
    results["fixed_cost_s"] = fixed
    for cache in ["warm", "cold"] if args.cold else ["warm"]:
        for (mb, mib) in stores:
            src = sources[(mb, mib)]
            size = sum(os.path.getsize(f) for f in glob.glob(os.path.join(src, "*")))
            r = measure_store(args.tilestage, src, dst, args.rounds, cache == "cold")
            r.update({"cache": cache, "store_mb": mb, "shard_mib": mib, "bytes": size})
            if cache == "warm":
                shards = [os.path.getsize(f) for f in glob.glob(os.path.join(src, "*.tss"))]
                copy_s = ((r["seconds"]["cp"] - fixed["cp"]) * lpt_makespan(shards, os.cpu_count())
                          / sum(shards))
                r["floor_s"] = {k: fixed[k] + copy_s for k in ("single", "mpirun")}
                r["ratios"]["cp_vs_floor"] = r["seconds"]["cp"] / r["floor_s"]["single"]
                r["ratios"]["cp_vs_mpirun_floor"] = r["seconds"]["cp"] / r["floor_s"]["mpirun"]
            results["stores"].append(r)
    results["core_use"] = watch.finish()

    print(f"tilestage stage vs cp -r, same store, same file system ({args.workdir}); "
          f"best of {args.rounds}, wall seconds of the whole command")
    head = (f"{'cache':5s} {'store':>7s} {'shard':>8s} | {'cp':>6s} {'stage':>6s} {'mpi2':>6s} "
            f"{'x cp':>5s} {'mpi x':>5s} | {'cp+sync':>7s} {'stage':>6s} {'mpi2':>6s} "
            f"{'x cp':>5s} {'mpi x':>5s} | {'cat':>6s} | {'floor':>6s} {'mpi2':>6s} "
            f"{'x cp':>5s} {'mpi x':>5s}")
    print(head)
    for r in results["stores"]:
        s, q = r["seconds"], r["ratios"]
        cat = f"{s['cat']:6.3f}" if "cat" in s else "     -"
        floor = (f"{r['floor_s']['single']:6.3f} {r['floor_s']['mpirun']:6.3f} "
                 f"{q['cp_vs_floor']:5.2f} {q['cp_vs_mpirun_floor']:5.2f}" if "floor_s" in r
                 else f"{'-':>6s} {'-':>6s} {'-':>5s} {'-':>5s}")
        print(f"{r['cache']:5s} {r['bytes'] / 1e6:5.0f}MB {r['shard_mib']:5d}MiB | "
              f"{s['cp']:6.3f} {s['stage_nosync']:6.3f} {s['mpirun_stage_nosync']:6.3f} "
              f"{q['stage_nosync_vs_cp']:5.2f} {q['mpirun_stage_nosync_vs_cp']:5.2f} | "
              f"{s['cp_sync']:7.3f} {s['stage']:6.3f} {s['mpirun_stage']:6.3f} "
              f"{q['stage_vs_cp_sync']:5.2f} {q['mpirun_stage_vs_cp_sync']:5.2f} | {cat} | "
              f"{floor}")
    print("x cp: cp's time / tilestage's, one process; mpi x: the same for mpirun -np 2 "
          "(target >= 1.0 for both)")
    print(f"floor: fixed cost (stage of a 4-record store: {fixed['single']:.3f} s, under mpirun "
          f"-np 2 {fixed['mpirun']:.3f} s; cp -r of it {fixed['cp']:.3f} s) + the shards' "
          f"largest-first copy over {os.cpu_count()} cores at cp's copy rate, no verification; "
          "its x cp: the best ratio those allow")
    print(results["core_use"]["text"])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
