#!/usr/bin/env bash
# The project's test command: set up, then build and run the whole suite in release mode
# (numeric kernels in a debug build are 10–50× slower; the suite needs about 2 minutes this way).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
swift build -c release --build-tests
swift test -c release --skip-build
