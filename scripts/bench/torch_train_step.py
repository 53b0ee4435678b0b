"""PyTorch reference for foil's train-step benches: SFT steps of foil's tiny_gpt on random
tokens (forward, next-token cross-entropy over the len − 1 predictions per row, backward,
AdamW). Prints one JSON line: {"ms_per_step": median, "fwd_ms": median no-grad forward, ...}.

Default: the CPU `train_step` criterion bench (d 256, 4 layers, 4 heads, FFN 4d, vocabulary
512, 16 rows of 128 tokens). `--gpu`: issue 7's GPU config, the one `foil bench train`
defaults to (d 1024, 12 layers, 16 heads, vocabulary 32000, 8 rows of 512 tokens) on
cuda. `--precision bf16` runs forward and loss under `torch.autocast(bfloat16)` (f32
weights and AdamW state, as foil's `precision: bf16`, which also runs norms and the
residual stream in bf16). f32 matmuls stay full f32 (`allow_tf32` is False by default
since PyTorch 1.12) unless `--tf32`; burn's CUDA f32 matmuls use TF32 (docs/hf-models.md),
so compare foil's f32 step with both.

    /root/torch-venv/bin/python scripts/bench/torch_train_step.py [--iters 10] [--threads 2]
    python3 scripts/bench/torch_train_step.py --gpu [--precision bf16] [--tf32]
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tiny_gpt import TinyGpt, median, splitmix_ids, timed  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--iters", type=int, default=10)
ap.add_argument("--warmup", type=int, default=2)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--gpu", action="store_true", help="issue 7's GPU config on cuda")
ap.add_argument("--device", default=None)
ap.add_argument("--d-model", type=int, default=None)
ap.add_argument("--layers", type=int, default=None)
ap.add_argument("--heads", type=int, default=None)
ap.add_argument("--vocab", type=int, default=None)
ap.add_argument("--rows", type=int, default=None)
ap.add_argument("--len", type=int, default=None)
ap.add_argument("--precision", choices=["f32", "bf16"], default="f32")
ap.add_argument("--tf32", action="store_true")
a = ap.parse_args()
preset = dict(device="cuda", d_model=1024, layers=12, heads=16, vocab=32000, rows=8, len=512) \
    if a.gpu else dict(device="cpu", d_model=256, layers=4, heads=4, vocab=512, rows=16, len=128)
cfg = {k: (getattr(a, k) if getattr(a, k) is not None else v) for k, v in preset.items()}
dev = torch.device(cfg["device"])
torch.set_num_threads(a.threads)
torch.backends.cuda.matmul.allow_tf32 = a.tf32
torch.backends.cudnn.allow_tf32 = a.tf32
torch.manual_seed(0)

VOCAB, ROWS, LEN = cfg["vocab"], cfg["rows"], cfg["len"]
model = TinyGpt(vocab=VOCAB, context=LEN, d=cfg["d_model"], layers=cfg["layers"],
                heads=cfg["heads"], mlp_ratio=4).to(dev)
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
ids = torch.tensor(splitmix_ids(ROWS * LEN, VOCAB, 7)).reshape(ROWS, LEN).to(dev)
valid = torch.ones(ROWS, LEN, dtype=torch.bool, device=dev)
autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.precision == "bf16")


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()


losses = []


def step():  # ends in a sync (loss.item() and sync()), so `timed` times the kernels
    with autocast:
        logits, _ = model(ids, valid)
        loss = F.cross_entropy(logits[:, :-1].float().reshape(-1, VOCAB), ids[:, 1:].reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    losses.append(loss.item())
    sync()


sync()
t0 = time.perf_counter()
step()
first = time.perf_counter() - t0
train = timed(step, a.iters, max(a.warmup - 1, 0))


def forward():
    with autocast:
        model(ids, valid)
    sync()


with torch.no_grad():
    fwd = timed(forward, a.iters, a.warmup)
params = sum(p.numel() for p in model.parameters())
s = median(train)
print(json.dumps({
    "bench": "train_step",
    "device": str(dev),
    "precision": a.precision,
    "tf32": a.tf32,
    "ms_per_step": 1e3 * s,
    "fwd_ms": 1e3 * median(fwd),
    "steps_ms": [round(1e3 * x, 2) for x in train],
    "first_step_ms": 1e3 * first,
    "tokens_per_s": ROWS * LEN / s,
    "tflops_6nd": 6 * params * ROWS * LEN / s / 1e12,
    "params": params,
    "loss_first": losses[0],
    "loss_last": losses[-1],
    "threads": torch.get_num_threads(),
    "torch": torch.__version__,
}))
