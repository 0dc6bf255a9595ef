#!/usr/bin/python3
"""Plans without weights (zero-opt --omit-weights) and zero-run --init-params.

A plan compiled with --omit-weights carries no trainable initial values; run
with --init-params DIR holding the ONNX initializers it must train exactly
like the plan that carries them, at any stage (shards are cut from the full
values). Without --init-params, or with a file missing or mis-shaped, zero-run
must refuse with one line and exit 1.

usage: test_omit_weights.py --zero-opt PATH --zero-run PATH [-k FILTER] [-v]
"""
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zero_test_util import Runner, onnx_initializers, parse_args, read_log, run_tool  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
MODEL = os.path.join(ROOT, "examples", "mlp_digits.onnx")
DATA = os.path.join(ROOT, "examples", "mlp_digits_data")

args = parse_args()
R = Runner(args)
tmp = tempfile.mkdtemp(prefix="zero-omit-weights-")
params = os.path.join(tmp, "params")
os.makedirs(params)
for name, value in onnx_initializers(MODEL).items():
    np.save(os.path.join(params, name + ".npy"), value)


def compile_plan(path, stage, world, *extra):
    run_tool([args.zero_opt, MODEL, "-o", path, f"--zero-stage={stage}", f"--world-size={world}",
              "--optimizer=adamw", "--lr=3e-3", *extra])


def same_training(stage, world):
    d = tempfile.mkdtemp(dir=tmp)
    full, bare = os.path.join(d, "full.zplan"), os.path.join(d, "bare.zplan")
    compile_plan(full, stage, world)
    compile_plan(bare, stage, world, "--omit-weights")
    assert os.path.getsize(bare) < os.path.getsize(full), "the plan without weights is not smaller"
    logs = []
    for plan, extra in [(full, []), (bare, ["--init-params", params])]:
        log = os.path.join(d, os.path.basename(plan) + ".jsonl")
        run_tool([args.zero_run, plan, "--nproc", world, "--data", DATA, "--steps", 10, "--log", log, *extra])
        logs.append([row["loss"] for row in read_log(log)])
    assert logs[0] == logs[1], f"losses differ: {logs[0]} vs {logs[1]}"


def refused(extra, words):
    d = tempfile.mkdtemp(dir=tmp)
    bare = os.path.join(d, "bare.zplan")
    compile_plan(bare, 3, 1, "--omit-weights")
    p = run_tool([args.zero_run, bare, "--data", DATA, "--steps", 1, *extra], check=False)
    assert p.returncode == 1, f"exit code {p.returncode}, expected 1; stderr: {p.stderr!r}"
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got {lines}"
    for w in words:
        assert w in lines[0], f"{w!r} not in {lines[0]!r}"


for stage, world in [(0, 1), (1, 2), (3, 2), (3, 3)]:
    R.case(f"--init-params trains like the plan's weights: stage {stage}, N={world}", same_training, stage, world)
R.case("no --init-params", refused, [], ["no initial weights", "--init-params"])
missing = os.path.join(tmp, "missing")
os.makedirs(missing)
R.case("a parameter file missing", refused, ["--init-params", missing], ["fc1", "missing"])
wrong = os.path.join(tmp, "wrong")
os.makedirs(wrong)
for name, value in onnx_initializers(MODEL).items():
    np.save(os.path.join(wrong, name + ".npy"), np.ascontiguousarray(value.T) if value.ndim == 2 else value)
R.case("a mis-shaped parameter file", refused, ["--init-params", wrong], ["expected float32", "fc"])
R.finish()
