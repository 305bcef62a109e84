#!/usr/bin/python3
"""Python peers of `tilestage bench e2e`: what users run today, on the same inputs, in the same run.

Each subcommand does one stage the way a user would without tilestage, times it, and prints one
JSON line {"peer": ..., "seconds": ..., ...} on stdout. Measures; asserts nothing.

  peers.py geotiff --tile 64 --workdir DIR FILE...   gdal_retile.py into DIR (tiles = files)
  peers.py netcdf --vars t2m,u10 FILE...              xarray.open_dataset + float32 arrays
  peers.py hdf5 --dataset /entry/data/data FILE...    h5py full read
  peers.py loader --store DIR --batch B [--workers W] torch DataLoader over the tile store
  peers.py tilestage-python --store DIR --batch B --package-dir build/release/python [--threads T]
                                                      the tilestage package's Loader from Python
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import time


def input_bytes(files):
    return sum(os.path.getsize(f) for f in files)


def cmd_geotiff(a):
    if os.path.exists(a.workdir):
        shutil.rmtree(a.workdir)
    os.makedirs(a.workdir)
    retile = shutil.which("gdal_retile.py") or shutil.which("gdal_retile")
    if retile is None:
        raise SystemExit("gdal_retile.py not found (Debian package python3-gdal / gdal-bin)")
    t0 = time.perf_counter()
    for i, f in enumerate(a.files):
        d = os.path.join(a.workdir, str(i))
        os.makedirs(d)
        subprocess.run([retile, "-q", "-ps", str(a.tile), str(a.tile), "-targetDir", d, f],
                       check=True)
    dt = time.perf_counter() - t0
    tiles = len(glob.glob(os.path.join(a.workdir, "*", "*.tif")))
    return {"peer": "gdal_retile.py", "seconds": dt, "input_bytes": input_bytes(a.files),
            "tiles": tiles}


def cmd_netcdf(a):
    import numpy as np
    import xarray as xr
    vars_ = a.vars.split(",")
    t0 = time.perf_counter()
    out_bytes = 0
    for f in a.files:
        with xr.open_dataset(f) as ds:
            arr = ds[vars_].to_array().values.astype(np.float32)  # unpacks scale/offset
            out_bytes += arr.nbytes
    dt = time.perf_counter() - t0
    return {"peer": "xarray", "version": xr.__version__, "seconds": dt,
            "input_bytes": input_bytes(a.files), "output_bytes": out_bytes}


def cmd_hdf5(a):
    import h5py
    t0 = time.perf_counter()
    out_bytes = 0
    for f in a.files:
        with h5py.File(f, "r") as h:
            arr = h[a.dataset][()]
            out_bytes += arr.nbytes
    dt = time.perf_counter() - t0
    return {"peer": "h5py", "version": h5py.__version__, "seconds": dt,
            "input_bytes": input_bytes(a.files), "output_bytes": out_bytes}


def cmd_loader(a):
    import torch
    sys.path.insert(0, a.reader_dir)
    import tilestage_reader as tr
    torch.set_num_threads(1)
    ds = tr.TorchDataset(a.store)
    dl = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=True,
                                     num_workers=a.workers, drop_last=False,
                                     persistent_workers=False)
    t0 = time.perf_counter()
    samples = 0
    nbytes = 0
    for batch in dl:
        x = batch["x"] if isinstance(batch, dict) else batch[0]
        samples += x.shape[0]
        nbytes += x.numel() * x.element_size()
    dt = time.perf_counter() - t0
    return {"peer": "PyTorch DataLoader", "torch_version": torch.__version__, "seconds": dt,
            "samples": samples, "bytes": nbytes, "workers": a.workers}


def cmd_tilestage_python(a):
    """The row "tilestage (Python)": tilestage.Loader (C++ pipeline, numpy views of its batch
    buffers) consumed with torch.from_numpy(x).sum(), timed from the Loader's creation."""
    import torch
    sys.path.insert(0, a.package_dir)
    import tilestage
    t0 = time.perf_counter()
    loader = tilestage.Loader(a.store, a.batch, seed=0, threads=a.threads)
    samples = 0
    nbytes = 0
    for batch in loader:
        x = torch.from_numpy(batch["x"])
        x.sum()
        samples += x.shape[0]
        nbytes += x.numel() * x.element_size()
    dt = time.perf_counter() - t0
    return {"peer": "tilestage (Python)", "torch_version": torch.__version__, "seconds": dt,
            "samples": samples, "bytes": nbytes, "threads": a.threads,
            "stall_s": loader.stats()["wait_s_total"]}


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("geotiff")
    g.add_argument("--tile", type=int, default=64)
    g.add_argument("--workdir", required=True)
    g.add_argument("files", nargs="+")
    n = sub.add_parser("netcdf")
    n.add_argument("--vars", required=True)
    n.add_argument("files", nargs="+")
    h = sub.add_parser("hdf5")
    h.add_argument("--dataset", required=True)
    h.add_argument("files", nargs="+")
    lo = sub.add_parser("loader")
    lo.add_argument("--store", required=True)
    lo.add_argument("--batch", type=int, default=32)
    lo.add_argument("--workers", type=int, default=1)
    lo.add_argument("--reader-dir", required=True)
    tp = sub.add_parser("tilestage-python")
    tp.add_argument("--store", required=True)
    tp.add_argument("--batch", type=int, default=32)
    tp.add_argument("--threads", type=int, default=0)
    tp.add_argument("--package-dir", required=True)
    a = p.parse_args()
    result = {"geotiff": cmd_geotiff, "netcdf": cmd_netcdf, "hdf5": cmd_hdf5,
              "loader": cmd_loader, "tilestage-python": cmd_tilestage_python}[a.cmd](a)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
