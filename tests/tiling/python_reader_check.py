"""Driven by python_reader_test.cc: checks tools/python/tilestage_reader.py against C++ reads.

  compare STORE REFDIR         every record, every field, every value vs REFDIR/<i>_<field>.npy
                               (written from the C++ Store::Read) and REFDIR/<i>.json (metadata)
  expect-error STORE INDEX     reading record INDEX must raise DataLossError; prints its message
  torch STORE REFDIR           the torch Dataset wrapper returns the same values
  open-error STORE             opening must raise a TilestageError; prints its type and message
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.environ["TILESTAGE_PYTHON_DIR"])
import tilestage_reader as tr  # noqa: E402


def compare(store_dir, ref_dir):
    store = tr.Store(store_dir)
    values = 0
    fields = 0
    for i in range(len(store)):
        sample = store[i]
        with open(os.path.join(ref_dir, f"{i}.json")) as f:
            meta = json.load(f)
        if sample.pop("meta") != meta:
            sys.exit(f"record {i}: metadata differs: {meta}")
        ref_names = sorted(n[len(f"{i}_"):-4] for n in os.listdir(ref_dir)
                           if n.startswith(f"{i}_") and n.endswith(".npy"))
        if sorted(sample) != ref_names:
            sys.exit(f"record {i}: fields {sorted(sample)} != C++ fields {ref_names}")
        for name, array in sample.items():
            ref = np.load(os.path.join(ref_dir, f"{i}_{name}.npy"))
            if array.dtype != ref.dtype or array.shape != ref.shape:
                sys.exit(f"record {i} field {name}: {array.dtype}{array.shape} != "
                         f"{ref.dtype}{ref.shape}")
            # Bitwise, so NaNs compare equal to themselves and -0.0 differs from 0.0.
            if array.tobytes() != ref.tobytes():
                bad = np.flatnonzero(array.view(np.uint8) != ref.view(np.uint8))
                sys.exit(f"record {i} field {name}: differs at byte {bad[:5]}")
            values += array.size
            fields += 1
    problems = store.verify()
    if problems:
        sys.exit("verify found problems: " + "; ".join(problems))
    print(f"compared records={len(store)} fields={fields} values={values}")


def expect_error(store_dir, index):
    store = tr.Store(store_dir)
    try:
        store[int(index)]
    except tr.DataLossError as e:
        print(f"DataLossError: {e}")
        return
    sys.exit(f"record {index} read without error")


def open_error(store_dir):
    try:
        tr.Store(store_dir)
    except tr.TilestageError as e:
        print(f"{type(e).__name__}: {e}")
        return
    sys.exit("opened without error")


def torch_check(store_dir, ref_dir):
    import torch  # python3-torch, installed by tools/setup.sh: a missing torch fails the test
    dataset = tr.TorchDataset(store_dir)
    assert isinstance(dataset, torch.utils.data.Dataset)
    store = tr.Store(store_dir)
    if len(dataset) != len(store):
        sys.exit(f"len {len(dataset)} != {len(store)}")
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=2)
    checked = 0
    for i, item in enumerate(loader):
        for name, tensor in item.items():
            if name == "meta":
                continue
            ref = np.load(os.path.join(ref_dir, f"{i}_{name}.npy"))
            got = tensor.numpy()
            if got.shape != ref.shape or not np.array_equal(got.astype(np.float64),
                                                            ref.astype(np.float64),
                                                            equal_nan=True):
                sys.exit(f"torch record {i} field {name} differs")
            checked += 1
    print(f"torch compared records={len(dataset)} fields={checked}")


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "compare":
        compare(sys.argv[2], sys.argv[3])
    elif mode == "expect-error":
        expect_error(sys.argv[2], sys.argv[3])
    elif mode == "open-error":
        open_error(sys.argv[2])
    elif mode == "torch":
        torch_check(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown mode {mode}")
