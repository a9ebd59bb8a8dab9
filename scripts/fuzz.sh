#!/usr/bin/env bash
# Builds the libFuzzer targets for the file parsers and runs one of them.
#
#   scripts/fuzz.sh build                 build all three into .build-fuzz/
#   scripts/fuzz.sh idx|safetensors|npy [SECONDS] [extra libFuzzer flags]
#
# Each target is compiled without optimization (so bounds and overflow checks stay on) and
# with AddressSanitizer; it starts from the committed seed corpus in Fuzz/corpus/<target> and
# keeps what it finds in .build-fuzz/corpus/<target>. A crash leaves crash-* files in
# .build-fuzz/ and a non-zero exit.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.build-fuzz
san=(-sanitize=fuzzer,address -Onone -g -parse-as-library -swift-version 5)

build() {
    mkdir -p "$out/obj/CSupport"
    # SwiftPM makes CSupport's module map itself; outside it, write one.
    printf 'module CSupport {\n    header "%s"\n    export *\n}\n' "$PWD/Sources/CSupport/include/CSupport.h" \
        > "$out/obj/CSupport/module.modulemap"
    "$(dirname "$(readlink -f "$(command -v swiftc)")")/clang" -c -O1 -g -fsanitize=fuzzer-no-link,address \
        -I Sources/CSupport/include Sources/CSupport/CSupport.c -o "$out/obj/CSupport.o"
    # Engine and the IDX reader as static libraries with their modules, instrumented.
    swiftc "${san[@]}" -emit-library -static -emit-module -module-name Engine \
        -I Sources/CBLAS -I $out/obj/CSupport -emit-module-path "$out/obj/Engine.swiftmodule" \
        $(find Sources/Engine -name '*.swift' | sort) -o "$out/obj/libEngine.a"
    swiftc "${san[@]}" -emit-library -static -emit-module -module-name Datasets \
        -I "$out/obj" -I Sources/CBLAS -I $out/obj/CSupport -I Sources/CZlib \
        -emit-module-path "$out/obj/Datasets.swiftmodule" Sources/Datasets/IDXFile.swift -o "$out/obj/libDatasets.a"
    for t in idx:IDXFuzz safetensors:SafeTensorsFuzz npy:NumpyFuzz; do
        swiftc "${san[@]}" -I "$out/obj" -I Sources/CBLAS -I $out/obj/CSupport -I Sources/CZlib \
            "Fuzz/${t#*:}.swift" "$out/obj/libDatasets.a" "$out/obj/libEngine.a" "$out/obj/CSupport.o" \
            -lopenblas -lz -o "$out/fuzz-${t%%:*}"
    done
    echo "built $out/fuzz-idx $out/fuzz-safetensors $out/fuzz-npy"
}

case "${1:-}" in
    build) build ;;
    idx|safetensors|npy)
        t=$1; secs=${2:-600}; shift; shift || true
        [ -x "$out/fuzz-$t" ] || build
        mkdir -p "$out/corpus/$t"
        cd "$out"
        # -rss_limit_mb and -timeout turn memory blow-ups and hangs into reported failures.
        export SWIFT_BACKTRACE=enable=no   # let libFuzzer report the crash, not the Swift backtracer
        exec "./fuzz-$t" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
            -print_final_stats=1 "$@" "corpus/$t" "../Fuzz/corpus/$t"
        ;;
    *) echo "usage: scripts/fuzz.sh build | idx|safetensors|npy [SECONDS] [libFuzzer flags]" >&2; exit 2 ;;
esac
