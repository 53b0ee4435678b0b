"""PyTorch reference for foil's `train_step` bench: one step of foil's tiny_gpt
(d 256, 4 layers, 4 heads, FFN 4d, 128 positions, vocabulary 512) on 16 rows of 128
tokens: forward, next-token cross-entropy over the 127 predictions per row, backward,
AdamW. Prints one JSON line: {"ms_per_step": median, "fwd_ms": median no-grad forward, ...}.

    /root/torch-venv/bin/python scripts/bench/torch_train_step.py [--iters 10] [--threads 2]
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tiny_gpt import TinyGpt, median, splitmix_ids, timed  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--iters", type=int, default=10)
ap.add_argument("--warmup", type=int, default=2)
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)

VOCAB, ROWS, LEN = 512, 16, 128
model = TinyGpt(vocab=VOCAB, context=128, d=256, layers=4, heads=4, mlp_ratio=4)
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
ids = torch.tensor(splitmix_ids(ROWS * LEN, VOCAB, 7)).reshape(ROWS, LEN)
valid = torch.ones(ROWS, LEN, dtype=torch.bool)


def step():
    logits, _ = model(ids, valid)
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), ids[:, 1:].reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


train = timed(step, a.iters, a.warmup)
with torch.no_grad():
    fwd = timed(lambda: model(ids, valid), a.iters, a.warmup)
print(json.dumps({
    "bench": "train_step",
    "ms_per_step": 1e3 * median(train),
    "fwd_ms": 1e3 * median(fwd),
    "steps_ms": [round(1e3 * s, 2) for s in train],
    "threads": torch.get_num_threads(),
    "torch": torch.__version__,
    "params": sum(p.numel() for p in model.parameters()),
}))
