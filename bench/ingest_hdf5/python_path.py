#!/usr/bin/python3
"""The Python path users run today: h5py reads frames, numpy crops and applies log1p, shards
are written as .npy files (plus running statistics). The baseline for run_bench.py."""
import argparse
import os
import time

import h5py
import numpy as np


def main():
    p = argparse.ArgumentParser()
    p.add_argument("file")
    p.add_argument("out")
    p.add_argument("--dataset", default="/entry/data/data")
    p.add_argument("--crop", type=int, default=192, help="centred square crop size")
    p.add_argument("--shard-frames", type=int, default=1024)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    t0 = time.perf_counter()
    total, total_sq, count = 0.0, 0.0, 0
    with h5py.File(args.file, "r") as f:
        d = f[args.dataset]
        n, h, w = d.shape
        step = d.chunks[0] if d.chunks else 64
        y0, x0 = (h - args.crop) // 2, (w - args.crop) // 2
        shard, buffered, shard_index = [], 0, 0
        for first in range(0, n, step):
            frames = d[first:first + step]  # whole chunks per read
            x = np.log1p(frames[:, y0:y0 + args.crop, x0:x0 + args.crop].astype(np.float32))
            total += float(x.sum(dtype=np.float64))
            total_sq += float(np.square(x, dtype=np.float64).sum())
            count += x.size
            shard.append(x[:, None])  # channel-first [N,1,h,w]
            buffered += len(x)
            if buffered >= args.shard_frames or first + step >= n:
                np.save(os.path.join(args.out, "shard-%05d.npy" % shard_index),
                        np.concatenate(shard))
                shard, buffered, shard_index = [], 0, shard_index + 1
    mean = total / count
    std = (total_sq / count - mean * mean) ** 0.5
    elapsed = time.perf_counter() - t0
    print('{"python_s": %.4f, "frames": %d, "mean": %.6f, "std": %.6f}' % (elapsed, n, mean, std))


if __name__ == "__main__":
    main()
