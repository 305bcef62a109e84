"""Zero copy and lifetime: batches are views of the loader's buffers, leased while referenced."""
import gc
import unittest

import numpy as np
import torch

import tilestage
from tsutil import StoreCase, TempDir, synth


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


class Lifetime(StoreCase):
    STORE = dict(samples=40, codec="lz4")

    def steps(self, loader, n):
        """n batches, across epochs; yields each."""
        while n > 0:
            for b in loader:
                yield b
                n -= 1
                if n == 0:
                    return

    def test_held_batch_unchanged_across_100_steps(self):
        loader = tilestage.Loader(self.store, 2, seed=3, prefetch=2)
        held = next(iter(loader))
        x, y, index = held["x"].copy(), held["y"].copy(), held["index"].copy()
        for b in self.steps(loader, 100):
            for key in ("x", "y", "index"):
                self.assertFalse(np.shares_memory(b[key], held[key]), key)
        np.testing.assert_array_equal(held["x"], x)
        np.testing.assert_array_equal(held["y"], y)
        np.testing.assert_array_equal(held["index"], index)

    def test_consecutive_batches_do_not_alias_held_ones(self):
        loader = tilestage.Loader(self.store, 4, seed=1, prefetch=1)
        held = []
        for b in self.steps(loader, 25):
            for h in held:
                self.assertFalse(np.shares_memory(b["x"], h["x"]))
            held.append(b)
        # Every held batch still has its own records: the loader's values for those indices.
        truth = {int(i): x.copy() for h in held for i, x in zip(h["index"], h["x"])}
        for h in held:
            for i, x in zip(h["index"], h["x"]):
                np.testing.assert_array_equal(x, truth[int(i)])

    def test_released_batch_buffers_are_reused(self):
        # A batch nobody references goes back to the loader: later batches land in its memory.
        loader = tilestage.Loader(self.store, 4, seed=1, prefetch=1)
        addresses = set()
        for b in self.steps(loader, 30):
            addresses.add(b["x"].__array_interface__["data"][0])
        self.assertLessEqual(len(addresses), 3)

    def test_torch_from_numpy_shares_the_buffer(self):
        loader = tilestage.Loader(self.store, 4)
        b = next(iter(loader))
        t = torch.from_numpy(b["x"])
        self.assertEqual(t.data_ptr(), b["x"].__array_interface__["data"][0])
        del b
        gc.collect()
        loader2 = list(self.steps(loader, 12))  # keeps them: t's buffer must not be reused
        self.assertTrue(all(not np.shares_memory(t.numpy(), b["x"]) for b in loader2))

    def test_memory_stays_under_budget_when_caller_holds_nothing(self):
        with TempDir() as tmp:
            # 48 x f32[4,64,64] = 64 KiB per sample, 1 MiB per batch of 16.
            store = synth(f"{tmp}/big", samples=48, shape="4,64,64", codec="none",
                          shard_size="1MiB")
            budget = 12 << 20
            loader = tilestage.Loader(store, 16, mem_budget=budget, prefetch=3)
            self.assertLessEqual(loader.stats()["memory_bound_bytes"], budget)
            for _ in self.steps(loader, 6):
                pass
            before = rss_bytes()
            for b in self.steps(loader, 60):
                float(b["x"].sum())
            self.assertLess(rss_bytes() - before, budget)


if __name__ == "__main__":
    unittest.main()
