#!/usr/bin/env bash
# Second device call: training runs on CUDA (the HF fixture recipe and quickstart, cut
# down) and batch-64 generation against transformers. Needs gpu-bin.tar.xz like
# gpu_check.sh.
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}
exec > >(tee "$OUT/log.txt") 2>&1
tar -xJf gpu-bin.tar.xz
echo "== hf-tiny-grpo on cuda (sft 100 steps, rl 10 steps)"
/usr/bin/time -f "%e s wall" timeout 200 gpu-bin/foil run recipes/hf-tiny-grpo.yaml --quiet --runs-dir "$OUT/runs" \
  --set device=cuda --set stages.0.steps=100 --set stages.2.steps=10 2>&1 | tail -14
echo "== quickstart on cuda (sft 100 steps, rl 10 steps)"
/usr/bin/time -f "%e s wall" timeout 150 gpu-bin/foil run recipes/quickstart.yaml --quiet --runs-dir "$OUT/runs" \
  --set device=cuda --set stages.0.steps=100 --set stages.2.steps=10 2>&1 | tail -14
echo "== generation: smollm2-135m, batch 64, 128 new tokens, greedy, f32"
timeout 120 python3 scripts/bench/hf_generate_reference.py /tmp/smol --config smollm2-135m \
  --batch 64 --prompt-len 16 --new-tokens 128 2>&1 | grep -E '^\{|Error' | tee -a "$OUT/bench.jsonl"
timeout 150 gpu-bin/foil generate --policy /tmp/smol --prompt "Q:1+2+3+4+5+6+7=" \
  -n 64 --max-tokens 128 --greedy --device cuda --warmup --json 2>&1 >/dev/null | tail -1
rm -rf "$OUT/runs"/*/checkpoints
