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
threads, and refuses to run in DataLoader worker processes.
"""
import torch
import torch.utils.data

import tilestage

__all__ = ["Loader"]


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
            yield {k: torch.from_numpy(v) if hasattr(v, "__array_interface__") else v
                   for k, v in batch.items()}

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
