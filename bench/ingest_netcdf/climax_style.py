#!/usr/bin/python3
"""The preprocessing path users run today (ClimaX's src/data_preprocessing/nc2np_equally_era5.py,
condensed): xarray.open_mfdataset over the yearly files, per year every variable/level decoded to
float32 numpy (xarray applies scale_factor/add_offset and masks fills), per-channel mean/std, and
the year's [T, C, H, W] block split into shards saved with numpy. Unlike ClimaX, statistics are
pooled over all years (ClimaX keeps only the last year's per-level statistics).

usage: climax_style.py OUT_DIR VARS LEVELS SHARDS_PER_YEAR FILE...
Prints one JSON line with the seconds spent and bytes written.
"""
import json
import os
import sys
import time

import numpy as np
import xarray as xr


def main():
    out_dir, var_list, level_list, shards = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    files = sys.argv[5:]
    variables = var_list.split(",")
    levels = [float(v) for v in level_list.split(",")] if level_list else []
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.perf_counter()
    # combine="by_coords" orders the yearly files by time, as ClimaX relies on.
    ds = xr.open_mfdataset(sorted(files), combine="by_coords")
    years = sorted(set(ds["time"].dt.year.values.tolist()))
    count, mean, m2 = {}, {}, {}
    written = 0
    for year in years:
        year_ds = ds.sel(time=str(year))
        channels = []
        names = []
        for var in variables:
            da = year_ds[var]
            if "level" in da.dims:
                for level in levels:
                    channels.append(da.sel(level=level).values.astype(np.float32))
                    names.append(f"{var}_{level:g}")
            else:
                channels.append(da.values.astype(np.float32))
                names.append(var)
        block = np.stack(channels, axis=1)  # [T, C, H, W]
        for c, name in enumerate(names):
            valid = block[:, c][~np.isnan(block[:, c])].astype(np.float64)
            n_b, mean_b = valid.size, valid.mean() if valid.size else 0.0
            m2_b = ((valid - mean_b) ** 2).sum()
            n_a, mean_a, m2_a = count.get(name, 0), mean.get(name, 0.0), m2.get(name, 0.0)
            n = n_a + n_b
            if n:
                delta = mean_b - mean_a
                mean[name] = mean_a + delta * n_b / n
                m2[name] = m2_a + m2_b + delta * delta * n_a * n_b / n
                count[name] = n
        for i, part in enumerate(np.array_split(block, shards, axis=0)):
            path = os.path.join(out_dir, f"{year}_{i}.npz")
            np.savez(path, x=part)
            written += os.path.getsize(path)
    stats = {name: {"mean": mean[name], "std": (m2[name] / count[name]) ** 0.5} for name in count}
    np.savez(os.path.join(out_dir, "normalize.npz"), **{k: np.array([v["mean"], v["std"]])
                                                         for k, v in stats.items()})
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "bytes_written": written, "years": len(years),
                      "channels": len(count)}))


if __name__ == "__main__":
    main()
