#!/usr/bin/env bash
# One device call: HF parity on CUDA and a generation benchmark against transformers.
# Expects gpu-bin.tar.xz (the foil binary built with --features cuda) in the
# checkout root. Writes everything to $OUT (or ./gpu-out).
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}
exec > >(tee "$OUT/log.txt") 2>&1
date; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
tar -xJf gpu-bin.tar.xz
ls -la gpu-bin
echo "== parity on cuda (5 random-weight families vs transformers fixtures)"
timeout 240 gpu-bin/foil selftest --device cuda 2>&1 | tail -12
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
echo "== bf16 generation (smollm2-135m config)"
timeout 150 gpu-bin/foil generate --policy /tmp/smollm2-135m --prompt "Q:1+2+3+4+5+6+7=" \
  -n 8 --max-tokens 128 --greedy --device cuda --warmup --dtype bf16 --json > "$OUT/foil-bf16.jsonl" 2> "$OUT/foil-bf16.err"
tail -2 "$OUT/foil-bf16.err"
date
