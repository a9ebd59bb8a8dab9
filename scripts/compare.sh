#!/usr/bin/env bash
# Runs TensorFlow, PyTorch and `gan bench` on the same models in one session, one process at a
# time, and prints the ratios (docs/performance.md). Needs the two virtual environments of
# ../shared/reference/README.md under $ANCHORS_WORK (venv: torch, tfvenv: tensorflow-cpu) and the
# MNIST IDX files under $MNIST_DIR named as the reference scripts expect.
#
#   ANCHORS_WORK=/work/anchors MNIST_DIR=/work/anchors/mnist scripts/compare.sh [ROUNDS]
#
# ROUNDS (default 1) repeats the whole set, alternating frameworks, so noise shows as spread.
# MODELS (default "mlp dcgan wgangp") picks models, and NO_TORCH=1 leaves PyTorch out: e.g.
# `MODELS=wgangp NO_TORCH=1 … compare.sh 6` gives six back-to-back TensorFlow / swift-gan pairs,
# a tighter ratio on a host whose speed drifts within minutes.
# Each round also times the mlp and dcgan steps' primitives alone (`gan bench engine --breakdown`):
# the img/s a step could reach if nothing else took time and its products ran as fast as alone,
# next to TensorFlow's in the same session.
# Results: $ANCHORS_WORK/results/compare-<time>.jsonl, then a table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${ANCHORS_WORK:?set ANCHORS_WORK to where the venvs are}"
: "${MNIST_DIR:?set MNIST_DIR to the IDX files}"
export MNIST_DIR
rounds=${1:-1}
ref=../shared/reference
gan=${GAN:-.build/release/gan}
[ -x "$gan" ] || swift build -c release
out=$ANCHORS_WORK/results/compare-$(date +%Y%m%d-%H%M%S).jsonl
mkdir -p "$(dirname "$out")"
tfquiet() { grep -v -E '^(I0000|WARNING: All log messages|To enable the following)' || true; }
iters() { case $1 in mlp) echo 500 ;; *) echo 30 ;; esac; }

for r in $(seq "$rounds"); do
    for m in ${MODELS:-mlp dcgan wgangp}; do
        it=$(iters $m)
        infer=(); [ $m = dcgan ] && infer=(--infer)
        "$ANCHORS_WORK/tfvenv/bin/python" $ref/bench_tf.py --model $m --batch 64 --warmup 5 --iters "$it" "${infer[@]}" --out "$out" 2>&1 | tfquiet >/dev/null
        [ "${NO_TORCH:-0}" = 1 ] ||
            "$ANCHORS_WORK/venv/bin/python" $ref/bench_torch.py --model $m --batch 64 --warmup 5 --iters "$it" "${infer[@]}" --flush-denormal --out "$out" >/dev/null
        case $m in
            wgangp) args=(--model dcgan-bn --loss wgan-gp) ;;
            *) args=(--model $m) ;;
        esac
        "$gan" bench train "${args[@]}" --batch 64 --warmup 5 --iters "$it" --json | tail -1 |
            python3 -c "import json,sys; j=json.load(sys.stdin); j['framework']='swift-gan'; j['model']='$m'; print(json.dumps(j))" >> "$out"
        if [ $m != wgangp ]; then
            # The step's floor: its convolutions and matrix products, each timed alone in this
            # session. Optimistic for the mlp: in its step both threads run products at once and
            # each runs slower (docs/performance-log.md, session 16).
            "$gan" bench engine --model $m --breakdown --json | tail -1 |
                python3 -c "import json,sys; j=json.load(sys.stdin); j['framework']='swift-gan'; j['model']='$m-floor'; print(json.dumps(j))" >> "$out"
        fi
        if [ $m = dcgan ]; then
            "$gan" bench generate --model dcgan --count 10000 --batch 500 --json | tail -1 |
                python3 -c "import json,sys; j=json.load(sys.stdin); j['framework']='swift-gan'; j['model']='dcgan-generate'; print(json.dumps(j))" >> "$out"
        fi
    done
done

python3 - "$out" <<'EOF'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def vals(fw, model, key):
    return [r[key] for r in rows if r.get("framework") == fw and r.get("model") == model and key in r]
print(f"results: {sys.argv[1]}")
print("| what | swift-gan | TensorFlow | PyTorch | swift-gan / TF | swift-gan / PyTorch |")
print("|---|---:|---:|---:|---:|---:|")
for model, label in (("mlp", "mlp training img/s"), ("dcgan", "dcgan training img/s"), ("wgangp", "dcgan-bn + wgan-gp img/s")):
    s, t, p = (statistics.median(vals(fw, model, "img_per_s") or [float("nan")]) for fw in ("swift-gan", "tensorflow", "torch"))
    print(f"| {label} | {s:,.1f} | {t:,.1f} | {p:,.1f} | {s / t:.2f}× | {s / p:.2f}× |")
for model in ("mlp", "dcgan"):
    f = statistics.median(vals("swift-gan", f"{model}-floor", "max_img_per_s") or [float("nan")])
    t = statistics.median(vals("tensorflow", model, "img_per_s") or [float("nan")])
    p = statistics.median(vals("torch", model, "img_per_s") or [float("nan")])
    print(f"| {model} floor: the step's primitives, each timed alone, img/s | {f:,.1f} | {t:,.1f} | {p:,.1f} | {f / t:.2f}× | {f / p:.2f}× |")
s = statistics.median(vals("swift-gan", "dcgan-generate", "samples_per_s") or [float("nan")])
t = statistics.median(vals("tensorflow", "dcgan", "gen_samples_per_s") or [float("nan")])
p = statistics.median(vals("torch", "dcgan", "gen_samples_per_s") or [float("nan")])
print(f"| dcgan generation samples/s | {s:,.1f} | {t:,.1f} | {p:,.1f} | {s / t:.2f}× | {s / p:.2f}× |")
# Round by round: each swift-gan run against the TensorFlow run just before it, and how fast
# the host let TensorFlow run then, as a share of its img/s in ../shared/reference/README.md
# (batch 64). The ratio moves with that share: the mlp's falls as TensorFlow nears its
# reference speed (docs/performance-log.md, session 41), so a round is read with its host state.
reference_tf = {"mlp": 19598, "dcgan": 226, "wgangp": 67}
for model in ("mlp", "dcgan", "wgangp"):
    ours, theirs = vals("swift-gan", model, "img_per_s"), vals("tensorflow", model, "img_per_s")
    pairs = [(a / b, b / reference_tf[model]) for a, b in zip(ours, theirs)]
    if pairs:
        listed = ", ".join(f"{r:.2f} (TF at {100 * share:.0f} %)" for r, share in pairs)
        print(f"{model} swift-gan / TF per round: {listed}; median {statistics.median(r for r, _ in pairs):.2f}")
# How close each framework's step comes to the machine's sgemm rate: the step's products
# (counted by swift-gan; the models are the same) times steps/s, over the faster of the two
# yardsticks (before and after its steps) of the swift-gan run in the same round.
for model in ("mlp", "dcgan", "wgangp"):
    runs = [r for r in rows if r.get("framework") == "swift-gan" and r.get("model") == model and "step_gflop" in r]
    if not runs: continue
    gemm = [max(r["sgemm_gflops"], r.get("sgemm_gflops_after", 0)) for r in runs]
    gflop, batch = runs[0]["step_gflop"], runs[0]["batch"]
    def frac(fw):
        xs = vals(fw, model, "img_per_s")
        return ", ".join(f"{100 * gflop * x / batch / g:.0f} %" for x, g in zip(xs, gemm)) or "—"
    print(f"{model} step ({gflop:.3g} GFLOP of products) as a fraction of sgemm: swift-gan {frac('swift-gan')}; "
          f"TF {frac('tensorflow')}; PyTorch {frac('torch')}")
for fw in ("swift-gan", "tensorflow", "torch"):
    rss = vals(fw, "dcgan", "peak_rss_mib")
    if rss: print(f"dcgan peak RSS {fw}: {', '.join(f'{v:.0f}' for v in rss)} MiB")
EOF
