#!/usr/bin/env bash
# Installs exactly the Debian 12 packages zero needs to build and test.
# Idempotent: when everything is present it only checks and returns.
set -euo pipefail

packages=(
  # build
  cmake ninja-build ccache g++
  # compiler: MLIR/LLVM 22, lit and FileCheck
  libmlir-22-dev mlir-22-tools llvm-22-dev llvm-22-tools
  # ONNX import and the trained-model export
  libonnx-dev libprotobuf-dev protobuf-compiler
  # plan format
  libflatbuffers-dev flatbuffers-compiler
  # zero-run's checkpoints: JSON manifests, CRC-32 checksums
  nlohmann-json3-dev zlib1g-dev
  # runtime: MPI ranks and BLAS (libblas-dev: the static CBLAS prepare-gpu-check.sh carries)
  libopenmpi-dev openmpi-bin libopenblas-dev libblas-dev
  # tests
  libgtest-dev python3 python3-numpy python3-onnx python3-torch python3-torchvision python3-sklearn
  libonnx-testdata
  # sanitizer build and fuzz targets (scripts/sanitize-check.sh): clang 14
  # with its ASan/UBSan/libFuzzer runtimes
  clang libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
