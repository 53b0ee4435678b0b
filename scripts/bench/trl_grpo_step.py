"""TRL reference for foil's `grpo_step` bench (the baseline of
/work/shared/baselines/trl_grpo_cpu.py, printing JSON): GRPOTrainer on the CPU with a
random-init Qwen2 (hidden 128, 4 layers, 4 heads, 2 KV heads, FFN 512, tied embeddings)
over a character vocabulary of 21, `Q:a+b=` problems, 2 prompts x 8 completions x <= 16
tokens at temperature 1, beta 0.04, lr 1e-5. Times each optimizer step (generation,
reward, reference log-probs, loss, backward, AdamW) with a TrainerCallback; the first
`--skip` steps are warm-up. Prints one JSON line: {"median_s": ..., "steps_s": [...], ...}.

    /root/torch-venv/bin/python scripts/bench/trl_grpo_step.py [--steps 10] [--threads 2]
"""
import argparse
import json
import os
import random
import sys
import tempfile
import time
import warnings

ap = argparse.ArgumentParser()
ap.add_argument("--steps", type=int, default=10)
ap.add_argument("--skip", type=int, default=2)
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()
warnings.filterwarnings("ignore")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from tokenizers import Tokenizer, models, pre_tokenizers  # noqa: E402
from transformers import (  # noqa: E402
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
    TrainerCallback,
)
from trl import GRPOConfig, GRPOTrainer  # noqa: E402
import trl  # noqa: E402

torch.set_num_threads(a.threads)
torch.manual_seed(0)
random.seed(0)
chars = list("0123456789+-*=QA:| ")
vocab = {"<pad>": 0, "<eos>": 1}
for c in chars:
    vocab.setdefault(c, len(vocab))
tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
tk.pre_tokenizer = pre_tokenizers.Split("", "isolated")
tok = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", eos_token="<eos>")
cfg = Qwen2Config(
    vocab_size=len(vocab), hidden_size=128, intermediate_size=512, num_hidden_layers=4,
    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
    tie_word_embeddings=True, pad_token_id=0, eos_token_id=1, bos_token_id=1,
)
work = tempfile.mkdtemp(prefix="trl_grpo_step_")
model = Qwen2ForCausalLM(cfg)
model.save_pretrained(f"{work}/tiny")
tok.save_pretrained(f"{work}/tiny")
probs = []
for _ in range(256):
    x, y = random.randint(0, 99), random.randint(0, 99)
    probs.append({"prompt": f"Q:{x}+{y}=", "answer": str(x + y)})
ds = Dataset.from_list(probs)


def reward(completions, answer, **kw):
    return [1.0 if c.strip().split("|")[0].replace(" ", "") == t else 0.0
            for c, t in zip(completions, answer)]


args = GRPOConfig(
    output_dir=f"{work}/out", use_cpu=True, per_device_train_batch_size=16,
    num_generations=8, max_completion_length=16, max_steps=a.steps, logging_steps=1,
    learning_rate=1e-5, report_to=[], save_strategy="no", bf16=False, temperature=1.0,
    beta=0.04, dataloader_num_workers=0, seed=0, disable_tqdm=True,
)
trainer = GRPOTrainer(model=f"{work}/tiny", reward_funcs=reward, args=args,
                      train_dataset=ds, processing_class=tok)
times = []


class Clock(TrainerCallback):
    def on_step_begin(self, args, state, control, **kw):
        self.t = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        times.append(time.perf_counter() - self.t)


trainer.add_callback(Clock())
trainer.train()
kept = sorted(times[a.skip:]) if len(times) > a.skip else sorted(times)
m = len(kept) // 2
med = kept[m] if len(kept) % 2 else 0.5 * (kept[m - 1] + kept[m])
print(json.dumps({
    "bench": "grpo_step",
    "median_s": med,
    "steps_s": [round(t, 4) for t in times],
    "skipped": a.skip,
    "completions_per_step": args.per_device_train_batch_size,
    "num_generations": args.num_generations,
    "threads": torch.get_num_threads(),
    "torch": torch.__version__,
    "trl": trl.__version__,
}))
sys.stdout.flush()
