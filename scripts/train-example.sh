#!/usr/bin/env bash
# The main job on the bundled example: set up and build if needed, compile the
# digits MLP for ZeRO stage 3 on 2 ranks with a warmup + cosine schedule,
# gradient clipping and an evaluation program, and train it on shuffled
# epochs of 1500 rows, printing the loss, the learning rate, the gradient
# norm and the loss on the 297 held-out rows.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh >/dev/null
bin=${ZERO_BUILD_DIR:-build}/bin
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
/usr/bin/python3 - examples/mlp_digits_data "$out" <<'PY'
import os, sys
import numpy as np
src, out = sys.argv[1:]
for split, rows in (("train", slice(0, 1500)), ("val", slice(1500, None))):
    os.makedirs(os.path.join(out, split))
    for name in ("x", "y"):
        np.save(os.path.join(out, split, name + ".npy"), np.load(os.path.join(src, name + ".npy"))[rows])
PY
"$bin/zero-opt" examples/mlp_digits.onnx -o "$out/mlp.zplan" --zero-stage=3 --world-size=2 \
  --optimizer=adamw --lr=1e-2 --lr-schedule=cosine --warmup-steps=10 --total-steps=100 \
  --clip-grad-norm=1.0 --eval --report="$out/report.json"
"$bin/zero-run" "$out/mlp.zplan" --nproc 2 --data "$out/train" --steps 100 --shuffle --seed 0 \
  --eval-data "$out/val" --eval-every 25 --log "$out/train.jsonl" --export-onnx "$out/trained.onnx"
/usr/bin/python3 - "$out/train.jsonl" <<'PY'
import json, sys
lines = [json.loads(line) for line in open(sys.argv[1])]
steps = [l for l in lines if "loss" in l]
evals = {l["step"]: l for l in lines if "eval_loss" in l}
for s in steps[::10] + [steps[-1]]:
    print(f"step {s['step']:4d}  loss {s['loss']:.4f}  lr {s['lr']:.2e}  grad_norm {s['grad_norm']:.3f}  "
          f"{s['ms']:.2f} ms")
for step, e in sorted(evals.items()):
    print(f"after step {step:4d}  validation loss {e['eval_loss']:.4f} ({e['eval_rows']} rows)")
print(f"loss {steps[0]['loss']:.4f} -> {steps[-1]['loss']:.4f} over {len(steps)} steps, "
      f"validation loss {evals[max(evals)]['eval_loss']:.4f}")
PY
