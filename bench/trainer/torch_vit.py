"""PyTorch twin of tilestage's ViT (trainer/model.h), for the trainer benchmarks and tests.

Same architecture, parameter names and FLOPs: a Linear patch embedding over Conv2d-ordered
patches, fixed 2-D sin-cos (or learned) position embedding, pre-LN blocks (LayerNorm eps 1e-6, qkv
Linear, tanh-GELU MLP), final norm; then either a mean-pooled classification head, or MAE's
decoder (the encoder sees only the kept patches; decoder_embed, mask token, sin-cos decoder
positions, decoder blocks and norm, decoder_pred; loss on the masked patches against per-patch
normalized pixels, population variance). Weights load from tilestage's safetensors with a small
reader (the safetensors package is not in Debian 12).

  grad   --weights W --x X.f32 [--y Y.f32 | --mask M.u8] --config JSON --out G.safetensors
         forward + backward of the config's loss (vit-classify, or vit-mae with the token mask
         M, [B, T] bytes, 1 = masked); writes loss and gradients
  count  --config JSON: parameters, and forward FLOPs per sample as torch.profiler counts them
  bench  --objective mae|classify --dim --depth --heads --patch --size --channels --batch --steps
         --threads ...: training samples/s with AdamW and clipping, the parameter and FLOP
         counts, and the BLAS library the process loaded, printed as one JSON line
"""
import argparse
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_safetensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", t
        s, e = t["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(body[s:e], dtype="<f4").reshape(t["shape"]).copy())
    return out


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        a = np.ascontiguousarray(t.detach().numpy().astype("<f4"))
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        blobs.append(a.tobytes())
    text = json.dumps(header).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def sincos_2d(dim, gh, gw):
    q = dim // 4
    omega = 1.0 / 10000 ** (np.arange(q, dtype=np.float64) / q)
    out = np.zeros((gh * gw, dim), dtype=np.float32)
    for gy in range(gh):
        for gx in range(gw):
            r = out[gy * gw + gx]
            r[:q], r[q:2 * q] = np.sin(gx * omega), np.cos(gx * omega)
            r[2 * q:3 * q], r[3 * q:] = np.sin(gy * omega), np.cos(gy * omega)
    return torch.from_numpy(out)


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = (q @ k.transpose(-2, -1)) * (d // self.heads) ** -0.5
        y = att.softmax(dim=-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, hidden)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, channels, dim, patch):
        super().__init__()
        self.proj = nn.Conv2d(channels, dim, patch, patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class Encoder(nn.Module):
    """Patch embedding of the kept patches, positions, blocks and the final norm."""

    def __init__(self, c):
        super().__init__()
        gh, gw = c["height"] // c["patch"], c["width"] // c["patch"]
        self.patch_embed = PatchEmbed(c["in_channels"], c["dim"], c["patch"])
        if c.get("learned_pos"):
            self.pos_embed = nn.Parameter(torch.zeros(1, gh * gw, c["dim"]))
        else:
            self.register_buffer("pos_fixed", sincos_2d(c["dim"], gh, gw)[None], persistent=False)
        hidden = int(round(c["dim"] * c["mlp_ratio"]))
        self.blocks = nn.ModuleList(Block(c["dim"], c["heads"], hidden) for _ in range(c["depth"]))
        self.norm = nn.LayerNorm(c["dim"], eps=1e-6)

    def encode(self, patches, keep_ids):
        """patches [B, T, C*p*p]; keep_ids [B, K] (sorted) or None for every token."""
        pos = self.pos_embed if hasattr(self, "pos_embed") else self.pos_fixed
        w = self.patch_embed.proj.weight
        pos = pos.expand(patches.shape[0], -1, -1)
        if keep_ids is not None:
            patches = torch.gather(patches, 1, keep_ids[..., None].expand(-1, -1, patches.shape[2]))
            pos = torch.gather(pos, 1, keep_ids[..., None].expand(-1, -1, pos.shape[2]))
        x = F.linear(patches, w.reshape(w.shape[0], -1), self.patch_embed.proj.bias) + pos
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)


def patchify(x, p):
    """[B, C, H, W] -> [B, T, C*p*p], element order (c, ky, kx) as Conv2d's weight flattens."""
    b, c, h, w = x.shape
    return x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5).reshape(b, -1, c * p * p)


class VitClassifier(Encoder):
    def __init__(self, c):
        super().__init__(c)
        self.patch = c["patch"]
        self.head = nn.Linear(c["dim"], c["classes"])

    def logits(self, x):
        return self.head(self.encode(patchify(x, self.patch), None).mean(dim=1))

    def forward(self, x, y):
        """The loss (forward returns it, so that DistributedDataParallel wraps the whole step)."""
        return F.cross_entropy(self.logits(x), y)


class VitMae(Encoder):
    def __init__(self, c):
        super().__init__(c)
        gh, gw = c["height"] // c["patch"], c["width"] // c["patch"]
        self.patch, self.tokens = c["patch"], gh * gw
        self.keep = int(self.tokens * (1.0 - c["mask_ratio"]))
        dd = c["decoder_dim"]
        self.decoder_embed = nn.Linear(c["dim"], dd)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dd))
        self.register_buffer("dec_pos", sincos_2d(dd, gh, gw)[None], persistent=False)
        hidden = int(round(dd * c["mlp_ratio"]))
        self.decoder_blocks = nn.ModuleList(
            Block(dd, c["decoder_heads"], hidden) for _ in range(c["decoder_depth"]))
        self.decoder_norm = nn.LayerNorm(dd, eps=1e-6)
        self.decoder_pred = nn.Linear(dd, c["in_channels"] * c["patch"] ** 2)

    def random_mask(self, batch):
        """MAE's random masking: the kept token ids (sorted) and the [B, T] mask, 1 = masked."""
        keep_ids = torch.argsort(torch.rand(batch, self.tokens), dim=1)[:, :self.keep].sort(1).values
        return keep_ids, torch.ones(batch, self.tokens).scatter(1, keep_ids, 0.0)

    def forward(self, x, keep_ids, mask):
        """The loss (forward returns it, so that DistributedDataParallel wraps the whole step)."""
        patches = patchify(x, self.patch)
        latent = self.decoder_embed(self.encode(patches, keep_ids))
        b, dd = x.shape[0], latent.shape[2]
        full = self.mask_token.expand(b, self.tokens, dd)
        full = full.scatter(1, keep_ids[..., None].expand(-1, -1, dd), latent) + self.dec_pos
        for blk in self.decoder_blocks:
            full = blk(full)
        pred = self.decoder_pred(self.decoder_norm(full))
        mean = patches.mean(dim=-1, keepdim=True)
        var = patches.var(dim=-1, unbiased=False, keepdim=True)
        target = (patches - mean) / (var + 1e-6) ** 0.5
        per_patch = ((pred - target) ** 2).mean(dim=-1)
        return (per_patch * mask).sum() / mask.sum()


def build(cfg):
    objective = cfg.get("model", "vit-classify")
    if objective == "vit-mae":
        return VitMae(cfg)
    if objective == "vit-classify":
        return VitClassifier(cfg)
    raise SystemExit(f"torch_vit.py: no PyTorch twin for {objective}")


def sample_batch(model, cfg, batch):
    """Random inputs and the loss arguments for `batch` samples."""
    x = torch.randn(batch, cfg["in_channels"], cfg["height"], cfg["width"])
    if isinstance(model, VitMae):
        return (x, *model.random_mask(batch))
    return (x, torch.randint(0, cfg["classes"], (batch,)))


MATRIX_PRODUCTS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::conv2d"}


def forward_flops_per_sample(model, cfg, batch=2):
    """Forward FLOPs of the matrix products, as torch.profiler counts them (the elementwise ops
    it also counts are left out, as tilestage's count leaves them out)."""
    from torch.profiler import profile
    args = sample_batch(model, cfg, batch)
    with torch.no_grad(), profile(with_flops=True) as prof:
        model(*args)
    return sum(e.flops for e in prof.events() if e.name in MATRIX_PRODUCTS) / batch


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())


def blas_libraries():
    """The BLAS shared objects this process mapped (what PyTorch's GEMMs run on)."""
    libs = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if "blas" in os.path.basename(path):
                libs.add(path)
    return sorted(libs)


def cmd_grad(a):
    cfg = json.loads(a.config)
    model = build(cfg)
    state = read_safetensors(a.weights)
    missing = model.load_state_dict(state, strict=False)
    assert not missing.missing_keys and not missing.unexpected_keys, missing
    b = a.batch
    x = torch.from_numpy(np.fromfile(a.x, dtype="<f4").reshape(b, cfg["in_channels"], cfg["height"], cfg["width"]))
    if isinstance(model, VitMae):
        mask = torch.from_numpy(np.fromfile(a.mask, dtype=np.uint8).reshape(b, model.tokens))
        keep_ids = torch.stack([torch.nonzero(row == 0).flatten() for row in mask])
        loss = model(x, keep_ids, mask.float())
    else:
        loss = model(x, torch.from_numpy(np.fromfile(a.y, dtype="<f4").astype(np.int64)))
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    grads["loss"] = loss.detach().reshape(1)
    write_safetensors(a.out, grads)


def cmd_count(a):
    cfg = json.loads(a.config)
    model = build(cfg)
    print(json.dumps({"parameters": parameter_count(model),
                      "forward_flops_per_sample": forward_flops_per_sample(model, cfg)}))


def bench_config(a):
    return dict(model="vit-" + a.objective, in_channels=a.channels, height=a.size, width=a.size,
                patch=a.patch, dim=a.dim, depth=a.depth, heads=a.heads, mlp_ratio=a.mlp_ratio,
                classes=a.classes, mask_ratio=a.mask_ratio, decoder_dim=a.decoder_dim,
                decoder_depth=a.decoder_depth, decoder_heads=a.decoder_heads)


def cmd_bench(a):
    """--ranks N > 1: N processes (torch.multiprocessing), DistributedDataParallel over gloo, each
    rank a slice of the global batch, as the trainer's data parallel; rank 0 prints."""
    if a.ranks == 1:
        bench_rank(0, a)
        return
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(s.getsockname()[1]))
    torch.multiprocessing.spawn(bench_rank, args=(a,), nprocs=a.ranks)


def bench_rank(rank, a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = bench_config(a)
    model = build(cfg)
    world = a.ranks
    step_model = model
    if world > 1:
        import torch.distributed as dist
        dist.init_process_group("gloo", rank=rank, world_size=world)
        step_model = torch.nn.parallel.DistributedDataParallel(model)
    local_batch = a.batch // world
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)

    def step():
        args = sample_batch(model, cfg, local_batch)  # a new mask each step, as the trainer draws
        opt.zero_grad(set_to_none=True)
        loss = step_model(*args)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    step_s = sorted(times)[len(times) // 2]
    if rank != 0:
        return
    print(json.dumps({"peer": "pytorch", "torch_version": torch.__version__, "ranks": world,
                      "threads_per_rank": torch.get_num_threads(), "blas": blas_libraries(),
                      "objective": cfg["model"], "global_batch": a.batch, "steps": a.steps,
                      "median_step_s": step_s, "samples_per_s": a.batch / step_s,
                      "parameters": parameter_count(model),
                      "forward_flops_per_sample": forward_flops_per_sample(model, cfg)}))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("grad")
    g.add_argument("--weights", required=True)
    g.add_argument("--x", required=True)
    g.add_argument("--y")
    g.add_argument("--mask")
    g.add_argument("--batch", type=int, required=True)
    g.add_argument("--config", required=True)
    g.add_argument("--out", required=True)
    c = sub.add_parser("count")
    c.add_argument("--config", required=True)
    b = sub.add_parser("bench")
    b.add_argument("--objective", choices=["mae", "classify"], default="mae")
    for name, default in [("dim", 192), ("depth", 12), ("heads", 3), ("patch", 8), ("size", 64),
                          ("channels", 3), ("classes", 10), ("batch", 32), ("steps", 5),
                          ("warmup", 1), ("threads", 2), ("decoder_dim", 128),
                          ("decoder_depth", 1), ("decoder_heads", 4), ("ranks", 1)]:
        b.add_argument("--" + name.replace("_", "-"), type=int, default=default)
    b.add_argument("--mlp-ratio", type=float, default=4.0)
    b.add_argument("--mask-ratio", type=float, default=0.75)
    a = p.parse_args()
    torch.set_num_threads(getattr(a, "threads", 1))
    {"grad": cmd_grad, "count": cmd_count, "bench": cmd_bench}[a.cmd](a)


if __name__ == "__main__":
    main()
