"""Batches of tilestage.Loader equal the numpy reader (an independent implementation of the format
and of the loader's normalization), `tilestage export` and the C++ Loader (loader_parity_test.cc)
bit for bit, for every dtype and codec."""
import unittest

import numpy as np
import torch

import tilestage
from tsutil import TempDir, all_batches, bits, export, ingest_geotiff, reader, synth

DTYPES = ["u8", "i8", "u16", "i16", "u32", "i32", "f32", "f64"]
CODECS = ["none", "lz4", "zstd:1+shuffle", "lz4+shuffle", "zstd:3", "none+shuffle", "lz4", "zstd:1"]


class Values(unittest.TestCase):
    def check_store(self, tmp, dtype, codec, normalize):
        store = synth(f"{tmp}/{dtype}", samples=22, dtype=dtype, codec=codec, seed=len(dtype))
        truth = reader(store, normalize)
        loader = tilestage.Loader(store, 4, seed=5, normalize=normalize, threads=2)
        seen = []
        for x, y, index in all_batches(loader):
            self.assertEqual(x.dtype, np.float32 if normalize else truth[0]["x"].dtype)
            self.assertEqual(x.shape, (len(index), 2, 6, 5))
            for k, i in enumerate(index):
                rec = truth[int(i)]
                np.testing.assert_array_equal(bits(x[k]), bits(rec["x"]), f"{dtype} {codec} {i}")
                want_y = rec["y"].astype(np.float32) if normalize else rec["y"]
                self.assertEqual(y.dtype, want_y.dtype)
                np.testing.assert_array_equal(y[k], want_y)
                seen.append(int(i))
        # 22 records, global batch 4: 6 batches, the last padded with 2 records of the epoch.
        self.assertEqual(sorted(set(seen)), list(range(22)))
        self.assertEqual(len(seen), 24)
        for record in (0, 13, 21):
            want = export(store, record, normalize, tmp)
            got = next(b for b in all_batches(tilestage.Loader(store, 22, shuffle="none",
                                                                normalize=normalize)))[0][record]
            np.testing.assert_array_equal(bits(got), bits(want), f"export {dtype} {record}")

    def test_normalized_batches_equal_reader_and_export_every_dtype_and_codec(self):
        with TempDir() as tmp:
            for dtype, codec in zip(DTYPES, CODECS):
                self.check_store(tmp, dtype, codec, normalize=True)

    def test_unnormalized_batches_equal_stored_values_every_dtype_and_codec(self):
        with TempDir() as tmp:
            for dtype, codec in zip(DTYPES, CODECS[::-1]):
                self.check_store(tmp, dtype, codec, normalize=False)

    def test_stored_dtype_batches_mark_the_same_invalid_pixels_as_normalized_ones(self):
        with TempDir() as tmp:
            for tif, dtype in (("RGB.byte.tif", np.uint8), ("float_raster_with_nodata.tif", np.float32)):
                store = ingest_geotiff(tif, f"{tmp}/{tif}", tile="4,4")
                kw = dict(seed=3, validity_mask=True, augment=True, crop=(4, 3))
                stored = next(iter(tilestage.Loader(store, 8, normalize=False, **kw)))
                normed = next(iter(tilestage.Loader(store, 8, **kw)))
                self.assertEqual(stored["x"].dtype, dtype)
                invalid = stored["x_valid"] == 0
                self.assertGreater(invalid.sum(), 0, tif)
                np.testing.assert_array_equal(stored["x_valid"], normed["x_valid"], tif)
                np.testing.assert_array_equal(normed["x"][invalid], 0, tif)

    def test_torch_gets_stored_uint16_as_int32_with_every_value(self):
        import tilestage.torch
        with TempDir() as tmp:
            store = synth(f"{tmp}/s", samples=8, dtype="u16")
            truth = reader(store, False)
            for b in tilestage.torch.Loader(store, 4, normalize=False, shuffle="none"):
                self.assertEqual(b["x"].dtype, torch.int32)
                for k, i in enumerate(b["index"].tolist()):
                    np.testing.assert_array_equal(b["x"][k].numpy(), truth[i]["x"].astype(np.int32))

    def test_store_records_equal_reader_with_meta(self):
        with TempDir() as tmp:
            store = synth(f"{tmp}/s", samples=9, dtype="i16", codec="zstd:1+shuffle")
            mine, truth = tilestage.Store(store), reader(store, False)
            self.assertEqual(len(mine), 9)
            for i in range(-1, 9):
                a, b = mine[i], truth[i % 9]
                self.assertEqual(a["x"].dtype, np.int16)
                np.testing.assert_array_equal(a["x"], b["x"])
                np.testing.assert_array_equal(a["y"], b["y"])
                self.assertEqual(a["meta"], b["meta"])
            with self.assertRaisesRegex(IndexError, "record 9 out of range"):
                mine[9]
            self.assertEqual(mine.manifest["fields"][0]["name"], "x")
            self.assertEqual(mine.verify(), [])

    def test_meta_on_request_names_each_sample(self):
        with TempDir() as tmp:
            store = synth(f"{tmp}/s", samples=8)
            truth = reader(store, False)
            for b in tilestage.Loader(store, 4, meta=True):
                self.assertEqual(b["meta"], [truth[int(i)]["meta"] for i in b["index"]])


if __name__ == "__main__":
    unittest.main()
