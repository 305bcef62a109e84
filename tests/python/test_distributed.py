"""torchrun --nproc_per_node 2 (gloo, CPU) trains a tiny model for one epoch through
tilestage.torch: every record exactly once across the ranks, equal batch counts, falling loss."""
import json
import os
import subprocess
import unittest

from tsutil import PYTHON, TempDir, synth


class Distributed(unittest.TestCase):
    def test_torchrun_two_ranks_one_epoch_each_record_once(self):
        with TempDir() as tmp:
            store = synth(f"{tmp}/s", samples=160, codec="lz4")
            out = f"{tmp}/ranks.json"
            here = os.path.dirname(os.path.abspath(__file__))
            # -r 1 -t 1: Debian's torchrun (torch 1.13) fails on Python 3.11 with the default
            # "0" (no redirect; Std.from_str finds no member for 0), so worker stdout goes to logs.
            subprocess.run([PYTHON, "-m", "torch.distributed.run", "--standalone",
                            "--nproc_per_node", "2", "-r", "1", "-t", "1", "--log_dir",
                            f"{tmp}/logs", os.path.join(here, "ddp_train.py"), store, out],
                           check=True, timeout=240, env=dict(os.environ, OMP_NUM_THREADS="1"))
            with open(out) as f:
                ranks = json.load(f)
            self.assertEqual([r["rank"] for r in ranks], [0, 1])
            self.assertEqual([r["world"] for r in ranks], [2, 2])
            self.assertEqual(ranks[0]["batches"], 20)
            self.assertEqual(ranks[1]["batches"], 20)
            every = sorted(ranks[0]["indices"] + ranks[1]["indices"])
            self.assertEqual(every, list(range(160)))
            for r in ranks:
                first, last = sum(r["losses"][:4]) / 4, sum(r["losses"][-4:]) / 4
                self.assertLess(last, 0.5 * first, r["losses"])
                self.assertGreaterEqual(r["stall_s"], 0)


if __name__ == "__main__":
    unittest.main()
