#!/usr/bin/python3
"""The tilestage Python package's loader vs `tilestage load` and torch DataLoaders, one store.

    PYTHONPATH=build/release/python /usr/bin/python3 bench/loaders/python_loader_bench.py \
        --store DIR [--tilestage BIN] [--batch B] [--threads T] [--mem-budget BYTES]
        [--consumer-threads N] [--repeats R] [--json OUT]

Same samples (one epoch of every record, global shuffle, seed 0), batch B, float32 x normalized
with the manifest statistics, checksums verified on every side:
  * tilestage.Loader from Python, each batch consumed with torch.from_numpy(x).sum(); timed from
    the first batch asked for to the last, like `tilestage load`'s loop (the Loader's creation is
    reported beside it), in a child process (its own peak RSS, and the
    anonymous memory the Loader added, which is what --mem-budget bounds: peak RSS also counts
    the mapped shard pages, reclaimable page cache);
  * the same with 2 ranks (rank 0 and 1 of world 2, two processes at once): per-rank samples/s,
    peak RSS of each against --mem-budget;
  * `tilestage load` (C++), its own loop time and its peak RSS: once as the consumer that reads
    nothing, once with --read-batches (its consumer sums x, the same work as the Python loop's);
  * torch DataLoader over the pure-numpy reader (tools/python/tilestage_reader.py), num_workers
    0 and 2 (load_vs_torch.py's Dataset), worker start-up included, each batch summed as above.
The Python consumers' torch runs N intra-op threads (--consumer-threads, default 1): the sum
stands for a training step that reads the batch; at torch's default (one thread per core) its
threads and the loader's T threads oversubscribe the cores and the measurement is of that
contention (pass 0 to measure it). Contenders alternate within each of R rounds; best of R.
Prints the load average before and after, samples/s, the ratios (targets: Python >= 0.9x
`tilestage load`, >= 5x the best DataLoader), peak RSS and the loader's anonymous memory, then
one JSON line. Measures; asserts nothing.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))


def anon_rss():
    """Anonymous resident bytes: peak RSS also counts the shard pages the loader maps, which are
    page cache the kernel reclaims at will; what the memory budget bounds is anonymous memory."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


def python_epoch(store, batch, threads, mem_budget, rank, world):
    """Child process: one epoch through tilestage.Loader; prints a JSON line."""
    import torch
    import tilestage
    set_consumer_threads(torch)
    anon_before = anon_rss()
    anon_peak = anon_before
    t_open = time.perf_counter()
    loader = tilestage.Loader(store, batch, seed=0, threads=threads, mem_budget=mem_budget,
                              rank=rank, world_size=world)
    t0 = time.perf_counter()
    n, total = 0, 0.0
    for i, b in enumerate(loader):
        total += float(torch.from_numpy(b["x"]).sum())
        n += b["x"].shape[0]
        if i % 8 == 0:
            anon_peak = max(anon_peak, anon_rss())
    seconds = time.perf_counter() - t0
    stats = loader.stats()
    print(json.dumps({"samples": n, "seconds": seconds, "samples_per_s": n / seconds,
                      "open_s": t0 - t_open,
                      "stall_s": stats["wait_s_total"], "memory_bound": stats["memory_bound_bytes"],
                      "loader_anon_bytes": anon_peak - anon_before,
                      "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


def set_consumer_threads(torch):
    threads = int(os.environ.get("TILESTAGE_BENCH_CONSUMER_THREADS", "1"))
    if threads > 0:
        torch.set_num_threads(threads)


def run_measured(cmds, env=None):
    """Runs the commands at once; returns [(stdout, peak RSS bytes)] in order."""
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, text=True, env=env) for c in cmds]
    out = []
    for p in procs:
        stdout = p.stdout.read()
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            sys.exit(f"{' '.join(cmds[procs.index(p)])} failed with {p.returncode}")
        out.append((stdout, usage.ru_maxrss * 1024))
    return out


def best(runs):
    return max(runs, key=lambda r: r["samples_per_s"])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--store", required=True)
    p.add_argument("--tilestage", default=os.path.join(ROOT, "build/release/tools/tilestage"))
    p.add_argument("--reader-dir", default=os.path.join(ROOT, "tools/python"))
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--mem-budget", type=int, default=1 << 30)
    p.add_argument("--consumer-threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--json")
    p.add_argument("--child", nargs=2, type=int, metavar=("RANK", "WORLD"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        return python_epoch(a.store, a.batch, a.threads, a.mem_budget, *a.child)

    os.environ["TILESTAGE_BENCH_CONSUMER_THREADS"] = str(a.consumer_threads)
    me = [sys.executable, os.path.abspath(__file__), "--store", a.store, "--batch", str(a.batch),
          "--threads", str(a.threads), "--mem-budget", str(a.mem_budget)]
    results = {"store": a.store, "batch": a.batch, "threads": a.threads,
               "mem_budget": a.mem_budget}

    def python_run(world):
        runs = run_measured([me + ["--child", str(r), str(world)] for r in range(world)],
                            env=os.environ)
        ranks = [dict(json.loads(out), peak_rss=rss) for out, rss in runs]
        return {"samples_per_s": min(r["samples_per_s"] for r in ranks), "ranks": ranks}

    load_cmd = [a.tilestage, "load", a.store, "--batch", str(a.batch), "--threads",
                str(a.threads), "--mem-budget", str(a.mem_budget), "--json"]

    def load_run(extra=()):
        (out, rss), = run_measured([load_cmd + list(extra)])
        r = json.loads(out)
        return {"samples": r["samples"], "seconds": r["wall_s"],
                "samples_per_s": r["samples_per_s"], "peak_rss": rss}

    sys.path.insert(0, HERE)
    import torch
    from load_vs_torch import ReaderDataset, norm_params, torch_epoch
    set_consumer_threads(torch)
    with open(os.path.join(a.store, "manifest.json")) as f:
        mean, inv_std = norm_params(json.load(f))
    ds = ReaderDataset(a.store, a.reader_dir, mean, inv_std)

    def dataloader_run(workers):
        n, s = torch_epoch(ds, a.batch, workers, consume=True)
        return {"samples": n, "seconds": s, "samples_per_s": n / s}

    contenders = {"python": lambda: python_run(1), "python_2_ranks": lambda: python_run(2),
                  "tilestage_load": load_run,
                  "tilestage_load_reading": lambda: load_run(["--read-batches"]),
                  "torch_reader_w0": lambda: dataloader_run(0),
                  "torch_reader_w2": lambda: dataloader_run(2)}
    results["load_average_before"] = os.getloadavg()
    rounds = {name: [] for name in contenders}
    for _ in range(a.repeats):
        for name, run in contenders.items():
            rounds[name].append(run())
    results["load_average_after"] = os.getloadavg()
    for name, runs in rounds.items():
        results[name] = best(runs)
    results["tilestage_load"]["command"] = " ".join(load_cmd)
    results["consumer_threads"] = torch.get_num_threads()

    py = results["python"]["samples_per_s"]
    cxx = results["tilestage_load"]["samples_per_s"]
    best_torch = max(results[f"torch_reader_w{w}"]["samples_per_s"] for w in (0, 2))
    cxx_reading = results["tilestage_load_reading"]["samples_per_s"]
    results["ratio_python_over_load"] = py / cxx
    results["ratio_python_over_load_reading"] = py / cxx_reading
    results["ratio_python_over_best_dataloader"] = py / best_torch

    one, two = results["python"]["ranks"], results["python_2_ranks"]["ranks"]
    rows = [("tilestage.Loader (Python)", py, one[0]["peak_rss"], one[0]["loader_anon_bytes"]),
            ("tilestage.Loader (Python), 2 ranks, per rank",
             results["python_2_ranks"]["samples_per_s"], max(r["peak_rss"] for r in two),
             max(r["loader_anon_bytes"] for r in two)),
            ("tilestage load (C++)", cxx, results["tilestage_load"]["peak_rss"], None),
            ("tilestage load --read-batches (C++, sums x)", cxx_reading,
             results["tilestage_load_reading"]["peak_rss"], None),
            ("torch DataLoader, numpy reader, workers=0",
             results["torch_reader_w0"]["samples_per_s"], None, None),
            ("torch DataLoader, numpy reader, workers=2",
             results["torch_reader_w2"]["samples_per_s"], None, None)]
    print("load average before {:.2f} {:.2f} {:.2f}, after {:.2f} {:.2f} {:.2f}; consumer torch "
          "threads {}".format(*results["load_average_before"], *results["load_average_after"],
                              results["consumer_threads"]))
    print(f"{'loader':48s} {'samples/s':>10s} {'Python x':>9s} {'peak RSS MiB':>13s} "
          f"{'loader anon MiB':>16s}")
    mib = lambda v, w: f"{v / 2**20:{w}.1f}" if v is not None else f"{'-':>{w}s}"
    for name, rate, rss, anon in rows:
        print(f"{name:48s} {rate:10.1f} {py / rate:8.2f}x {mib(rss, 13)} {mib(anon, 16)}")
    print(f"Python / tilestage load: {py / cxx:.3f}x (target >= 0.9); with the same consumer "
          f"work (--read-batches): {py / cxx_reading:.3f}x; Python / best DataLoader: "
          f"{py / best_torch:.2f}x (target >= 5); memory budget {a.mem_budget / 2**20:.0f} MiB per rank")
    print(json.dumps(results))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
