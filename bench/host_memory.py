#!/usr/bin/python3
"""What new memory costs on this host: the price every I/O benchmark here pays for pages it touches
for the first time, which on a virtual machine can dwarf the copy itself.

    /usr/bin/python3 bench/host_memory.py [--mib 512] [--pause 3] [--json OUT]

Measures, for --mib MiB (best of 3 each, 2 for the rounds after a pause; about 20 s):
  - first touch of fresh anonymous memory in 4 KiB pages (one write per page: one page fault
    each), as microseconds per page, against a second pass over the same pages;
  - the same with MADV_HUGEPAGE (2 MiB pages), right after the previous round freed its memory,
    and again after a pause of --pause seconds (a guest with free page reporting hands freed
    memory back to its host within seconds; the next first touch then waits for the host too);
  - dd of the same bytes into a new file on /dev/shm right after removing the previous one, and
    after the same pause: the "write once at dd's rate" that the ingest bounds use. Whether the
    pause costs anything depends on what the host did with the reported memory meanwhile (on the
    2-core VM: 1 GB took 0.24 s either way in one hour, 0.24 s against 1.2-1.6 s in another).
Prints the host's free page reporting settings when the kernel has them. Asserts nothing.
"""
import argparse
import json
import mmap
import os
import subprocess
import time

import numpy as np

PAGE = 4096


def touch_rounds(nbytes, huge, pause_s, rounds=3):
    """Seconds of the first and the second write of one byte per 4 KiB page of a new mapping."""
    firsts, seconds = [], []
    for _ in range(rounds):
        if pause_s:
            time.sleep(pause_s)
        m = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        if huge:
            m.madvise(mmap.MADV_HUGEPAGE)
        a = np.frombuffer(m, dtype=np.uint8)
        t = time.perf_counter()
        a[::PAGE] = 1
        firsts.append(time.perf_counter() - t)
        t = time.perf_counter()
        a[::PAGE] = 2
        seconds.append(time.perf_counter() - t)
        del a
        m.close()
    return min(firsts), min(seconds)


def dd_rounds(nbytes, pause_s, rounds=3):
    path = "/dev/shm/tilestage-host-memory-dd.bin"
    best = float("inf")
    try:
        subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={nbytes >> 20}",
                        "status=none"], check=True)
        for _ in range(rounds):
            os.remove(path)
            if pause_s:
                time.sleep(pause_s)
            t = time.perf_counter()
            subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=1M",
                            f"count={nbytes >> 20}", "status=none"], check=True)
            best = min(best, time.perf_counter() - t)
    finally:
        if os.path.exists(path):
            os.remove(path)
    return best


def page_reporting():
    d = "/sys/module/page_reporting/parameters"
    if not os.path.isdir(d):
        return {}
    out = {}
    for name in sorted(os.listdir(d)):
        try:
            with open(os.path.join(d, name)) as f:
                out[name] = f.read().strip()
        except OSError:
            pass
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=512)
    ap.add_argument("--pause", type=float, default=3.0,
                    help="seconds to wait before the 'after a pause' rounds")
    ap.add_argument("--json")
    args = ap.parse_args()
    nbytes = args.mib << 20
    pages = nbytes // PAGE
    gb = nbytes / 1e9

    small_first, small_second = touch_rounds(nbytes, huge=False, pause_s=0)
    huge_first, huge_second = touch_rounds(nbytes, huge=True, pause_s=0)
    huge_paused, _ = touch_rounds(nbytes, huge=True, pause_s=args.pause, rounds=2)
    dd_now = dd_rounds(nbytes, pause_s=0)
    dd_paused = dd_rounds(nbytes, pause_s=args.pause, rounds=2)
    reporting = page_reporting()

    print(f"new memory on this host, {args.mib} MiB, best of 3 or 2 (load average "
          f"{os.getloadavg()[0]:.2f})")
    print(f"  4 KiB pages, first touch   {small_first:7.3f} s  {small_first / pages * 1e6:6.2f} us "
          f"per page  ({gb / small_first:6.2f} GB/s); second pass {small_second:.3f} s")
    print(f"  2 MiB pages, first touch   {huge_first:7.3f} s  ({gb / huge_first:6.2f} GB/s), "
          f"memory freed just before; second pass {huge_second:.3f} s")
    print(f"  2 MiB pages, after {args.pause:g} s     {huge_paused:7.3f} s  "
          f"({gb / huge_paused:6.2f} GB/s): {huge_paused / huge_first:.1f}x the above")
    print(f"  dd into /dev/shm           {dd_now:7.3f} s  ({gb / dd_now:6.2f} GB/s), previous file "
          f"removed just before")
    print(f"  dd into /dev/shm after {args.pause:g} s {dd_paused:7.3f} s  "
          f"({gb / dd_paused:6.2f} GB/s): {dd_paused / dd_now:.1f}x the above")
    if reporting:
        print("  free page reporting: " + ", ".join(f"{k}={v}" for k, v in reporting.items()))
    else:
        print("  free page reporting: not in this kernel")
    result = {"mib": args.mib, "pause_s": args.pause,
              "first_touch_4k_s": small_first, "first_touch_4k_us_per_page": small_first / pages * 1e6,
              "second_pass_4k_s": small_second, "first_touch_2m_s": huge_first,
              "second_pass_2m_s": huge_second, "first_touch_2m_after_pause_s": huge_paused,
              "dd_shm_s": dd_now, "dd_shm_after_pause_s": dd_paused,
              "page_reporting": reporting, "load_average": os.getloadavg()}
    print(json.dumps(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
