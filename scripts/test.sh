#!/usr/bin/env bash
# Sets up a fresh machine, builds, and runs every test (ctest drives lit,
# GoogleTest and the PyTorch comparisons).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
ctest --test-dir "${ZERO_BUILD_DIR:-build}" --output-on-failure -j "$(nproc)" "$@"
