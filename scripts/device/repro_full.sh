#!/usr/bin/env bash
# Full reproduction checks on a many-core device machine, in parallel.
#
# The models are tiny, so these run on the CPU backend: the device machine is used for
# its 16 cores (each check gets a few threads), not its GPU. Carry `gpu-bin.tar.xz`
# holding `gpu-bin/xtask` (a dev-profile build of this commit, stripped); results come
# back in $OUT: one `<tag>.md` per run and `all.tgz` with every result.json, plot and log.
#
#   run: bash scripts/device/repro_full.sh        (LIMIT seconds per check, default 530)
set -u
tar -xJf gpu-bin.tar.xz
export FOIL_ROOT=$PWD
OUT=${OUT:-/tmp/out}
R=/tmp/repro
mkdir -p "$R" "$OUT"
nproc
run() {
    local tag=$1 threads=$2
    shift 2
    (
        start=$(date +%s)
        RAYON_NUM_THREADS=$threads timeout "${LIMIT:-530}" ./gpu-bin/xtask repro "$@" \
            --out "$R/$tag" >"$R/$tag.log" 2>&1
        echo "$tag rc=$? $(($(date +%s) - start))s" >>"$R/rc.txt"
    ) &
}
run per_step 3 per_step_vs_rft
run per_step_s1 2 per_step_vs_rft --seeds 1
run prof 3 prof_process
run prof_bias 3 prof_process --set stages.2.verifier.length_bias=0.1
run gtpo 2 gtpo_stability
run gtpo_3e3 3 gtpo_stability --set stages.2.optimizer.lr=0.003
wait
cat "$R/rc.txt"
for t in per_step per_step_s1 prof prof_bias gtpo gtpo_3e3; do
    f=$(find "$R/$t" -maxdepth 2 -name result.md | head -1)
    [ -n "$f" ] && cp "$f" "$OUT/$t.md"
    tail -3 "$R/$t.log"
done
(cd "$R" && find . -maxdepth 3 \( -name 'result.json' -o -name '*.png' -o -name '*.log' -o -name rc.txt \) -print0 |
    tar czf "$OUT/all.tgz" --null -T -)
ls -la "$OUT"
