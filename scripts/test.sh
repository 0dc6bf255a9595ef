#!/usr/bin/env bash
# Sets up a fresh machine, builds, and runs every test (ctest drives lit,
# GoogleTest and the PyTorch comparisons), then the runtime tests under
# ASan+UBSan and the fuzz targets briefly (scripts/sanitize-check.sh;
# ZERO_SANITIZE_CHECK=0 skips that step).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
ctest --test-dir "${ZERO_BUILD_DIR:-build}" --output-on-failure -j "$(nproc)" "$@"
[ "${ZERO_SANITIZE_CHECK:-1}" = 0 ] || scripts/sanitize-check.sh
