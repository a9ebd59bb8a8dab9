#!/usr/bin/env bash
# Installs what swift-gan needs on a Debian machine: the Swift toolchain is assumed present;
# C libraries come from Debian. Safe to run again: it installs only what is missing.
set -euo pipefail

need=()
pkg-config --exists openblas 2>/dev/null || need+=(libopenblas-dev)
pkg-config --exists zlib 2>/dev/null || need+=(zlib1g-dev)
pkg-config --exists libpng 2>/dev/null || need+=(libpng-dev)
# oneDNN (convolutions); Debian ships no pkg-config file for it, so look for the header.
[ -e /usr/include/oneapi/dnnl/dnnl.h ] || need+=(libdnnl-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)

if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing ${need[*]}"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
    echo "setup: the Swift toolchain (6.x) is not on PATH; install it from swift.org first" >&2
    exit 1
fi
