#!/usr/bin/env bash
# The suite under a sanitizer, in a build of its own (.build-<kind>, about 5 minutes on 2 cores):
#   address    AddressSanitizer and LeakSanitizer, with the buffer cache off, so that a tensor
#              buffer used after it was freed reaches ASan instead of the cache's free lists
#   thread     ThreadSanitizer (the worker pool's hand-off, the buffer cache's lock, the
#              threads of the kernels)
#   undefined  UndefinedBehaviorSanitizer on the C targets (the kernels' arithmetic, shifts and
#              alignment)
# The package's code and the `gan` binaries that the CLI tests start are built so (for undefined,
# its C targets only); Debian's OpenBLAS, oneDNN and libgomp are not instrumented.
# Not part of the test command: docs/reliability.md says what it found and how long it takes.
# Usage: scripts/sanitize.sh [address|thread|undefined] [XCTest filter, e.g. EngineTests.HandoffTests]
#        scripts/sanitize.sh [address|thread|undefined] --commands
# --commands runs the instrumented `gan` instead of the suite, at full size on MNIST and
# Fashion-MNIST: every model with every loss for 3 steps, then sample, interpolate, eval, plot,
# distances, the three benches and a classifier epoch (7 minutes under ASan).
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-address}
[ $# -gt 0 ] && shift
case "$kind" in
    address | thread | undefined) ;;
    *) echo "scripts/sanitize.sh: the first argument is the sanitizer: address, thread or undefined (got '$kind')" >&2
       exit 64 ;;
esac
./scripts/setup.sh
scratch=".build-$kind"
sanitize=(--sanitize="$kind")
# swiftc has no UBSan for Swift code on Linux (its own checks cover that): the C targets get it
# from clang, and clang links its runtime.
[ "$kind" = undefined ] && sanitize=(-Xcc -fsanitize=undefined -Xcc -fno-sanitize-recover=undefined
                                     -Xswiftc -Xclang-linker -Xswiftc -fsanitize=undefined)
swift build -c release --build-tests --scratch-path "$scratch" "${sanitize[@]}"

# The suppression files, and --commands' run directories.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat > "$work/leak" <<'END'
# Foundation on Linux keeps the 4 KiB buffer of a file read that finds the file empty (the CLI
# tests read a command's empty stdout or stderr this way; so does any String(contentsOfFile:)).
leak:readBytesFromFile
# A hand-off pool lives as long as its process: the engine's one, and the ones HandoffTests make.
leak:gan_handoff_create
# XCTest's own: its run bookkeeping (XCTestSuiteRun, made in XCTMain), 144 bytes whatever runs,
# and the weak reference of an async test's wait; Foundation's Process.run keeps one too.
leak:XCTMainMisc
leak:XCTest0A8SuiteRun
leak:awaitUsingExpectation
leak:Foundation7ProcessC3run
END
cat > "$work/thread" <<'END'
# libgomp is not instrumented, so TSan sees neither the fork nor the join of an OpenMP region
# (the convolution kernels' and oneDNN's): every access on one of its threads would race with
# the caller's before and after. The engine's own pool (Handoff.c) has no libgomp frame.
race:libgomp.so.1
END
export GAN_BUFFER_CACHE_MIB=-1
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$work/leak:print_suppressions=0"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$work/thread:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
if [ "${1:-}" != --commands ]; then
    "$scratch/release/swift-ganPackageTests.xctest" "$@"
    exit
fi

gan="$scratch/release/gan"
failed=0
run() {  # a command line for the log, then its status; its output is kept only when it fails
    local start=$SECONDS
    if "$gan" "$@" > "$work/out" 2>&1; then
        echo "ok    $((SECONDS - start)) s  gan $*"
    else
        echo "FAIL  status $?  gan $*"; tail -20 "$work/out"; failed=1
    fi
}
for model in mlp mlp-deep dcgan dcgan-bn cgan cdcgan; do
    for loss in minimax nonsaturating lsgan wgan-clip wgan-gp hinge; do
        run train --model "$model" --loss "$loss" --steps 3 --eval-every 0 --run-dir "$work/$model-$loss"
    done
done
# The default model's run from the loop (dcgan trains with nonsaturating by default).
run_dir="$work/dcgan-nonsaturating"
checkpoint="$(ls "$run_dir"/checkpoints/*.safetensors | tail -1)"
run sample --checkpoint "$checkpoint" --out "$work/grid.png"
run interpolate --checkpoint "$checkpoint" --out "$work/strip.png"
run eval --checkpoint "$checkpoint" --count 1000
run eval --checkpoint "$checkpoint" --count 1000 --dataset fashion-mnist
run plot --run-dir "$run_dir"
run distances
run bench train --model dcgan-bn --loss wgan-gp --iters 2 --warmup 1 --profile
run bench train --model mlp --iters 8 --warmup 1 --alternate op-profiler --block 2
run bench generate --model dcgan --count 500
run bench engine --model wgan-gp-critic --breakdown --iters 2
run classifier train --dataset fashion-mnist --epochs 1 --out "$work/classifier.safetensors"
exit $failed
