"""tilestage for PyTorch: the loader as an IterableDataset of ready batches (torch tensors).

A DDP script changes two lines:

    import tilestage.torch
    loader = tilestage.torch.Loader("/data/s2", batch_size=64, seed=0)  # per-rank batch
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        for batch in loader:        # {"x": float32 [B,C,H,W] tensor, "y", "index", ...}
            ...

rank and world_size come from torch.distributed when it is initialized; every rank gets the
same number of batches. The tensors share memory with the loader's buffers (torch.from_numpy),
which go back to the loader when no tensor of the batch is left. Iterate it directly, or through
torch.utils.data.DataLoader(loader, batch_size=None, num_workers=0): the loader has its own
threads, and refuses to run in DataLoader worker processes. With normalize=False the stored
dtype is kept, except uint16 and uint32, which torch has no tensors of: they arrive as int32 and
int64 (a copy; every value is kept exactly).
"""
import numpy as np
import torch
import torch.utils.data

import tilestage

__all__ = ["Loader"]


# numpy dtypes torch cannot hold, and the torch-held dtype that keeps every value.
_WIDER = {np.dtype(np.uint16): np.int32, np.dtype(np.uint32): np.int64}


def _tensor(array):
    wider = _WIDER.get(array.dtype)
    return torch.from_numpy(array if wider is None else array.astype(wider))


class Loader(torch.utils.data.IterableDataset):
    """tilestage.Loader yielding dicts of torch tensors; the same arguments and methods."""

    def __init__(self, path, batch_size, **kwargs):
        super().__init__()
        self.loader = tilestage.Loader(path, batch_size, **kwargs)

    def __iter__(self):
        if torch.utils.data.get_worker_info() is not None:
            raise RuntimeError(
                "tilestage.torch.Loader runs its own threads and cannot run in a DataLoader "
                "worker process: use num_workers=0 (or iterate the loader directly)")
        for batch in self.loader:
            yield {k: _tensor(v) if isinstance(v, np.ndarray) else v for k, v in batch.items()}

    def __len__(self):
        return len(self.loader)

    def set_epoch(self, epoch):
        self.loader.set_epoch(epoch)

    def state_dict(self):
        return self.loader.state_dict()

    def load_state_dict(self, state):
        self.loader.load_state_dict(state)

    def stats(self):
        return self.loader.stats()

    def close(self):
        self.loader.close()
