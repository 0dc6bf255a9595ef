#!/usr/bin/env bash
# Configures and builds zero into build/ (tools in build/bin/).
# ZERO_BUILD_DIR, ZERO_CMAKE_ARGS override the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${ZERO_BUILD_DIR:-build}
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
if [ ! -f "$build/build.ninja" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" ${ZERO_CMAKE_ARGS:-}
fi
cmake --build "$build" -j "$(nproc)"
