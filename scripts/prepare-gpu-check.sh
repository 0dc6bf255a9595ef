#!/usr/bin/env bash
# Run HERE (where zero-opt is built) before scripts/gpu-check on a GPU machine
# that has no MLIR: compiles the bundled examples into .carry/plans/ for
# --target=cuda and --target=cpu at ZeRO stages 0-3, world size 1, and
# carries what a bare machine may lack to build the runtime (FlatBuffers
# headers, the generated plan_generated.h for a machine without flatc, a
# CBLAS, GoogleTest's sources).
# .carry/ is git-ignored; pass it to the device machine's `carry`.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${ZERO_BUILD_DIR:-build}
bin=$build/bin
[ -x "$bin/zero-opt" ] || { echo "prepare-gpu-check: build zero-opt first (ninja -C $build zero-opt)" >&2; exit 1; }
out=.carry/plans
rm -rf "$out" && mkdir -p "$out"
# The optimizers test/python/test_train_vs_pytorch.py uses for these examples.
declare -A OPT=(
  [mlp_digits]="--optimizer=adamw --lr=3e-3 --beta1=0.9 --beta2=0.999 --eps=1e-8 --weight-decay=0.01"
  [linear_regression]="--optimizer=sgd --lr=0.05 --momentum=0.9")
for name in mlp_digits linear_regression; do
  for target in cuda cpu; do
    for stage in 0 1 2 3; do
      # shellcheck disable=SC2086
      "$bin/zero-opt" "examples/$name.onnx" -o "$out/$name-$target-s$stage.zplan" --target=$target \
        --zero-stage=$stage --world-size=1 ${OPT[$name]}
    done
  done
done
# The transformer test models (test/python/test_models.py: GPT-style with
# hand-written and nn.MultiheadAttention attention, tied and untied; BERT-style
# post-LN and pre-LN) with their data in .carry/data/NAME/, trained with the
# tests' AdamW. (ResNet-18's 45 MB of weights per plan do not fit the carry.)
models=$(mktemp -d)
trap 'rm -rf "$models"' EXIT
/usr/bin/python3 examples/export_transformers.py "$models" >/dev/null
rm -rf .carry/data && mkdir -p .carry/data
for model in "$models"/*.onnx; do
  name=$(basename "$model" .onnx)
  cp -r "$models/${name}_data" ".carry/data/$name"
  for target in cuda cpu; do
    for stage in 0 1 2 3; do
      "$bin/zero-opt" "$model" -o "$out/$name-$target-s$stage.zplan" --target=$target --zero-stage=$stage \
        --world-size=1 --optimizer=adamw --lr=3e-3 --beta1=0.9 --beta2=0.999 --eps=1e-8 --weight-decay=0.01
    done
  done
done
# GPT-2 small for bench/gpt2_gpu.py: no weights in the plan (the benchmark
# supplies PyTorch's), so it fits what a device machine can be carried.
mkdir -p .carry/bench
/usr/bin/python3 - <<'PY'
import sys, torch
sys.path.insert(0, "examples")
import export_transformers as ex
torch.manual_seed(0)
m = ex.GPT(vocab=50257, d=768, heads=12, layers=12, seq=1024, mha=False, tied=True)
ids = torch.zeros(8, 1024, dtype=torch.long)
torch.onnx.export(m, (ids, ids), ".carry/bench/gpt2_small.onnx", input_names=["idx", "tgt"],
                  opset_version=17, training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False)
PY
"$bin/zero-opt" .carry/bench/gpt2_small.onnx -o .carry/bench/gpt2_small-cuda.zplan --target=cuda \
  --zero-stage=0 --world-size=1 --optimizer=adamw --lr=3e-4 --omit-weights \
  --report=.carry/bench/gpt2_small-cuda.report.json
rm .carry/bench/gpt2_small.onnx
mkdir -p .carry/flatbuffers-include
rm -rf .carry/flatbuffers-include/flatbuffers
cp -r /usr/include/flatbuffers .carry/flatbuffers-include/
# The GPU image has no CBLAS and no GoogleTest: Debian's static reference BLAS
# (CPU side of the comparisons only, so speed does not matter; 1 MB, libc
# only) and GoogleTest's sources, which gpu-check builds there.
rm -rf .carry/blas .carry/googletest
mkdir -p .carry/blas/include
cp /usr/lib/x86_64-linux-gnu/blas/libblas.a .carry/blas/
cp /usr/include/x86_64-linux-gnu/cblas-netlib.h .carry/blas/include/cblas.h
cp /usr/include/x86_64-linux-gnu/cblas_mangling.h .carry/blas/include/
cp -r /usr/src/googletest .carry/googletest
cp "$build/runtime/generated/zero/plan_generated.h" .carry/plan_generated.h
ls "$out" | wc -l | xargs echo "prepare-gpu-check: plans in $out:"
