"""PyTorch twin of tilestage's ViT (trainer/model.h), for the trainer benchmark and tests.

Same architecture and parameter names: Conv2d patch embedding, fixed 2-D sin-cos (or learned)
position embedding, pre-LN blocks (LayerNorm eps 1e-6, qkv Linear, tanh-GELU MLP), final norm,
mean-pooled classification head. Weights load from tilestage's safetensors with a small reader
(the safetensors package is not in Debian 12).

  grad   --weights W --x X.f32 --y Y.f32 --config JSON --out G.safetensors
         forward + backward of the classification loss; writes loss and gradients
  bench  --dim --depth --heads --patch --size --channels --classes --batch --steps --threads
         training samples/s with AdamW, printed as one JSON line
"""
import argparse
import json
import math
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


class VitClassifier(nn.Module):
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
        self.head = nn.Linear(c["dim"], c["classes"])

    def forward(self, x):
        x = self.patch_embed(x)
        x = x + (self.pos_embed if hasattr(self, "pos_embed") else self.pos_fixed)
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x).mean(dim=1))


def cmd_grad(a):
    cfg = json.loads(a.config)
    model = VitClassifier(cfg)
    state = read_safetensors(a.weights)
    missing = model.load_state_dict(state, strict=False)
    assert not missing.missing_keys and not missing.unexpected_keys, missing
    b = a.batch
    x = torch.from_numpy(np.fromfile(a.x, dtype="<f4").reshape(b, cfg["in_channels"], cfg["height"], cfg["width"]))
    y = torch.from_numpy(np.fromfile(a.y, dtype="<f4").astype(np.int64))
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    grads["loss"] = loss.detach().reshape(1)
    write_safetensors(a.out, grads)


def cmd_bench(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = dict(in_channels=a.channels, height=a.size, width=a.size, patch=a.patch, dim=a.dim,
               depth=a.depth, heads=a.heads, mlp_ratio=a.mlp_ratio, classes=a.classes)
    model = VitClassifier(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    x = torch.randn(a.batch, a.channels, a.size, a.size)
    y = torch.randint(0, a.classes, (a.batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = time.perf_counter() - t0
    print(json.dumps({"peer": "pytorch", "torch_version": torch.__version__, "threads": a.threads,
                      "batch": a.batch, "steps": a.steps, "elapsed_s": dt,
                      "samples_per_s": a.batch * a.steps / dt}))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("grad")
    g.add_argument("--weights", required=True)
    g.add_argument("--x", required=True)
    g.add_argument("--y", required=True)
    g.add_argument("--batch", type=int, required=True)
    g.add_argument("--config", required=True)
    g.add_argument("--out", required=True)
    b = sub.add_parser("bench")
    for name, default in [("dim", 192), ("depth", 12), ("heads", 3), ("patch", 8), ("size", 64),
                          ("channels", 3), ("classes", 10), ("batch", 32), ("steps", 10),
                          ("warmup", 2), ("threads", 2)]:
        b.add_argument("--" + name, type=int, default=default)
    b.add_argument("--mlp-ratio", type=float, default=4.0)
    a = p.parse_args()
    torch.set_num_threads(getattr(a, "threads", 1))
    {"grad": cmd_grad, "bench": cmd_bench}[a.cmd](a)


if __name__ == "__main__":
    main()
