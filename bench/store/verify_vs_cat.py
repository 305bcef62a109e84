#!/usr/bin/python3
"""`tilestage verify` against `cat` of the same shard files, in one run.

    /usr/bin/python3 bench/store/verify_vs_cat.py --store DIR [--tilestage BIN] [--threads T]
        [--rounds R] [--cold] [--json OUT]

Each round times `cat <every shard> > /dev/null` and `tilestage verify DIR` (whole-file hashes,
record checksums and decoding, shards in parallel on T threads, 0 = one per core), alternating;
best of R rounds each. Page cache warm by default (one untimed cat first); with --cold every
file's pages are evicted with posix_fadvise(DONTNEED) before each timed command, so both read
from the device. Prints the load average before and after, each rate and verify / cat (target
>= 0.8) of the best runs and of the medians, then one JSON line. Measures; asserts nothing.
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from page_cache import evict  # noqa: E402


def timed(cmd, cold, files):
    if cold:
        evict(files)
    t0 = time.perf_counter()
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--store", required=True)
    p.add_argument("--tilestage", default=os.path.join(ROOT, "build/release/tools/tilestage"))
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--cold", action="store_true")
    p.add_argument("--json")
    a = p.parse_args()
    shards = sorted(glob.glob(os.path.join(a.store, "*.tss")))
    if not shards:
        sys.exit(f"{a.store}: no .tss shard files")
    files = shards + [os.path.join(a.store, "manifest.json")]
    size = sum(os.path.getsize(f) for f in shards)
    quoted = " ".join(f"'{f}'" for f in shards)
    cat = f"cat {quoted} > /dev/null"
    verify = f"'{a.tilestage}' verify '{a.store}' --threads {a.threads}"
    subprocess.run(cat, shell=True, check=True)
    before = os.getloadavg()
    cat_s, verify_s = [], []
    for _ in range(a.rounds):
        cat_s.append(timed(cat, a.cold, files))
        verify_s.append(timed(verify, a.cold, files))
    after = os.getloadavg()
    best_cat, best_verify = min(cat_s), min(verify_s)
    median_cat, median_verify = statistics.median(cat_s), statistics.median(verify_s)
    results = {"store": a.store, "bytes": size, "shards": len(shards), "cold": a.cold,
               "threads": a.threads, "rounds": a.rounds, "cat_s": cat_s, "verify_s": verify_s,
               "cat_gb_per_s": size / best_cat / 1e9, "verify_gb_per_s": size / best_verify / 1e9,
               "verify_over_cat": best_cat / best_verify,
               "median_verify_over_cat": median_cat / median_verify, "load_average_before": before,
               "load_average_after": after}
    print("load average before {:.2f} {:.2f} {:.2f}, after {:.2f} {:.2f} {:.2f}".format(
        *before, *after))
    print(f"{size / 1e6:.0f} MB in {len(shards)} shards, page cache {'cold' if a.cold else 'warm'}, "
          f"best of {a.rounds}")
    print(f"cat                {best_cat:7.3f} s  {results['cat_gb_per_s']:6.2f} GB/s")
    print(f"tilestage verify   {best_verify:7.3f} s  {results['verify_gb_per_s']:6.2f} GB/s")
    print(f"verify / cat: {results['verify_over_cat']:.2f}x (target >= 0.8); by the medians "
          f"({median_verify:.3f} s against {median_cat:.3f} s) "
          f"{results['median_verify_over_cat']:.2f}x"
          + (": a virtual disk's cold reads vary from run to run, and the best of a few favours "
             "the contender that varies most" if a.cold else ""))
    print(json.dumps(results))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
