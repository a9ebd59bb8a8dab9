"""The `mlp-deep` recipe (and, with --model cgan, its conditional version) in PyTorch, to check
that what `gan train` gives for these models is the recipe's, not the engine's.

`../shared/reference/bench_torch.py --train-fixed N` does the same for `mlp` and `dcgan`; this
script covers the models it lacks, with the same step (fake = G(z) once, a D update on the real
batch and the detached fake, a non-saturating G update through the updated D) and the same
sample format (10,000 uint8 images N×28×28, scored by `gan eval --samples`).

    MNIST_DIR=... python scripts/reference/mlp_gan_torch.py --model mlp-deep --iters 600 \
        --samples /tmp/mlp-deep-torch-600.npy

MNIST_DIR holds train-images.idx3-ubyte and train-labels.idx1-ubyte (see docs/performance.md).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "reference"))
import mnist_idx  # noqa: E402  (the reference folder's IDX reader)


def linear(i, o):
    """Truncated normal(0, 0.02) weights cut at two standard deviations, zero bias (TF1)."""
    layer = nn.Linear(i, o)
    nn.init.trunc_normal_(layer.weight, std=0.02, a=-0.04, b=0.04)
    nn.init.zeros_(layer.bias)
    return layer


def models(classes):
    g = nn.Sequential(linear(100 + classes, 256), nn.ReLU(), linear(256, 512), nn.ReLU(),
                      linear(512, 1024), nn.ReLU(), linear(1024, 784), nn.Tanh())
    d = nn.Sequential(linear(784 + classes, 1024), nn.ReLU(), nn.Dropout(0.7),
                      linear(1024, 512), nn.ReLU(), nn.Dropout(0.7),
                      linear(512, 256), nn.ReLU(), nn.Dropout(0.7),
                      linear(256, 1), nn.Sigmoid())
    return g, d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["mlp-deep", "cgan"], default="mlp-deep")
    ap.add_argument("--iters", type=int, required=True)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--samples", required=True)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_flush_denormal(True)
    classes = 10 if args.model == "cgan" else 0
    x = torch.from_numpy(np.array(mnist_idx.load_train_images(), copy=True)).float().div_(127.5).sub_(1).view(-1, 784)
    y = torch.from_numpy(np.array(mnist_idx.load_train_labels(), copy=True)).long()
    G, D = models(classes)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.9, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.9, 0.999))
    ones, zeros = torch.ones(args.batch, 1), torch.zeros(args.batch, 1)

    def cond(t, labels):
        return torch.cat([t, F.one_hot(labels, 10).float()], 1) if classes else t

    perm, pos, t0 = torch.randperm(len(x)), 0, time.perf_counter()
    for i in range(args.iters):
        if pos + args.batch > len(x):
            perm, pos = torch.randperm(len(x)), 0
        idx = perm[pos:pos + args.batch]
        pos += args.batch
        real, labels = x[idx], y[idx]
        fake = G(cond(torch.randn(args.batch, 100), labels))
        opt_d.zero_grad(set_to_none=True)
        d_loss = F.binary_cross_entropy(D(cond(real, labels)), ones) + \
            F.binary_cross_entropy(D(cond(fake.detach(), labels)), zeros)
        d_loss.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        g_loss = F.binary_cross_entropy(D(cond(fake, labels)), ones)
        g_loss.backward()
        opt_g.step()
        if (i + 1) % 100 == 0:
            print(f"iter {i + 1}: d_loss {d_loss.item():.4f} g_loss {g_loss.item():.4f}", flush=True)
    G.eval()
    with torch.no_grad():
        labels = torch.arange(10000) % 10
        out = torch.cat([G(cond(torch.randn(500, 100), labels[k:k + 500])) for k in range(0, 10000, 500)])
    u8 = ((out.view(-1, 28, 28) + 1) / 2).clamp(0, 1).mul(255).round().to(torch.uint8).numpy()
    np.save(args.samples, u8)
    print(json.dumps({"model": args.model, "iters": args.iters, "seconds": round(time.perf_counter() - t0, 1),
                      "samples": args.samples}))


if __name__ == "__main__":
    main()
