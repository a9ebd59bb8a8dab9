#!/usr/bin/env bash
# Paired A/B runs of `gan bench`: A, B, A, B, … one process at a time, printing each pair's
# img/s (or samples/s) and the ratio B/A. The host's speed drifts by ±20 % within minutes, so a
# change is judged by the median of the paired ratios, never by two single runs.
#
#   scripts/ab.sh ROUNDS A B BENCH-ARGS…
#
# A and B are each a `gan` executable, or VAR=value settings (comma-separated) for the default
# binary ($GAN, else .build/release/gan). Examples:
#   scripts/ab.sh 6 /tmp/gan-before .build/release/gan train --model mlp --iters 1000
#   scripts/ab.sh 6 GAN_POOL_SPIN_US=0 GAN_POOL_SPIN_US=1000 train --model dcgan --iters 20
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 4 ] || { echo "usage: scripts/ab.sh ROUNDS A B BENCH-ARGS… (A, B: a gan binary or VAR=value[,VAR=value])" >&2; exit 2; }
rounds=$1 a=$2 b=$3
shift 3
gan=${GAN:-.build/release/gan}
run() {
    local side=$1 bin=$gan settings=()
    shift
    if [ -x "$side" ] && [ ! -d "$side" ]; then bin=$side; else IFS=, read -r -a settings <<< "$side"; fi
    env "${settings[@]}" "$bin" bench "$@" --json 2>/dev/null | tail -1 |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("img_per_s") or d.get("samples_per_s"))'
}
ratios=()
for _ in $(seq "$rounds"); do
    x=$(run "$a" "$@")
    y=$(run "$b" "$@")
    r=$(python3 -c "print(round($y / $x, 3))")
    ratios+=("$r")
    echo "A $x  B $y  B/A $r"
done
python3 -c "import statistics,sys; r=[float(v) for v in sys.argv[1:]]; print(f'median B/A {statistics.median(r):.3f} over {len(r)} pairs (range {min(r):.3f}-{max(r):.3f})')" "${ratios[@]}"
