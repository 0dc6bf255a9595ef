#!/usr/bin/env bash
# The main job on the bundled example: set up and build if needed, compile the
# digits MLP for ZeRO stage 3 on 2 ranks with a warmup + cosine schedule and
# gradient clipping, and train it on shuffled epochs, printing the loss, the
# learning rate and the gradient norm.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh >/dev/null
bin=${ZERO_BUILD_DIR:-build}/bin
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$bin/zero-opt" examples/mlp_digits.onnx -o "$out/mlp.zplan" --zero-stage=3 --world-size=2 \
  --optimizer=adamw --lr=1e-2 --lr-schedule=cosine --warmup-steps=10 --total-steps=100 \
  --clip-grad-norm=1.0 --report="$out/report.json"
"$bin/zero-run" "$out/mlp.zplan" --nproc 2 --data examples/mlp_digits_data --steps 100 \
  --shuffle --seed 0 --log "$out/train.jsonl" --export-onnx "$out/trained.onnx"
/usr/bin/python3 - "$out/train.jsonl" <<'PY'
import json, sys
steps = [json.loads(line) for line in open(sys.argv[1])]
for s in steps[::10] + [steps[-1]]:
    print(f"step {s['step']:4d}  loss {s['loss']:.4f}  lr {s['lr']:.2e}  grad_norm {s['grad_norm']:.3f}  "
          f"{s['ms']:.2f} ms")
print(f"loss {steps[0]['loss']:.4f} -> {steps[-1]['loss']:.4f} over {len(steps)} steps")
PY
