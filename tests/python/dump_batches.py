"""Writes two epochs of tilestage.Loader batches as raw bytes for loader_parity_test.cc:
dump_batches.py STORE OUT_DIR KWARGS_JSON -> OUT_DIR/{x,y,index}-<k>.bin, OUT_DIR/count."""
import json
import sys

import tilestage

store, out, kwargs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
loader = tilestage.Loader(store, **kwargs)
k = 0
for _ in range(2):
    for b in loader:
        for key in ("x", "y", "index"):
            b[key].tofile(f"{out}/{key}-{k}.bin")
        k += 1
with open(f"{out}/count", "w") as f:
    f.write(str(k))
