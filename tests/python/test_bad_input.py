"""Bad input: a missing store, a damaged record, a batch larger than the rank's share, Ctrl-C
mid-epoch, and use inside forked DataLoader workers each get a clear answer."""
import os
import signal
import subprocess
import sys
import textwrap
import time
import unittest

import torch.utils.data

import tilestage
import tilestage.torch
from tsutil import PYTHON, TempDir, reader, synth


def flip_record_byte(store, index):
    """Flips one payload byte of global record `index`; returns (shard path, record in shard)."""
    r = reader(store, False)
    s, rec = r.locate(index)
    shard = r.shards[s]
    entry = shard.index[rec]
    path = shard.path
    r.close()
    with open(path, "r+b") as f:
        f.seek(int(entry["offset"]) + int(entry["stored_size"]) - 3)
        b = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([b[0] ^ 0x10]))
    return path, rec


class BadInput(unittest.TestCase):
    def test_missing_store_is_file_not_found(self):
        with TempDir() as tmp:
            for make in (lambda p: tilestage.Loader(p, 4), tilestage.Store):
                with self.assertRaisesRegex(FileNotFoundError, f"{tmp}/nope"):
                    make(f"{tmp}/nope")
            os.mkdir(f"{tmp}/empty")
            with self.assertRaisesRegex(FileNotFoundError, "manifest.json"):
                tilestage.Loader(f"{tmp}/empty", 4)

    def test_flipped_byte_fails_naming_shard_and_record(self):
        with TempDir() as tmp:
            store = synth(f"{tmp}/s", samples=20, codec="none")
            path, rec = flip_record_byte(store, 13)
            loader = tilestage.Loader(store, 4, shuffle="none")
            with self.assertRaises(tilestage.DataLossError) as cm:
                for _ in loader:
                    pass
            msg = str(cm.exception)
            self.assertIn(f"shard {path}: record {rec} (global index 13): checksum mismatch", msg)
            with self.assertRaisesRegex(tilestage.DataLossError, f"shard {path}: record {rec}"):
                tilestage.Store(store)[13]
            self.assertTrue(any(path in p for p in tilestage.Store(store).verify()))

    def test_flipped_byte_with_skip_is_counted(self):
        with TempDir() as tmp:
            store = synth(f"{tmp}/s", samples=20, codec="lz4")
            path, rec = flip_record_byte(store, 6)
            loader = tilestage.Loader(store, 4, shuffle="none", on_corrupt="skip")
            seen, skipped = [], 0
            for b in loader:
                seen += list(b["index"])
                skipped += b["skipped"]
                self.assertEqual(b["x"].shape[0], len(b["index"]))
            self.assertEqual(seen, [i for i in range(20) if i != 6])
            self.assertEqual(skipped, 1)
            stats = loader.stats()
            self.assertEqual(stats["corrupt_skipped"], 1)
            self.assertIn(f"shard {path}: record {rec}", stats["corrupt_examples"][0])

    def test_batch_larger_than_rank_share_is_value_error(self):
        with TempDir() as tmp:
            store = synth(f"{tmp}/s", samples=10)
            with self.assertRaisesRegex(ValueError, r"batch of 6 per rank x 2 ranks"):
                tilestage.Loader(store, 6, rank=1, world_size=2)
            with self.assertRaisesRegex(ValueError, "rank 2 out of range for world size 2"):
                tilestage.Loader(store, 2, rank=2, world_size=2)
            with self.assertRaisesRegex(ValueError, "on_corrupt"):
                tilestage.Loader(store, 2, on_corrupt="ignore")

    def test_ctrl_c_mid_epoch_stops_cleanly(self):
        with TempDir() as tmp:
            # Slow to load (one thread, 1 MiB zstd records) and consumed at once: the main thread
            # spends its time waiting for batches when the signal comes.
            store = synth(f"{tmp}/s", samples=32, shape="4,256,256", codec="zstd:3",
                          shard_size="8MiB")
            script = textwrap.dedent(f"""
                import sys, tilestage
                loader = tilestage.Loader({store!r}, 4, threads=1, prefetch=1)
                try:
                    for epoch in range(1000000):
                        for i, b in enumerate(loader):
                            if epoch == 0 and i == 2:
                                print("running", flush=True)
                except KeyboardInterrupt:
                    loader.close()
                    state = loader.state_dict()
                    print("interrupted in epoch", state["epoch"], "at",
                          state["samples_consumed"], flush=True)
                    sys.exit(3)
                """)
            for handled in (True, False):
                code = script if handled else script.replace("except KeyboardInterrupt",
                                                             "except ZeroDivisionError")
                p = subprocess.Popen([PYTHON, "-c", code], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=os.environ)
                self.assertEqual(p.stdout.readline().strip(), "running")
                time.sleep(0.2)
                p.send_signal(signal.SIGINT)
                out, err = p.communicate(timeout=60)
                if handled:
                    self.assertEqual(p.returncode, 3, err)
                    self.assertIn("interrupted in epoch", out)
                else:
                    self.assertIn(p.returncode, (-signal.SIGINT, 1), err)
                    self.assertIn("KeyboardInterrupt", err)

    def test_dataloader_workers_get_a_clear_error(self):
        with TempDir() as tmp:
            store = synth(f"{tmp}/s", samples=16)
            ds = tilestage.torch.Loader(store, 4)
            self.assertEqual(len(list(torch.utils.data.DataLoader(ds, batch_size=None))), 4)
            dl = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
            with self.assertRaisesRegex(RuntimeError, "num_workers=0"):
                list(dl)
            plain = tilestage.Loader(store, 4)
            pid = os.fork()
            if pid == 0:  # the child reports through its exit status
                try:
                    next(iter(plain))
                    os._exit(1)
                except RuntimeError as e:
                    os._exit(0 if "num_workers=0" in str(e) else 2)
            self.assertEqual(os.waitpid(pid, 0)[1], 0)


if __name__ == "__main__":
    unittest.main()
