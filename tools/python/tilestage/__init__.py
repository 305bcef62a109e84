"""tilestage: tile stores from Python, through the C++ store and loader.

    import tilestage
    store = tilestage.Store("/data/s2")          # len, store[i] -> {"x": ndarray, ..., "meta"}
    loader = tilestage.Loader("/data/s2", batch_size=64, seed=0)
    for batch in loader:                         # one epoch; batch["x"]: float32 [B, C, H, W]
        ...
    state = loader.state_dict()                  # resume exactly: Loader(...).load_state_dict(state)

Batches are numpy views of the loader's own buffers (no copy; torch.from_numpy copies nothing
either). A batch stays valid as long as it is referenced: its buffers go back to the loader only
when no array of it is left. The loader runs its own threads (TBB), so use it in the main process
(torch DataLoader num_workers=0); tilestage.torch wraps it for PyTorch.

Thread-safety: one thread iterates a Loader; Store is safe to read from several threads.
"""
import os
import sys

try:
    from . import _native
except ImportError as e:
    raise ImportError(
        f"tilestage's native extension is not built or not for this Python ({e}): build it with "
        "`cmake --build build/release --target tilestage_python` and use "
        "PYTHONPATH=build/release/python with /usr/bin/python3") from e

DataLossError = _native.DataLossError
Store = _native.Store

__all__ = ["DataLossError", "Loader", "Store"]

_SHUFFLES = ("global", "block", "none")
_pid_with_threads = None  # the process whose loaders started threads (TBB is not fork-safe)

_FORK_ERROR = (
    "tilestage.Loader cannot run in a forked process (pid {child}; the loader's threads live in "
    "pid {parent}): it is already parallel, so use torch.utils.data.DataLoader(..., "
    "num_workers=0) or iterate tilestage.torch.Loader directly")


def _check_not_forked():
    if _pid_with_threads is not None and _pid_with_threads != os.getpid():
        raise RuntimeError(_FORK_ERROR.format(child=os.getpid(), parent=_pid_with_threads))


def _distributed_defaults():
    """torch.distributed's rank and world size when it is initialized, else (0, 1)."""
    dist = sys.modules.get("torch.distributed")  # not initialized unless imported
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class Loader:
    """Streams one rank's batches of a tile store, one epoch per iteration.

    batch_size is per rank, as in torch's DataLoader: the global batch is batch_size *
    world_size, and rank r takes the r-th part of each global batch. The order is a pure
    function of (seed, epoch, store, global batch, shuffle), so every rank agrees on it and a
    saved state_dict resumes on any world size that divides the global batch.

    Each batch is a dict: "x" float32 [B, C, H, W] (normalized with the manifest's per-channel
    statistics, NaN and nodata as 0; normalize=False keeps the stored values in the stored dtype,
    NaN and nodata included: "x_valid" and "y_valid" say which are invalid), "y" and "y_valid"
    when the store has y, "x_valid" with validity_mask=True, "index" int64 [B] (the
    records' global indices), "epoch", "skipped" (records dropped as corrupt, on_corrupt="skip"),
    and "meta" (one dict per sample) with meta=True.

    Errors: FileNotFoundError (missing store), tilestage.DataLossError naming shard and record
    (a damaged record with on_corrupt="fail"), ValueError (bad arguments, or a global batch
    larger than the records), MemoryError (mem_budget too small for the batches).
    """

    def __init__(self, path, batch_size, *, shuffle="global", seed=0, rank=None, world_size=None,
                 threads=0, prefetch=4, mem_budget=1 << 30, normalize=True, augment=False,
                 crop=None, drop_last=False, range=None, on_corrupt="fail", block_shards=4,
                 block_parts=64, validity_mask=False, meta=False):
        global _pid_with_threads
        _check_not_forked()
        if not os.path.isdir(path):
            raise FileNotFoundError(f"tile store {path}: no such directory")
        if shuffle not in _SHUFFLES:
            raise ValueError(f"shuffle must be one of {_SHUFFLES}, got {shuffle!r}")
        default_rank, default_world = _distributed_defaults()
        rank = default_rank if rank is None else rank
        world_size = default_world if world_size is None else world_size
        crop_h, crop_w = (0, 0) if not crop else (crop, crop) if isinstance(crop, int) else crop
        begin, end = (0, None) if range is None else range
        self.path = os.path.abspath(path)
        self.meta = meta
        self._args = dict(
            path=self.path, batch_size=batch_size, shuffle=shuffle, seed=seed, rank=rank,
            world_size=world_size, threads=threads, prefetch=prefetch, mem_budget=mem_budget,
            normalize=normalize, augment=augment, crop_h=crop_h, crop_w=crop_w,
            drop_last=drop_last, range_begin=begin, range_end=(1 << 64) - 1 if end is None else end,
            on_corrupt=on_corrupt, block_shards=block_shards, block_parts=block_parts,
            validity_mask=validity_mask)
        self._native = None
        self._store = None
        self._open(0, 0)
        _pid_with_threads = os.getpid()

    def _open(self, epoch, samples_consumed):
        if self._native is not None:
            self._native.close()
        self._native = _native.Loader(**self._args, start_epoch=epoch,
                                      start_samples=samples_consumed)
        self._closed_at = None
        self._store_identity = {"path": self.path, "fingerprint": self._native.fingerprint,
                                "records": self._native.total_records}

    @property
    def batch_size(self):
        return self._args["batch_size"]

    @property
    def rank(self):
        return self._args["rank"]

    @property
    def world_size(self):
        return self._args["world_size"]

    def __len__(self):
        """Batches per epoch, the same on every rank."""
        return self._native.batches_per_epoch

    @property
    def total_records(self):
        return self._native.total_records

    @property
    def manifest(self):
        return self._native.manifest

    def __iter__(self):
        _check_not_forked()
        return self

    def __next__(self):
        _check_not_forked()
        batch = self._native.next()
        if batch is None:
            raise StopIteration
        if self.meta:
            if self._store is None:
                self._store = Store(self.path)
            batch["meta"] = [self._store[int(i)]["meta"] for i in batch["index"]]
        return batch

    @property
    def epoch(self):
        return self._native.position()["epoch"]

    def set_epoch(self, epoch):
        """Starts `epoch` at its beginning on the next iteration (as DistributedSampler's)."""
        pos = self._native.position()
        if (pos["epoch"], pos["samples_consumed"]) != (epoch, 0):
            self._open(epoch, 0)

    def _data_settings(self):
        a = self._args
        settings = {
            "global_batch": a["batch_size"] * a["world_size"], "seed": a["seed"],
            "shuffle": a["shuffle"], "drop_last": a["drop_last"],
            "range": [a["range_begin"], a["range_end"]], "store": dict(self._store_identity)}
        if a["shuffle"] == "block":
            settings["block_shards"] = a["block_shards"]
            settings["block_parts"] = a["block_parts"]
        return settings

    def state_dict(self):
        """Where this loader is (epoch, samples consumed by all ranks) and what fixes the order:
        the same on every rank; a new Loader continues exactly with load_state_dict."""
        state = dict(self._closed_at or self._native.position())
        state.update(self._data_settings())
        return state

    def load_state_dict(self, state):
        """Continues from `state`. ValueError, naming the setting, when the state was saved with
        another global batch, seed, shuffle, range or store: the position would mean other
        samples. The world size may differ (any that divides the global batch)."""
        mine = self._data_settings()
        why = ("; a saved position only means the same samples with the same global batch, "
               "seed, shuffle, range and store (the number of ranks may change)")
        for key, value in mine.items():
            if key == "store":
                have = state.get("store", {})
                if (have.get("fingerprint"), have.get("records")) != (
                        value["fingerprint"], value["records"]):
                    raise ValueError(
                        f"loader state was saved for store {have.get('path')} ({have.get('records')}"
                        f" records, fingerprint {have.get('fingerprint')}) but this loader reads "
                        f"{value['path']} ({value['records']} records, fingerprint "
                        f"{value['fingerprint']}){why}")
            elif key not in state:
                raise ValueError(f"loader state records no {key}; this loader has {key}={value}{why}")
            elif state[key] != value:
                raise ValueError(f"loader state was saved with {key}={state[key]} but this loader "
                                 f"has {key}={value}{why}")
        self._open(state["epoch"], state["samples_consumed"])

    def stats(self):
        """The data stall (wait_s_total, wait_s_max: the caller's wait for batches), the busy time
        of each pipeline stage, queue occupancy, corrupt records skipped, memory bound. Counted
        since the last (re)open (set_epoch to another epoch, load_state_dict)."""
        return self._native.stats()

    def close(self):
        """Stops and joins the loader's threads; batches already delivered stay valid, and
        state_dict() still says where it stopped."""
        if self._native is not None and self._closed_at is None:
            self._closed_at = self._native.position()
            self._native.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
