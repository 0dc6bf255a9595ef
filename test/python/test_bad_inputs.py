#!/usr/bin/python3
"""zero-opt on bad inputs: every failure exits with code 1 (not a signal), prints
exactly one line to stderr that names the problem, leaves no partial output
file, and leaves an existing output file intact.

usage: test_bad_inputs.py --zero-opt PATH [--zero-run PATH] [-k FILTER]
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto as TP
from onnx import helper as oh
from onnx import numpy_helper as nh

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zero_test_util import ENV, Runner, parse_args  # noqa: E402

args = parse_args()
R = Runner(args)
tmp = tempfile.mkdtemp(prefix="zero-bad-input-test-")
M = lambda n: os.path.join(tmp, "models", n)  # noqa: E731
os.makedirs(M(""))
OPT = ["--optimizer=sgd", "--lr=0.1"]


# --- models ----------------------------------------------------------------------
def model(nodes, outputs, inits, inputs, opset=17):
    g = oh.make_graph(nodes, "g", inputs, outputs, initializer=inits)
    return oh.make_model(g, opset_imports=[oh.make_opsetid("", opset)])


W = nh.from_array(np.ones((4, 3), np.float32), "W")
X = oh.make_tensor_value_info("x", TP.FLOAT, [2, 4])
LOSS = oh.make_tensor_value_info("loss", TP.FLOAT, [])
MM = oh.make_node("MatMul", ["x", "W"], ["h"], name="mm")
MEAN = lambda src: oh.make_node("ReduceMean", [src], ["loss"], name="rm", keepdims=0)  # noqa: E731


def save(name, m):
    onnx.save(m, M(name))
    return M(name)


GOOD = save("good.onnx", model([MM, MEAN("h")], [LOSS], [W], [X]))
good_bytes = open(GOOD, "rb").read()
open(M("truncated.onnx"), "wb").write(good_bytes[: len(good_bytes) // 2])
open(M("not_onnx.onnx"), "w").write("this is a text file, not an ONNX protobuf\n" * 8)
open(M("empty.onnx"), "wb").close()
save("hardmax.onnx", model([MM, oh.make_node("Hardmax", ["h"], ["hm"], name="my_hardmax"), MEAN("hm")], [LOSS], [W], [X]))
save("hardmax_unnamed.onnx", model([MM, oh.make_node("Hardmax", ["h"], ["hm"]), MEAN("hm")], [LOSS], [W], [X]))
save("no_outputs.onnx", model([MM, MEAN("h")], [], [W], [X]))
save("logits.onnx", model([MM], [oh.make_tensor_value_info("h", TP.FLOAT, [2, 3])], [W], [X]))
save("int_loss.onnx", model([MM, oh.make_node("ReduceMean", ["h"], ["l"], name="rm", keepdims=0),
                             oh.make_node("Cast", ["l"], ["loss"], name="cast", to=TP.INT64)],
                            [oh.make_tensor_value_info("loss", TP.INT64, [])], [W], [X]))
save("dynamic.onnx", model([MM, MEAN("h")], [LOSS], [W], [oh.make_tensor_value_info("x", TP.FLOAT, ["batch", 4])]))
save("unknown_dim.onnx", model([MM, MEAN("h")], [LOSS], [W], [oh.make_tensor_value_info("x", TP.FLOAT, [None, 4])]))
save("opset6.onnx", model([MM, MEAN("h")], [LOSS], [W], [X], opset=6))
save("opset18.onnx", model([MM, MEAN("h")], [LOSS], [W], [X], opset=18))
save("no_params.onnx", model([oh.make_node("ReduceMean", ["x"], ["loss"], name="rm", keepdims=0)], [LOSS], [W], [X]))
# Dropout is the identity unless training_mode is set; a training export sets it.
save("dropout_half.onnx", model([MM, oh.make_node("Constant", [], ["r"], value=nh.from_array(np.array(0.5, np.float32), "r")),
                                 oh.make_node("Constant", [], ["t"], value=nh.from_array(np.array(True), "t")),
                                 oh.make_node("Dropout", ["h", "r", "t"], ["d"], name="my_dropout"), MEAN("d")],
                                [LOSS], [W], [X]))


# --- the check -------------------------------------------------------------------------
_n = [0]


def expect_failure(cmd_args, keywords, out_name="out.zplan", existing=None, report=None):
    """Run zero-opt with cmd_args (OUT / REPORT are replaced by paths in a fresh dir)."""
    _n[0] += 1
    d = os.path.join(tmp, f"run{_n[0]:02d}")
    os.makedirs(d)
    out = os.path.join(d, out_name)
    rep = os.path.join(d, "report.json")
    if existing is not None:
        for p in (out, rep):
            with open(p, "wb") as f:
                f.write(existing)
    before = sorted(os.listdir(d))
    cmd = [args.zero_opt] + [out if a == "OUT" else rep if a == "REPORT" else a for a in cmd_args]
    p = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=60)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert p.returncode == 1, f"exit code {p.returncode} (expected 1{', killed by a signal' if p.returncode < 0 or p.returncode > 128 else ''}); stderr: {p.stderr.strip()[-800:]!r}"
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {p.stderr.strip()[-800:]!r}"
    for k in keywords:
        assert k.lower() in lines[0].lower(), f"stderr line does not name {k!r}: {lines[0]!r}"
    assert sorted(os.listdir(d)) == before, f"files left behind: {sorted(set(os.listdir(d)) - set(before))}"
    if existing is not None:
        for p_ in (out, rep):
            assert open(p_, "rb").read() == existing, f"existing {os.path.basename(p_)} was modified"
    return lines[0]


def bad(name, model_name, keywords, extra=(), **kw):
    path = M(model_name) if model_name else os.path.join(tmp, "no-such-dir", "missing.onnx")
    R.case(name, expect_failure, [path, "-o", "OUT", *OPT, *extra], keywords, **kw)


def sanity():
    d = os.path.join(tmp, "good")
    os.makedirs(d)
    p = subprocess.run([args.zero_opt, GOOD, "-o", os.path.join(d, "g.zplan"), *OPT, "--report", os.path.join(d, "r.json")],
                       capture_output=True, text=True, env=ENV, timeout=60)
    assert p.returncode == 0 and os.path.getsize(os.path.join(d, "g.zplan")) > 0, p.stderr
    assert p.stderr.strip() == "", f"a good compile printed to stderr: {p.stderr!r}"


R.case("control: the good model compiles", sanity)

# Files that are not (complete) ONNX models: the message names the file.
bad("truncated .onnx", "truncated.onnx", ["truncated.onnx", "onnx"])
bad("non-ONNX file", "not_onnx.onnx", ["not_onnx.onnx", "onnx"])
bad("empty file", "empty.onnx", ["empty.onnx"])
bad("nonexistent file", None, ["missing.onnx"])
# Graph problems.
bad("unsupported op Hardmax on the loss path", "hardmax.onnx", ["hardmax.onnx", "my_hardmax", "Hardmax", "opset", "17"])
bad("unsupported op in an unnamed node", "hardmax_unnamed.onnx", ["Hardmax", "opset"])
bad("model with no outputs", "no_outputs.onnx", ["no_outputs.onnx", "output"])
bad("non-scalar loss (first output is logits)", "logits.onnx", ["'h'", "scalar"])
bad("integer loss", "int_loss.onnx", ["'loss'", "float"])
bad("dynamic dimension (dim_param 'batch')", "dynamic.onnx", ["'x'", "batch"])
bad("unknown dimension (no dim_value)", "unknown_dim.onnx", ["'x'", "dynamic"])
bad("opset 6 (below 7)", "opset6.onnx", ["opset", "6"])
bad("opset 18 (above 17)", "opset18.onnx", ["opset", "18"])
bad("loss independent of every parameter", "no_params.onnx", ["parameter"])
bad("Dropout in training mode with ratio 0.5", "dropout_half.onnx", ["my_dropout", "Dropout", "ratio"])
# Options.
bad("--world-size=0", "dynamic.onnx".replace("dynamic", "good"), ["world-size", "0"], ["--world-size=0"])
bad("--world-size=abc", "good.onnx", ["world-size", "abc"], ["--world-size=abc"])
bad("--zero-stage=5", "good.onnx", ["zero-stage", "5"], ["--zero-stage=5"])
bad("--optimizer=rmsprop", "good.onnx", ["rmsprop"], ["--optimizer=rmsprop"])
bad("--emit=foo", "good.onnx", ["emit", "foo"], ["--emit=foo"])
# zero-opt is mlir-opt only for .mlir input; these must fail on one clear line.
R.case("no input file", expect_failure, ["-o", "OUT", *OPT], ["input"])
open(M("model.bin"), "wb").write(good_bytes[:40])
R.case("non-ONNX file without .onnx extension", expect_failure, [M("model.bin"), "-o", "OUT", *OPT], ["model.bin"])
# Unwritable outputs.
R.case("unwritable -o path (missing directory)", expect_failure,
       [GOOD, "-o", os.path.join(tmp, "no-such-dir", "o.zplan"), *OPT], ["no-such-dir/o.zplan"])
R.case("-o path is a directory", expect_failure, [GOOD, "-o", tmp, *OPT], [os.path.basename(tmp)])
R.case("unwritable --report path: no plan left behind", expect_failure,
       [GOOD, "-o", "OUT", *OPT, "--report=" + os.path.join(tmp, "no-such-dir", "r.json")], ["no-such-dir/r.json"])
# An existing output (and report) is left intact when compilation fails.
OLD = b"previous plan contents\n"
R.case("existing output intact: truncated model", expect_failure,
       [M("truncated.onnx"), "-o", "OUT", *OPT, "--report=REPORT"], ["truncated.onnx"], existing=OLD)
R.case("existing output intact: unsupported op", expect_failure,
       [M("hardmax.onnx"), "-o", "OUT", *OPT, "--report=REPORT"], ["Hardmax"], existing=OLD)
R.case("existing output intact: non-scalar loss", expect_failure,
       [M("logits.onnx"), "-o", "OUT", *OPT, "--report=REPORT"], ["scalar"], existing=OLD)
R.case("existing output intact: --zero-stage=5", expect_failure,
       [GOOD, "-o", "OUT", *OPT, "--report=REPORT", "--zero-stage=5"], ["zero-stage"], existing=OLD)
R.case("existing output intact: nonexistent input", expect_failure,
       [os.path.join(tmp, "missing.onnx"), "-o", "OUT", *OPT, "--report=REPORT"], ["missing.onnx"], existing=OLD)

R.finish()
