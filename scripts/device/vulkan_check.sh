#!/usr/bin/env bash
# burn's GPU code path on a machine without a GPU: a `--features vulkan` build of foil run on
# Mesa's lavapipe (a Vulkan driver on the CPU). Fusion, autotune and cubecl's kernels are
# the ones a CUDA build runs; only the code generator and the runtime differ (SPIR-V/wgpu
# instead of CUDA C/NVRTC, f32 matmuls without TF32). What it checks, in one go:
#   1. `foil selftest --device vulkan`: the fixtures' logits and 20 greedy KV-cache steps
#      against transformers (docs/hf-models.md);
#   2. kernels per decode step, compiled kernels and autotune searches of
#      `foil generate --device vulkan` (sampled at temperature 1, seed 0: the fixture's
#      greedy rows end early) on the tiny Qwen2 fixture, from cubecl's logs: two
#      runs of SHORT and LONG new tokens, per step = the difference / (LONG − SHORT). The
#      compiled and autotuned counts should not grow with LONG (docs/benchmarks.md,
#      session 14).
#
#   setup (once): apt-get install -y mesa-vulkan-drivers libvulkan1 vulkan-tools
#                 cargo build -p foil --features vulkan   (~15 min cold: wgpu and burn again)
#   run:          bash scripts/device/vulkan_check.sh [path/to/foil]
# Slow by design (lavapipe on two cores: the selftest takes ~1 min, mostly compiling);
# not part of CI.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FOIL=${1:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/foil}
FIX=$ROOT/crates/foil-models/tests/fixtures/hf
SHORT=${SHORT:-20}; LONG=${LONG:-60}
[ -x "$FOIL" ] || { echo "no foil binary at $FOIL (cargo build -p foil --features vulkan)"; exit 1; }
FOIL=$(realpath "$FOIL")   # the checks below run in a scratch directory
"$FOIL" list 2>/dev/null | grep -q vulkan ||
  { echo "$FOIL was built without --features vulkan"; exit 1; }
command -v vulkaninfo > /dev/null ||
  { echo "no vulkaninfo: apt-get install -y mesa-vulkan-drivers libvulkan1 vulkan-tools"; exit 1; }
vulkaninfo --summary 2>/dev/null | grep -E "deviceName|driverName" ||
  { echo "no Vulkan device: apt-get install -y mesa-vulkan-drivers libvulkan1"; exit 1; }

# cubecl reads cubecl.toml from the working directory: a scratch one with the loggers on,
# and its own autotune cache so that every run searches afresh
WORK=$(mktemp -d /tmp/foil-vulkan.XXXXXX)
cat > "$WORK/cubecl.toml" <<EOF
[compilation.logger]
level = "basic"
file = "$WORK/compile.log"
append = false

[profiling.logger]
level = "minimal"
file = "$WORK/kernels.log"
append = false

[autotune.logger]
level = "minimal"
file = "$WORK/autotune.log"
append = false

[autotune]
cache = { file = "$WORK/autotune-cache" }
EOF
cd "$WORK"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$WORK}

if [ "${SELFTEST:-1}" != 0 ]; then   # SELFTEST=0 skips it
  echo "== 1. selftest on vulkan"
  "$FOIL" selftest --fixtures "$FIX" --device vulkan
fi

echo "== 2. kernels per decode step (tiny-qwen2-arith, 4 rows, $SHORT and $LONG new tokens)"
mkdir -p runs
for m in $SHORT $LONG; do
  rm -rf autotune-cache ./*.log
  "$FOIL" generate --policy "$FIX/tiny-qwen2-arith" --prompt "1+2=" -n 4 --max-tokens "$m" \
    --temperature 1 --device vulkan --json > "runs/out-$m.jsonl"
  for k in kernels compile autotune; do cp "$k.log" "runs/$k-$m.log"; done
done
cd runs
python3 - "$SHORT" "$LONG" <<'EOF'
import collections, json, sys
short, long = int(sys.argv[1]), int(sys.argv[2])
def kernels(m):
    c = collections.Counter()
    for line in open(f"kernels-{m}.log"):
        parts = [p.strip() for p in line.replace("Executing", "").split("|")]
        c[" ".join(parts[:2]) if len(parts) > 2 else parts[0]] += 1
    return c
lengths = {m: [len(json.loads(l)["token_ids"]) for l in open(f"out-{m}.jsonl")] for m in (short, long)}
print("tokens per row:", lengths)
# the sampler decodes until every row has ended: a run whose rows all ended early would
# have run fewer steps than asked
for m, rows in lengths.items():
    assert max(rows) == m, f"no row of the {m}-token run reached {m} tokens: {rows}"
a, b = kernels(short), kernels(long)
steps = long - short
for k in sorted(set(a) | set(b), key=lambda k: a[k] - b[k]):
    if b[k] != a[k]:
        print(f"{(b[k] - a[k]) / steps:8.2f}  {k}")
print(f"{(sum(b.values()) - sum(a.values())) / steps:8.2f}  kernels per decode step")
for what, name, pick in [("compiled kernels", "compile", None), ("autotune searches", "autotune", "Fastest")]:
    n = [sum(1 for l in open(f"{name}-{m}.log") if pick is None or pick in l) for m in (short, long)]
    print(f"{what}: {n[0]} ({short} tokens), {n[1]} ({long} tokens)")
EOF
echo "logs: $WORK"
