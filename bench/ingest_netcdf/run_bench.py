#!/usr/bin/python3
"""NetCDF ingest benchmark, three ways over the same generated data in one run:

  raw        netcdf_raw_read: nc_get_vara of every step of the variables, stored type, one thread
             (the limit: netCDF-C is not thread-safe)
  tilestage  tilestage ingest netcdf --tile full (whole-grid samples, ClimaX style): direct reads
             (pread of contiguous variables, lock-free, in parallel; the default)
  tilestage --library-reads
             the same ingest with every read through nc_get_vara under one lock (the reference
             path), run alternately with the default one so both see the same machine load
  python     climax_style.py: xarray.open_mfdataset + numpy savez shards (Debian python3-xarray,
             python3-netcdf4)
  read paths netcdf_read_paths: the ingest's read stage alone (NetcdfDataset::ReadRaw of every
             step, stored type, no unpacking), library path vs direct preads, 1 and 2 threads
  dd         context, not a peer: writing the decoded output's bytes once with dd, the cost any
             ingest that stores its samples adds to the read

Data: one netCDF-4 file per "year" (daily steps), 3 packed int16 surface variables with fill
values and 3 float32 variables on 5 pressure levels; about 1 GB with the defaults. Files are read
once before timing so every contender reads from the page cache.

CPU seconds are user + system time of each child (getrusage); with --perf, tilestage runs are
also measured with `perf stat -e task-clock` (CPU seconds as the kernel counts them).

usage (from the repository root, after building tilestage, netcdf_raw_read, netcdf_read_paths):
  /usr/bin/python3 bench/ingest_netcdf/run_bench.py [--build build/release] [--work DIR]
      [--years 5] [--steps 365] [--grid 64,128] [--repeat 3] [--perf]
"""
import argparse
import glob
import json
import os
import resource
import shutil
import subprocess
import sys
import time

import numpy as np

LEVELS = [250.0, 500.0, 700.0, 850.0, 1000.0]
SURFACE = ["t2m", "u10", "v10"]
UPPER = ["z", "t", "u"]


def generate(work, years, steps, ny, nx):
    import netCDF4

    stamp = os.path.join(work, f"data-{years}-{steps}-{ny}x{nx}.done")
    data_dir = os.path.join(work, "data")
    if os.path.exists(stamp):
        return sorted(glob.glob(os.path.join(data_dir, "*.nc")))
    shutil.rmtree(data_dir, ignore_errors=True)
    os.makedirs(data_dir)
    rng = np.random.default_rng(0)
    lat = np.linspace(90 - 90 / ny, -90 + 90 / ny, ny)
    lon = np.arange(nx) * 360.0 / nx
    paths = []
    for y in range(years):
        year = 1979 + y
        path = os.path.join(data_dir, f"era_{year}.nc")
        with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
            nc.createDimension("time", steps)
            nc.createDimension("level", len(LEVELS))
            nc.createDimension("latitude", ny)
            nc.createDimension("longitude", nx)
            t = nc.createVariable("time", "f8", ("time",))
            t.units = f"hours since {year}-01-01 00:00:00"
            t.calendar = "standard"
            t.standard_name = "time"
            t[:] = np.arange(steps) * 24.0
            lv = nc.createVariable("level", "f8", ("level",))
            lv.units = "hPa"
            lv.positive = "down"
            lv[:] = LEVELS
            la = nc.createVariable("latitude", "f8", ("latitude",))
            la.units = "degrees_north"
            la[:] = lat
            lo = nc.createVariable("longitude", "f8", ("longitude",))
            lo.units = "degrees_east"
            lo[:] = lon
            base = np.cos(np.radians(lat))[:, None] * np.ones((1, nx))
            for i, name in enumerate(SURFACE):
                v = nc.createVariable(name, "i2", ("time", "latitude", "longitude"),
                                      fill_value=-32767)
                v.set_auto_maskandscale(False)
                v.scale_factor = 0.002
                v.add_offset = 250.0 + i
                v.missing_value = np.int16(-32767)
                for t0 in range(0, steps, 73):
                    n = min(73, steps - t0)
                    phys = 250.0 + i + 40 * base + rng.normal(0, 5, (n, ny, nx))
                    packed = np.round((phys - v.add_offset) / v.scale_factor).astype(np.int16)
                    packed[:, :2, :3] = -32767  # a few fills per step
                    v[t0:t0 + n] = packed
            for i, name in enumerate(UPPER):
                v = nc.createVariable(name, "f4", ("time", "level", "latitude", "longitude"),
                                      fill_value=np.float32(1e20))
                for t0 in range(0, steps, 73):
                    n = min(73, steps - t0)
                    v[t0:t0 + n] = (100 * i + 30 * base[None, None] +
                                    rng.normal(0, 3, (n, len(LEVELS), ny, nx))).astype(np.float32)
        paths.append(path)
    open(stamp, "w").close()
    return paths


def timed(cmd, perf_out=None):
    """Wall seconds, CPU seconds (user + system of the child) and stdout of one run; with
    perf_out, the run goes under `perf stat -e task-clock` and its CPU seconds are added."""
    if perf_out:
        cmd = ["perf", "stat", "-e", "task-clock", "-x", ",", "-o", perf_out, "--"] + cmd
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if run.returncode != 0:
        sys.exit(f"failed ({run.returncode}): {' '.join(cmd)}\n{run.stdout}\n{run.stderr}")
    task_clock_s = None
    if perf_out:
        with open(perf_out) as fh:
            for line in fh:
                fields = line.strip().split(",")
                if len(fields) > 2 and fields[2].startswith("task-clock"):
                    task_clock_s = float(fields[0]) / 1e3  # msec
    return seconds, cpu, run.stdout, task_clock_s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--work", default="/tmp/tilestage-bench-netcdf")
    ap.add_argument("--years", type=int, default=5)
    ap.add_argument("--steps", type=int, default=365)
    ap.add_argument("--grid", default="64,128")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out-dir", default="/dev/shm/tilestage-bench-netcdf-out",
                    help="where tilestage and python write (tmpfs by default, so the disk of a "
                         "shared machine does not decide the race)")
    ap.add_argument("--repeat", type=int, default=2,
                    help="rounds of raw and tilestage runs, contenders alternating; best kept")
    ap.add_argument("--perf", action="store_true",
                    help="also measure tilestage runs with perf stat -e task-clock")
    args = ap.parse_args()
    ny, nx = (int(v) for v in args.grid.split(","))
    os.makedirs(args.work, exist_ok=True)
    t0 = time.perf_counter()
    files = generate(args.work, args.years, args.steps, ny, nx)
    gen_s = time.perf_counter() - t0
    data_bytes = sum(os.path.getsize(f) for f in files)
    for f in files:  # warm the page cache for every contender alike
        with open(f, "rb") as fh:
            while fh.read(1 << 24):
                pass
    variables = SURFACE + UPPER
    tilestage = os.path.join(args.build, "tools", "tilestage")
    if not os.path.exists(tilestage):
        tilestage = shutil.which("tilestage") or tilestage
    raw_bin = os.path.join(args.build, "bench", "ingest_netcdf", "netcdf_raw_read")
    here = os.path.dirname(os.path.abspath(__file__))

    os.makedirs(args.out_dir, exist_ok=True)
    results = {"data_bytes": data_bytes, "files": len(files), "grid": [ny, nx],
               "steps": args.years * args.steps,
               "channels": len(SURFACE) + len(UPPER) * len(LEVELS), "generate_s": gen_s,
               "out_dir": args.out_dir, "load_average": os.getloadavg()}

    contenders = []  # (label, make_cmd, parse, perf)

    def add(label, make_cmd, parse, perf=False):
        contenders.append((label, make_cmd, parse, perf))

    add("raw", lambda: [raw_bin, ",".join(variables)] + files, json.loads)
    tilestage_runs = [("tilestage_none", "none", []), ("tilestage_library_none", "none",
                                                         ["--library-reads"]),
                      ("tilestage_zstd", "zstd", []),
                      ("tilestage_zstd_shuffle", "zstd+shuffle", [])]
    for label, codec, extra in tilestage_runs:
        store = os.path.join(args.out_dir, f"store-{label}")
        cmd = [tilestage, "ingest", "netcdf", "--out", store, "--vars", ",".join(variables),
               "--tile", "full", "--codec", codec, "--json", "--threads", str(args.threads)]
        cmd += extra

        def make(cmd=cmd, store=store):
            shutil.rmtree(store, ignore_errors=True)
            return cmd + files
        add(label, make, json.loads, perf=args.perf)
        results[label] = {"command": " ".join(cmd) + " " + " ".join(files)}
    # Rounds: every contender once per round, so a burst of load from other users of the machine
    # hits them alike; the best run of each is kept.
    runs = {label: [] for label, _, _, _ in contenders}
    perf_out = os.path.join(args.out_dir, "perf-stat.txt")
    for _ in range(args.repeat):
        for label, make_cmd, parse, perf in contenders:
            wall, cpu, out, task_clock_s = timed(make_cmd(), perf_out if perf else None)
            runs[label].append({"wall_s": wall, "cpu_s": cpu, "task_clock_s": task_clock_s,
                                "output": parse(out), "load_average": os.getloadavg()[0]})
    for label, _, _, _ in contenders:
        best_run = min(runs[label], key=lambda r: r["wall_s"])
        results.setdefault(label, {}).update(best_run)
        results[label]["runs_wall_s"] = [r["wall_s"] for r in runs[label]]
        results[label]["runs_cpu_s"] = [r["cpu_s"] for r in runs[label]]
        results[label]["runs_task_clock_s"] = [r["task_clock_s"] for r in runs[label]]
    for label, _, _ in tilestage_runs:
        shutil.rmtree(os.path.join(args.out_dir, f"store-{label}"), ignore_errors=True)

    def best(label, make_cmd, parse):
        measured = []
        for _ in range(args.repeat):
            wall, cpu, out, _ = timed(make_cmd())
            measured.append({"wall_s": wall, "cpu_s": cpu, "output": parse(out)})
        results[label] = min(measured, key=lambda r: r["wall_s"])
        results[label]["runs_wall_s"] = [r["wall_s"] for r in measured]

    # The read stage alone, library vs direct, 1 and N threads (N: --threads, else the cores).
    read_paths_bin = os.path.join(args.build, "bench", "ingest_netcdf", "netcdf_read_paths")
    read_threads = args.threads if args.threads > 0 else os.cpu_count()
    _, _, out, _ = timed([read_paths_bin, ",".join(variables), str(read_threads),
                          str(args.repeat)] + files)
    results["read_paths"] = json.loads(out)
    results["read_paths"]["load_average"] = os.getloadavg()[0]

    # Writing the decoded output once (dd from /dev/zero to the output file system) is what any
    # ingest that stores its samples pays on top of the read; on a disk file system, where
    # tilestage fsyncs every shard, dd fsyncs too.
    out_bytes = results["tilestage_none"]["output"]["raw_bytes"]
    dd_out = os.path.join(args.out_dir, "dd-write.bin")
    # df names the type of the mount that holds the path (stat -f reports ext4 as "ext2/ext3",
    # whose magic it shares; findmnt lists every mount stacked on the path's mount point).
    fs_type = subprocess.run(["df", "--output=fstype", args.out_dir], capture_output=True, text=True,
                             check=True).stdout.split()[-1]
    on_disk = fs_type not in ("tmpfs", "ramfs")
    results["out_fs"] = fs_type

    def make_dd():
        if os.path.exists(dd_out):
            os.remove(dd_out)
        return (["dd", "if=/dev/zero", f"of={dd_out}", "bs=1M", f"count={out_bytes >> 20}",
                 "status=none"] + (["conv=fsync"] if on_disk else []))
    best("dd_write", make_dd, lambda out: {})
    os.remove(dd_out)

    py_out = os.path.join(args.out_dir, "python-npz")
    shutil.rmtree(py_out, ignore_errors=True)
    wall, cpu, out, _ = timed(["/usr/bin/python3", os.path.join(here, "climax_style.py"), py_out,
                               ",".join(variables), ",".join(f"{v:g}" for v in LEVELS), "4"]
                              + files)
    results["python"] = {"wall_s": wall, "cpu_s": cpu, "output": json.loads(out)}
    shutil.rmtree(py_out, ignore_errors=True)

    print(f"data: {len(files)} netCDF-4 files, {data_bytes / 1e9:.3f} GB, "
          f"{results['steps']} steps, "
          f"{results['channels']} channels, grid {ny}x{nx} (generated in {gen_s:.1f} s); "
          f"outputs in {args.out_dir}; load average {results['load_average'][0]:.1f}")
    raw_bytes = results["raw"]["output"]["bytes"]
    print(f"{'contender':<28}{'wall s':>9}{'cpu s':>9}{'MB/s wall':>11}{'wall vs raw':>13}"
          f"{'wall vs py':>12}{'cpu vs py':>11}")
    names = [("raw nc_get_vara", "raw"), ("tilestage direct (none)", "tilestage_none"),
             ("tilestage --library-reads", "tilestage_library_none"),
             ("tilestage (zstd)", "tilestage_zstd"),
             ("tilestage (zstd+shuffle)", "tilestage_zstd_shuffle"), ("python xarray", "python"),
             ("dd write" + (" conv=fsync" if on_disk else ""), "dd_write")]
    py = results["python"]
    for name, key in names:
        r = results[key]
        print(f"{name:<28}{r['wall_s']:>9.2f}{r['cpu_s']:>9.2f}"
              f"{raw_bytes / r['wall_s'] / 1e6:>11.1f}"
              f"{results['raw']['wall_s'] / r['wall_s']:>13.3f}{py['wall_s'] / r['wall_s']:>12.2f}"
              f"{py['cpu_s'] / max(r['cpu_s'], 1e-9):>11.2f}")
    results["ratios"] = {}
    for codec in ["none", "library_none", "zstd", "zstd_shuffle"]:
        r = results[f"tilestage_{codec}"]
        results["ratios"][codec] = {
            "speedup_vs_python_wall": py["wall_s"] / r["wall_s"],
            "speedup_vs_python_cpu": py["cpu_s"] / r["cpu_s"],
            "fraction_of_raw_wall": results["raw"]["wall_s"] / r["wall_s"],
            "fraction_of_raw_cpu": results["raw"]["cpu_s"] / r["cpu_s"],
            "stored_over_raw_bytes": r["output"]["stored_bytes"] / r["output"]["raw_bytes"],
        }
    direct, library = results["tilestage_none"], results["tilestage_library_none"]
    results["ratios"]["direct_vs_library"] = {
        "wall": library["wall_s"] / direct["wall_s"],
        "cpu": library["cpu_s"] / direct["cpu_s"],
    }
    line = (f"direct reads vs --library-reads (codec none): "
            f"{library['wall_s'] / direct['wall_s']:.2f}x wall, "
            f"{library['cpu_s'] / direct['cpu_s']:.2f}x CPU (rusage)")
    if direct.get("task_clock_s") and library.get("task_clock_s"):
        results["ratios"]["direct_vs_library"]["task_clock"] = (
            library["task_clock_s"] / direct["task_clock_s"])
        line += (f", task-clock {direct['task_clock_s']:.2f} s vs {library['task_clock_s']:.2f} s"
                 f" = {library['task_clock_s'] / direct['task_clock_s']:.2f}x")
    print(line)
    raw_s = results["raw"]["output"]["seconds"]
    print(f"read stage alone (NetcdfDataset::ReadRaw, best of {args.repeat}; raw nc_get_vara "
          f"{raw_s:.3f} s in-process):")
    for path in ["library", "direct"]:
        for threads, r in sorted(results["read_paths"][path].items(), key=lambda kv: int(kv[0])):
            print(f"  {path:<8} {threads} thread(s) {r['seconds']:>7.3f} s "
                  f"{r['mb_per_s']:>8.0f} MB/s  {raw_s / r['seconds']:.2f}x the raw rate")
    # The bound for any ingest that reads the variables (at the raw read's cost) and writes the
    # decoded output once (at dd's cost), doing nothing else: on tmpfs both spread over the cores;
    # on a disk the larger of the read and dd's write with fsync (the device works meanwhile).
    raw_wall, dd_wall = results["raw"]["wall_s"], results["dd_write"]["wall_s"]
    cores = os.cpu_count() or 1
    bound = max(raw_wall, dd_wall) if on_disk else (raw_wall + dd_wall) / cores
    results["bound_s"] = bound
    how = (f"max(raw {raw_wall:.2f}, dd conv=fsync {dd_wall:.2f})" if on_disk else
           f"(raw {raw_wall:.2f} + dd {dd_wall:.2f}) / {cores} cores")
    print(f"read + write bound on {fs_type}: {how} = {bound:.3f} s")
    for codec in ["none", "zstd_shuffle"]:
        r = results[f"tilestage_{codec}"]
        results["ratios"][codec]["fraction_of_bound_wall"] = bound / r["wall_s"]
        print(f"  tilestage ({codec}) {r['wall_s']:.3f} s: {bound / r['wall_s']:.2f} of the bound"
              + ("  (target >= 0.80)" if codec == "none" else
                 f"  (the codec costs {r['wall_s'] - results['tilestage_none']['wall_s']:+.3f} s)"))
    # What a store promises beyond read + write, each measured alone on one core
    # (netcdf_read_paths): the sources' XXH3 for provenance, unpacking to the stored dtype, and
    # the channel statistics. Spread over the cores beside the read and the write (on a disk,
    # beside the read while the device writes), they give the floor of an ingest that keeps every
    # promise; the target is against the plain bound above.
    duties = results["read_paths"]["duties"]
    duty_s = duties["source_hash_s"] + duties["decode_s"] + duties["stats_s"]
    floor = (max(raw_wall + duty_s / cores, dd_wall) if on_disk else
             (raw_wall + dd_wall + duty_s) / cores)
    results["floor_with_duties_s"] = floor
    r = results["tilestage_none"]
    results["ratios"]["none"]["fraction_of_floor_with_duties_wall"] = floor / r["wall_s"]
    print(f"the store's duties on one core: source XXH3 {duties['source_hash_s']:.3f} s, unpack "
          f"{duties['decode_s']:.3f} s, statistics {duties['stats_s']:.3f} s; with them the floor "
          f"is {floor:.3f} s: tilestage (none) {floor / r['wall_s']:.2f} of it")
    print("goals: >= 5x python; --codec none >= 0.80 of the read + write bound (by wall time)")
    print(json.dumps(results["ratios"]))
    with open(os.path.join(args.work, "results.json"), "w") as fh:
        json.dump(results, fh, indent=2)
    print(f"full results: {os.path.join(args.work, 'results.json')}")


if __name__ == "__main__":
    main()
