#!/usr/bin/python3
"""Loader throughput: `tilestage load` vs PyTorch's DataLoader over the same samples.

    bench/loaders/load_vs_torch.py --store DIR [--tilestage BIN] [--reader-dir DIR]
        [--npy-dir DIR] [--batch B] [--threads T] [--repeats R] [--json OUT]

Same samples (every record of STORE, one epoch, shuffled), same batch size, same per-channel
normalization from the manifest statistics (NaN -> 0), float32 channel-first batches:
  * tilestage load STORE --batch B --threads T (TBB pipeline, checksums verified), its own timing;
  * torch DataLoader over a Dataset that reads records with the pure-numpy tilestage reader
    (tools/python/tilestage_reader.py, checksums verified), num_workers 0 and 2;
  * torch DataLoader over one .npy file per sample (written once into --npy-dir), workers 0 and 2.
Torch timings cover iterating one epoch, worker start-up included (what a training loop waits for).
Best of R repeats each. Ratio = tilestage samples/s / torch samples/s. Measures; asserts nothing.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset


def norm_params(manifest):
    x = next(f for f in manifest["fields"] if f["name"] == "x")
    mean = np.array([s["mean"] for s in x["stats"]], dtype=np.float32)
    var = np.array([s["m2"] / s["count"] for s in x["stats"]], dtype=np.float64)
    std = np.sqrt(var).astype(np.float32)
    std[std == 0] = 1
    return mean[:, None, None], (1.0 / std)[:, None, None]


def normalize(x, mean, inv_std):
    x = (x.astype(np.float32) - mean) * inv_std
    return np.nan_to_num(x, nan=0.0, copy=False)


class ReaderDataset(Dataset):
    def __init__(self, path, reader_dir, mean, inv_std):
        self.path, self.reader_dir, self.mean, self.inv_std = path, reader_dir, mean, inv_std
        self.store = None
        self.n = len(self._open())

    def _open(self):
        if self.store is None:
            sys.path.insert(0, self.reader_dir)
            import tilestage_reader
            self.store = tilestage_reader.Store(self.path)
        return self.store

    def __len__(self):
        return self.n

    def __getstate__(self):  # worker processes open their own store
        d = dict(self.__dict__)
        d["store"] = None
        return d

    def __getitem__(self, i):
        return torch.from_numpy(normalize(self._open()[i]["x"], self.mean, self.inv_std))


class NpyDataset(Dataset):
    def __init__(self, files, mean, inv_std):
        self.files, self.mean, self.inv_std = files, mean, inv_std

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        return torch.from_numpy(normalize(np.load(self.files[i]), self.mean, self.inv_std))


def torch_epoch(ds, batch, workers, consume=False):
    """One shuffled epoch; `consume`: each batch is summed, as a training step would read it."""
    torch.manual_seed(0)
    t0 = time.perf_counter()
    loader = DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers)
    n, total = 0, 0.0
    for b in loader:
        if consume:
            total += float(b.sum())
        n += b.shape[0]
    return n, time.perf_counter() - t0


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.normpath(os.path.join(here, "..", ".."))
    p = argparse.ArgumentParser()
    p.add_argument("--store", required=True)
    p.add_argument("--tilestage", default=os.path.join(root, "build/release/tools/tilestage"))
    p.add_argument("--reader-dir", default=os.path.join(root, "tools/python"))
    p.add_argument("--npy-dir")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--json")
    a = p.parse_args()

    with open(os.path.join(a.store, "manifest.json")) as f:
        manifest = json.load(f)
    mean, inv_std = norm_params(manifest)
    results = {"store": a.store, "batch": a.batch, "threads": a.threads, "torch": torch.__version__}

    cmd = [a.tilestage, "load", a.store, "--batch", str(a.batch), "--threads", str(a.threads),
           "--json"]
    best = None
    for _ in range(a.repeats):
        out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        if best is None or out["samples_per_s"] > best["samples_per_s"]:
            best = out
    results["tilestage"] = {"samples": best["samples"], "seconds": best["wall_s"],
                            "samples_per_s": best["samples_per_s"], "command": " ".join(cmd)}
    n_samples = best["samples"]

    configs = []
    have_reader = os.path.exists(os.path.join(a.reader_dir, "tilestage_reader.py"))
    if have_reader:
        configs.append(("reader", ReaderDataset(a.store, a.reader_dir, mean, inv_std)))
    else:
        print(f"no tilestage_reader.py in {a.reader_dir}: skipping the reader Dataset",
              file=sys.stderr)
    if a.npy_dir:
        files = [os.path.join(a.npy_dir, f"{i:08d}.npy") for i in range(n_samples)]
        if not all(os.path.exists(f) for f in (files[0], files[-1])):
            if not have_reader:
                sys.exit("writing .npy files needs the reader (--reader-dir)")
            os.makedirs(a.npy_dir, exist_ok=True)
            sys.path.insert(0, a.reader_dir)
            import tilestage_reader
            store = tilestage_reader.Store(a.store)
            for i in range(n_samples):
                np.save(files[i], store[i]["x"])
        configs.append(("npy", NpyDataset(files, mean, inv_std)))

    ts = results["tilestage"]["samples_per_s"]
    rows = [("tilestage load", n_samples, results["tilestage"]["seconds"], ts, None)]
    for name, ds in configs:
        for workers in (0, 2):
            runs = [torch_epoch(ds, a.batch, workers) for _ in range(a.repeats)]
            n, s = min(runs, key=lambda r: r[1])
            key = f"torch_{name}_w{workers}"
            results[key] = {"samples": n, "seconds": s, "samples_per_s": n / s,
                            "ratio_tilestage_over_torch": ts / (n / s)}
            rows.append((f"torch DataLoader {name} workers={workers}", n, s, n / s, ts / (n / s)))
    print(f"{'loader':40s} {'samples':>8s} {'seconds':>8s} {'samples/s':>10s} {'tilestage x':>11s}")
    for name, n, s, rate, ratio in rows:
        print(f"{name:40s} {n:8d} {s:8.3f} {rate:10.1f} " +
              (f"{ratio:10.2f}x" if ratio else "          -"))
    print(json.dumps(results))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
