#!/usr/bin/env bash
# One device call: HF parity on CUDA and a generation benchmark against transformers.
# Expects gpu-bin.tar.xz (foil + hf_parity test binary, built with --features cuda) in the
# checkout root. Writes everything to $OUT (or ./gpu-out).
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}
exec > >(tee "$OUT/log.txt") 2>&1
date; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
tar -xJf gpu-bin.tar.xz
ls -la gpu-bin
echo "== parity on cuda (5 random-weight families vs transformers fixtures)"
CARGO_MANIFEST_DIR=$PWD/crates/foil-models FOIL_TEST_DEVICE=cuda timeout 240 \
  gpu-bin/hf_parity --nocapture --test-threads 1 2>&1 | grep -E "diff|test result|panicked|left|right" | head -40
for cfg in smollm2-135m qwen2.5-0.5b; do
  echo "== generation: $cfg, batch 8, 128 new tokens, greedy, f32"
  timeout 150 python3 scripts/bench/hf_generate_reference.py /tmp/$cfg --config $cfg \
    --batch 8 --prompt-len 16 --new-tokens 128 2>&1 | grep -E '^\{|Error|error' | tee -a "$OUT/bench.jsonl"
  # 16-token prompt in the fixture tokenizer (digits and operators are single tokens)
  timeout 200 gpu-bin/foil generate --policy /tmp/$cfg --prompt "Q:1+2+3+4+5+6+7=" \
    -n 8 --max-tokens 128 --greedy --device cuda --warmup --json > "$OUT/foil-$cfg.jsonl" 2> "$OUT/foil-$cfg.err"
  tail -2 "$OUT/foil-$cfg.err"
  python3 -c "import json,sys; r=[json.loads(l) for l in open('$OUT/foil-$cfg.jsonl')]; print('foil rows', len(r), 'tokens/row', [len(x['token_ids']) for x in r], 'prompt len', len(r[0]['prompt_token_ids']))"
done
date
