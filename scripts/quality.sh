#!/usr/bin/env bash
# Trains each model with its default loss for a fixed length, draws 10,000 samples and scores
# them with `gan eval`, writing docs/results/eval-<model>-<tag>.json. Results already present
# are skipped, so the script can be stopped and run again.
#
#   scripts/quality.sh 600 [MODEL…]      600 iterations at batch 64 (the anchors' setting)
#   scripts/quality.sh 5ep [MODEL…]      5 epochs at each model's default batch size
#
# RESULTS=DIR and RUNS=DIR put the JSON and the run directories elsewhere (default docs/results
# and runs/quality), e.g. to score the current engine again beside the committed results.
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:?usage: scripts/quality.sh 600|5ep [MODEL…]}; shift
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(mlp mlp-deep dcgan dcgan-bn cgan cdcgan)
gan=${GAN:-.build/release/gan}  # GAN=/path/to/a/copy keeps a long run safe from rebuilds
[ -x "$gan" ] || swift build -c release
results=${RESULTS:-docs/results}
runs=${RUNS:-runs/quality}
mkdir -p "$results" "$runs"
for m in "${models[@]}"; do
    out=$results/eval-$m-$tag.json
    [ -s "$out" ] && { echo "have $out"; continue; }
    run=$runs/$m-$tag
    case $tag in
        600) length=(--steps 600 --batch-size 64) ;;
        5ep) length=(--epochs 5) ;;
        *) echo "unknown length $tag" >&2; exit 2 ;;
    esac
    start=$(date +%s)
    if [ -d "$run/checkpoints" ]; then
        "$gan" train --model "$m" "${length[@]}" --run-dir "$run" --resume
    else
        "$gan" train --model "$m" "${length[@]}" --run-dir "$run" --seed 0
    fi
    secs=$(( $(date +%s) - start ))
    ck=$(ls "$run"/checkpoints/step-*.safetensors | tail -1)
    "$gan" eval --checkpoint "$ck" --count 10000 --seed 1 --json > "$out.tmp"
    mv "$out.tmp" "$out"
    echo "$m $tag: trained in ${secs} s; $(cat "$out")"
done
