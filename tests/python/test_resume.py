"""state_dict / load_state_dict resume mid-epoch exactly, on the same or another world size, and
refuse a state saved with other data settings."""
import pickle
import unittest

import numpy as np

import tilestage
from tsutil import StoreCase, TempDir, all_batches, bits, synth


def epoch_batches(store, epoch, **kw):
    loader = tilestage.Loader(store, **kw)
    loader.set_epoch(epoch)
    return all_batches(loader)


class Resume(StoreCase):
    STORE = dict(samples=30, codec="zstd:1")

    def assertSameBatches(self, got, want):
        self.assertEqual(len(got), len(want))
        for (gx, gy, gi), (wx, wy, wi) in zip(got, want):
            np.testing.assert_array_equal(gi, wi)
            np.testing.assert_array_equal(bits(gx), bits(wx))
            np.testing.assert_array_equal(gy, wy)

    def test_resume_after_k_batches_equals_uninterrupted_run(self):
        kw = dict(batch_size=4, seed=11, augment=True, crop=4)
        full = epoch_batches(self.store, 0, **kw) + epoch_batches(self.store, 1, **kw)
        for k in (0, 3, 7, 8):
            loader = tilestage.Loader(self.store, **kw)
            it = iter(loader)
            for _ in range(k):
                next(it)
            state = pickle.loads(pickle.dumps(loader.state_dict()))
            self.assertEqual(state["samples_consumed"], 4 * k)
            resumed = tilestage.Loader(self.store, **kw)
            resumed.load_state_dict(state)
            rest = all_batches(resumed) + all_batches(resumed)  # to the end of epoch 1
            self.assertSameBatches(rest, full[k:])

    def test_resume_on_another_world_size(self):
        # Global batch 8: saved by 1 rank after 2 steps, continued by 2 ranks of 4.
        whole = epoch_batches(self.store, 0, batch_size=8, seed=2)
        loader = tilestage.Loader(self.store, 8, seed=2)
        it = iter(loader)
        next(it), next(it)
        state = loader.state_dict()
        parts = []
        for rank in (0, 1):
            r = tilestage.Loader(self.store, 4, seed=2, rank=rank, world_size=2)
            r.load_state_dict(state)
            parts.append(all_batches(r))
        for step, (a, b) in enumerate(zip(*parts)):
            np.testing.assert_array_equal(np.concatenate([a[2], b[2]]), whole[2 + step][2])

    def test_state_saved_with_other_settings_is_refused(self):
        state = tilestage.Loader(self.store, 4, seed=1).state_dict()
        with self.assertRaisesRegex(ValueError, "saved with seed=1 but this loader has seed=2"):
            tilestage.Loader(self.store, 4, seed=2).load_state_dict(state)
        with self.assertRaisesRegex(ValueError, "global_batch=4 but this loader has global_batch=6"):
            tilestage.Loader(self.store, 6, seed=1).load_state_dict(state)
        with self.assertRaisesRegex(ValueError, "shuffle=global but this loader has shuffle=none"):
            tilestage.Loader(self.store, 4, seed=1, shuffle="none").load_state_dict(state)
        with TempDir() as tmp:
            other = synth(f"{tmp}/o", samples=30, codec="zstd:1", seed=9)
            with self.assertRaisesRegex(ValueError, "saved for store .* but this loader reads"):
                tilestage.Loader(other, 4, seed=1).load_state_dict(state)

    def test_set_epoch_starts_that_epoch(self):
        direct = epoch_batches(self.store, 3, batch_size=5, seed=4)
        loader = tilestage.Loader(self.store, 5, seed=4)
        for e in range(4):
            loader.set_epoch(e)
            batches = all_batches(loader)
        self.assertSameBatches(batches, direct)
        self.assertNotEqual([list(b[2]) for b in direct],
                            [list(b[2]) for b in epoch_batches(self.store, 2, batch_size=5,
                                                               seed=4)])


if __name__ == "__main__":
    unittest.main()
