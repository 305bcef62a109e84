"""Helpers of the tilestage package tests: small stores written by `tilestage synth`, the CLI,
and the pure-numpy reader as independent truth. Run with Debian's python3 (torch, numpy), with
PYTHONPATH at the built package (build/<preset>/python) and TILESTAGE_CLI set, as ctest does."""
import os
import subprocess
import tempfile
import unittest

import numpy as np

import tilestage  # noqa: F401  (fails the test when the package is not built)
import tilestage_reader

CLI = os.environ["TILESTAGE_CLI"]
PYTHON = os.environ.get("TILESTAGE_PYTHON", "/usr/bin/python3")
SHARED_DATA = os.environ["TILESTAGE_SHARED_DATA"]


def run_cli(*args):
    return subprocess.run([CLI, *map(str, args)], check=True, capture_output=True, text=True)


def synth(path, samples=24, shape="2,6,5", dtype="f32", codec="none", classes=3, seed=1,
          shard_size="4KiB"):
    args = ["synth", "--out", path, "--samples", samples, "--shape", shape, "--dtype", dtype,
            "--codec", codec, "--seed", seed, "--shard-size", shard_size]
    if classes:
        args += ["--classes", classes]
    run_cli(*args)
    return path


def ingest_geotiff(name, out, tile):
    """A store of a GeoTIFF of ../shared/data/geotiff (real files written by others)."""
    run_cli("ingest", "geotiff", os.path.join(SHARED_DATA, "geotiff", name), "--out", out,
            "--tile", tile)
    return out


def export(store, record, normalize, out_dir, field="x"):
    out = os.path.join(out_dir, f"{field}-{record}-{int(normalize)}.npy")
    args = ["export", store, "--record", record, "--field", field, "--out", out]
    if normalize:
        args.append("--normalize")
    run_cli(*args)
    return np.load(out)


def reader(store, normalize):
    return tilestage_reader.Store(store, normalize=normalize)


def bits(a):
    """The array's bytes as unsigned integers: equality is bit equality (NaN, -0.0 included)."""
    a = np.ascontiguousarray(a)
    return a.view({1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def all_batches(loader):
    """One epoch of copies: (x, y or None, index) per batch."""
    return [(b["x"].copy(), b["y"].copy() if "y" in b else None, b["index"].copy())
            for b in loader]


class TempDir:
    def __enter__(self):
        self._t = tempfile.TemporaryDirectory(prefix="tilestage-py-")
        return self._t.name

    def __exit__(self, *exc):
        self._t.cleanup()


class StoreCase(unittest.TestCase):
    """Cases sharing one store, written once per class by synth(**STORE) into self.store."""
    STORE = {}

    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="tilestage-py-")
        cls.store = synth(f"{cls._tmp.name}/s", **cls.STORE)

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()
