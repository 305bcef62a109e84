"""One epoch of a tiny DDP model (gloo, CPU) through tilestage.torch, run by torchrun from
test_distributed.py. Rank 0 writes what the ranks saw to argv[2] as JSON."""
import json
import sys

import torch
import torch.distributed as dist
import torch.nn as nn

import tilestage.torch

store, out = sys.argv[1], sys.argv[2]
dist.init_process_group("gloo")
torch.manual_seed(0)
loader = tilestage.torch.Loader(store, batch_size=4, seed=3, threads=1)  # rank, world: dist's
model = nn.parallel.DistributedDataParallel(nn.Linear(2 * 6 * 5, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.02)
indices, losses = [], []
loader.set_epoch(0)
for batch in loader:
    x = batch["x"].flatten(1)
    target = x.mean(dim=1, keepdim=True) * 3 + 1  # learnable from x
    loss = nn.functional.mse_loss(model(x), target)
    opt.zero_grad()
    loss.backward()
    opt.step()
    indices += batch["index"].tolist()
    losses.append(loss.item())

gathered = [None] * dist.get_world_size()
dist.all_gather_object(gathered, {"rank": dist.get_rank(), "indices": indices, "losses": losses,
                                  "batches": len(losses), "world": loader.loader.world_size,
                                  "stall_s": loader.stats()["wait_s_total"]})
if dist.get_rank() == 0:
    with open(out, "w") as f:
        json.dump(gathered, f)
dist.destroy_process_group()
