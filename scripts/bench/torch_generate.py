"""PyTorch reference for foil's `generation_base` bench: an eager generation loop with a
KV cache on foil's tiny_gpt (d 256, 4 layers, vocabulary 512): 16 prompts of 64 tokens,
64 new tokens each, sampled at temperature 1 (torch.multinomial), the sampled token's
log-prob recorded as foil's sampler does; no end token, every row decodes all 64.
Prints one JSON line: {"tokens_per_s": ..., "ms": median ms per batch, ...}.

    /root/torch-venv/bin/python scripts/bench/torch_generate.py [--iters 10] [--threads 2]
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tiny_gpt import TinyGpt, median, splitmix_ids, timed  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--iters", type=int, default=10)
ap.add_argument("--warmup", type=int, default=1)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--rows", type=int, default=16)
ap.add_argument("--prompt", type=int, default=64)
ap.add_argument("--new", type=int, default=64)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)

VOCAB = 512
model = TinyGpt(vocab=VOCAB, context=128, d=256, layers=4, heads=4, mlp_ratio=4).eval()
prompts = torch.tensor(
    [splitmix_ids(a.prompt, VOCAB, 100 + i) for i in range(a.rows)]
)
valid = torch.ones_like(prompts, dtype=torch.bool)
gen = torch.Generator().manual_seed(0)


@torch.inference_mode()
def generate():
    caches = [{} for _ in model.blocks]
    logits, key_bias = model(prompts, valid, caches)
    logits = logits[:, -1]
    out, logps = [], []
    pos = valid.long().sum(1, keepdim=True)
    for step in range(a.new):
        logp = torch.log_softmax(logits / 1.0, dim=-1)
        logp[:, 0] = float("-inf")  # the pad id is never drawn
        logp = logp - torch.logsumexp(logp, dim=-1, keepdim=True)
        tok = torch.multinomial(logp.exp(), 1, generator=gen)
        out.append(tok)
        logps.append(logp.gather(1, tok))
        if step + 1 == a.new:
            break
        logits, key_bias = model.decode(caches, key_bias, tok, pos + step)
    return torch.cat(out, 1), torch.cat(logps, 1)


tokens, _ = generate()
assert tokens.shape == (a.rows, a.new)
times = timed(generate, a.iters, a.warmup)
ms = 1e3 * median(times)
print(json.dumps({
    "bench": "generation",
    "tokens_per_s": a.rows * a.new / (ms / 1e3),
    "ms": ms,
    "runs_ms": [round(1e3 * s, 2) for s in times],
    "rows": a.rows, "prompt": a.prompt, "new": a.new,
    "threads": torch.get_num_threads(),
    "torch": torch.__version__,
}))
