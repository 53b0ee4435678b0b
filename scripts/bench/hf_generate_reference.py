"""transformers' `generate` on a real-size decoder with random weights, as the reference
for `foil generate` tokens/s. Run by hand or by a device script (never by CI):

    python scripts/bench/hf_generate_reference.py OUT_DIR [--config smollm2-135m|qwen2.5-0.5b]
        [--device cuda] [--batch 8] [--prompt-len 16] [--new-tokens 128]

Writes a Hugging Face directory to OUT_DIR (random weights, seed 0, plus the tiny
fixture tokenizer so that `foil generate` can load it) and prints one JSON line with
transformers' greedy decode throughput (after one warm-up generation).
"""

import argparse
import sys
import json
import shutil
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

CONFIGS = {
    # HuggingFaceTB/SmolLM2-135M-Instruct
    "smollm2-135m": lambda: LlamaConfig(
        vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
        num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
        rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True,
        bos_token_id=1, eos_token_id=2,
    ),
    # Qwen/Qwen2.5-0.5B-Instruct
    "qwen2.5-0.5b": lambda: Qwen2Config(
        vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
        num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
        rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True,
        use_sliding_window=False, bos_token_id=151643, eos_token_id=151645,
    ),
}

FIXTURE_TOKENIZER = Path(__file__).resolve().parents[2] / "crates/foil-models/tests/fixtures/hf/tiny-qwen2-arith"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--config", default="smollm2-135m", choices=sorted(CONFIGS))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--prompt-len", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=128)
    a = ap.parse_args()
    torch.manual_seed(0)
    config = CONFIGS[a.config]()
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    out = Path(a.out)
    # the model is written into OUT_DIR: never through a link (a link to a test fixture
    # once had its files replaced), and never over another model than the one written here
    if out.resolve() != out.absolute():
        sys.exit(f"{out} is or goes through a symbolic link ({out.resolve()}): give a plain directory")
    marker = out / ".written-by-hf_generate_reference"
    if out.is_dir() and any(out.iterdir()) and not marker.exists():
        sys.exit(f"{out} already holds files this script did not write: give an empty or new directory")
    out.mkdir(parents=True, exist_ok=True)
    marker.touch()
    model.save_pretrained(out, safe_serialization=True)
    for f in ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"]:
        if (FIXTURE_TOKENIZER / f).exists():
            shutil.copy(FIXTURE_TOKENIZER / f, out / f)
    model = model.to(a.device).eval()
    ids = torch.randint(3, 200, (a.batch, a.prompt_len), device=a.device)
    kw = dict(max_new_tokens=a.new_tokens, min_new_tokens=a.new_tokens, do_sample=False,
              use_cache=True, pad_token_id=0, eos_token_id=None)
    with torch.no_grad():
        model.generate(ids, attention_mask=torch.ones_like(ids), **kw)  # warm-up
        if a.device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out_ids = model.generate(ids, attention_mask=torch.ones_like(ids), **kw)
        if a.device == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
    n = (out_ids.shape[1] - a.prompt_len) * a.batch
    print(json.dumps(dict(engine="transformers", config=a.config, device=a.device,
                          batch=a.batch, prompt_len=a.prompt_len, new_tokens=a.new_tokens,
                          seconds=round(dt, 3), tokens_per_s=round(n / dt, 1),
                          torch=torch.__version__)))


if __name__ == "__main__":
    main()
