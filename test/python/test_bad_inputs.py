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
from zero_test_util import ENV, Runner, parse_args, snapshot  # noqa: E402

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
# Training-mode Dropout: a ratio of 1 drops everything, and its mask output is
# recomputed, never stored, so nothing may read it.
def dropout_model(ratio, read_mask):
    mask = [oh.make_node("Cast", ["m"], ["mf"], name="cast_mask", to=TP.FLOAT),
            oh.make_node("Mul", ["d", "mf"], ["dm"], name="use_mask")] if read_mask else []
    return model([MM, oh.make_node("Constant", [], ["r"], value=nh.from_array(np.array(ratio, np.float32), "r")),
                  oh.make_node("Constant", [], ["t"], value=nh.from_array(np.array(True), "t")),
                  oh.make_node("Dropout", ["h", "r", "t"], ["d", "m"], name="my_dropout"), *mask,
                  MEAN("dm" if read_mask else "d")], [LOSS], [W], [X])


save("dropout_all.onnx", dropout_model(1.0, False))
save("dropout_mask_read.onnx", dropout_model(0.5, True))


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
bad("Dropout in training mode with ratio 1", "dropout_all.onnx", ["my_dropout", "Dropout", "ratio", "[0, 1)"])
bad("Dropout in training mode whose mask is read", "dropout_mask_read.onnx", ["my_dropout", "Dropout", "mask output"])
# Checked before ONNX shape inference sees the model (which crashes on some of
# these): operators, graph structure, attributes.
X4 = oh.make_tensor_value_info("x", TP.FLOAT, [1, 1, 4, 4])
K = nh.from_array(np.ones((1,), np.float32), "k")
SCALE = lambda x: oh.make_node("Mul", [x, "k"], ["h"], name="scale")  # noqa: E731
# A Scan without attributes segfaults ONNX 1.12's shape inference.
save("scan_no_body.onnx", model([MM, oh.make_node("Scan", ["h"], ["s"], name="my_scan"), MEAN("s")], [LOSS], [W], [X]))
save("loop.onnx", model([MM, oh.make_node("Loop", ["", "", "h"], ["l"], name="my_loop"), MEAN("l")], [LOSS], [W], [X]))
save("if.onnx", model([MM, oh.make_node("Constant", [], ["c"], value=nh.from_array(np.array(True), "c")),
                       oh.make_node("If", ["c"], ["i"], name="my_if"), MEAN("h")], [LOSS], [W], [X]))
# LSTM and GRU (x [seq 3, batch 2, 4], hidden 2) with what zero does not unroll.
_RX = oh.make_tensor_value_info("x", TP.FLOAT, [3, 2, 4])
_rnn_weights = lambda gates: [nh.from_array(np.ones((1, 2 * gates, 4), np.float32), "lw"),  # noqa: E731
                              nh.from_array(np.ones((1, 2 * gates, 2), np.float32), "lr")]


def recurrent(name, op, gates, inputs=("x", "lw", "lr"), inits=(), **attrs):
    save(name, model([oh.make_node(op, list(inputs), ["y"], name="my_" + op.lower(), hidden_size=2, **attrs), MEAN("y")],
                     [LOSS], _rnn_weights(gates) + list(inits), [_RX]))


recurrent("lstm_clip.onnx", "LSTM", 4, clip=3.0)
recurrent("lstm_relu.onnx", "LSTM", 4, activations=["Relu", "Tanh", "Tanh"])
recurrent("lstm_activation_alpha.onnx", "LSTM", 4, activations=["HardSigmoid", "Tanh", "Tanh"], activation_alpha=[0.2])
recurrent("lstm_input_forget.onnx", "LSTM", 4, input_forget=1)
recurrent("lstm_activations_count.onnx", "LSTM", 4, activations=["Sigmoid", "Tanh"])
recurrent("gru_short_sequences.onnx", "GRU", 3, inputs=("x", "lw", "lr", "", "lens"),
          inits=[nh.from_array(np.array([3, 2], np.int32), "lens")])
recurrent("gru_layout_opset13.onnx", "GRU", 3, layout=1)
_m = onnx.load(M("gru_layout_opset13.onnx"))
_m.opset_import[0].version = 13
save("gru_layout_opset13.onnx", _m)
# Resize's scales fed as data: they must be known at compile time.
save("resize.onnx", model([SCALE("x"), oh.make_node("Resize", ["h", "", "sc"], ["r"], name="my_resize"), MEAN("r")], [LOSS],
                          [K], [X4, oh.make_tensor_value_info("sc", TP.FLOAT, [4])]))
# Off the loss path: NonZero is what PyTorch writes for `x[mask] = values`
# (a data-dependent shape).
save("nonzero.onnx", model([MM, oh.make_node("NonZero", ["h"], ["nz"], name="my_nonzero"), MEAN("h")], [LOSS], [W], [X]))
save("other_domain.onnx", oh.make_model(oh.make_graph([MM, oh.make_node("Gelu", ["h"], ["g"], name="my_gelu", domain="com.example"),
                                                       MEAN("g")], "g", [X], [LOSS], [W]),
                                        opset_imports=[oh.make_opsetid("", 17), oh.make_opsetid("com.example", 1)]))
save("layernorm_opset16.onnx", model([MM, oh.make_node("LayerNormalization", ["h", "ls"], ["n"], name="my_ln"), MEAN("n")], [LOSS],
                                     [W, nh.from_array(np.ones((3,), np.float32), "ls")], [X], opset=16))
save("undefined_input.onnx", model([MM, oh.make_node("Relu", ["nope"], ["r"], name="my_relu"), MEAN("r")], [LOSS], [W], [X]))
save("out_of_order.onnx", model([oh.make_node("Relu", ["h"], ["r"], name="my_relu"), MM, MEAN("r")], [LOSS], [W], [X]))
save("duplicate_output.onnx", model([MM, oh.make_node("Relu", ["x"], ["h"], name="my_relu"), MEAN("h")], [LOSS], [W], [X]))
save("output_not_computed.onnx", model([MM], [LOSS], [W], [X]))
save("matmul_one_input.onnx", model([oh.make_node("MatMul", ["x"], ["h"], name="mm"), MEAN("h")], [LOSS], [W], [X]))
save("gemm_empty_input.onnx", model([oh.make_node("Gemm", ["x", ""], ["h"], name="my_gemm"), MEAN("h")], [LOSS], [W], [X]))
# Attributes: of the wrong type, unknown, or with a value zero does not implement.
save("gemm_beta_string.onnx", model([oh.make_node("Gemm", ["x", "W"], ["h"], name="my_gemm", beta="1.0"), MEAN("h")], [LOSS], [W], [X]))
save("maxpool_ceil_string.onnx", model([SCALE("x"), oh.make_node("MaxPool", ["h"], ["p"], name="my_pool", kernel_shape=[2, 2], ceil_mode="1"),
                                        MEAN("p")], [LOSS], [K], [X4]))
save("flatten_axis_string.onnx", model([MM, oh.make_node("Flatten", ["h"], ["f"], name="my_flatten", axis="1"), MEAN("f")], [LOSS], [W], [X]))
save("reducemean_keepdims_string.onnx", model([MM, oh.make_node("ReduceMean", ["h"], ["loss"], name="my_mean", keepdims="0")], [LOSS], [W], [X]))
save("reducemean_keepdims_float.onnx", model([MM, oh.make_node("ReduceMean", ["h"], ["loss"], name="my_mean", keepdims=1.0)], [LOSS], [W], [X]))
save("transpose_perm_int.onnx", model([MM, oh.make_node("Transpose", ["h"], ["t"], name="my_transpose", perm=1), MEAN("t")], [LOSS], [W], [X]))
save("gemm_alpha_int.onnx", model([oh.make_node("Gemm", ["x", "W"], ["h"], name="my_gemm", alpha=2), MEAN("h")], [LOSS], [W], [X]))
# An operator zero imports, at an opset none of its rows covers (Slice takes
# its bounds as attributes before opset 10).
save("slice_opset9.onnx", model([MM, oh.make_node("Slice", ["h"], ["s"], name="my_slice", starts=[0], ends=[1]), MEAN("s")],
                                [LOSS], [W], [X], opset=9))
save("relu_foo.onnx", model([MM, oh.make_node("Relu", ["h"], ["r"], name="my_relu", foo=1), MEAN("r")], [LOSS], [W], [X]))
save("layernorm_stash0.onnx", model([MM, oh.make_node("LayerNormalization", ["h", "ls"], ["n"], name="my_ln", stash_type=0), MEAN("n")],
                                    [LOSS], [W, nh.from_array(np.ones((3,), np.float32), "ls")], [X]))
save("softmax_axis_twice.onnx", model([MM, oh.make_node("Softmax", ["h"], ["s"], name="my_softmax"), MEAN("s")], [LOSS], [W], [X]))
_m = onnx.load(M("softmax_axis_twice.onnx"))
_m.graph.node[1].attribute.extend([oh.make_attribute("axis", 1), oh.make_attribute("axis", -1)])
save("softmax_axis_twice.onnx", _m)
save("reducesum_axes_attribute_opset17.onnx", model([MM, oh.make_node("ReduceSum", ["h"], ["loss"], name="my_sum", keepdims=0, axes=[0, 1])],
                                                    [LOSS], [W], [X]))
save("cast_without_to.onnx", model([MM, oh.make_node("Cast", ["h"], ["c"], name="my_cast"), MEAN("c")], [LOSS], [W], [X]))
# Shape inference fails on the Split and leaves 'a' untyped, which ONNX 1.12's
# Shape-15 then dereferences.
save("split_then_shape.onnx", model([MM, oh.make_node("Split", ["h", "sizes"], ["a", "b"], name="my_split", axis=1),
                                     oh.make_node("Shape", ["a"], ["s"], name="my_shape"),
                                     oh.make_node("Reshape", ["h", "s"], ["r"], name="my_reshape"), MEAN("r")],
                                    [LOSS], [W, nh.from_array(np.array([1, 1], np.int64), "sizes")], [X]))
# ONNX shape inference divides by strides (SIGFPE at 0) and reads constants'
# data without checking there is any.
save("pool_stride0.onnx", model([SCALE("x"), oh.make_node("AveragePool", ["h"], ["p"], name="my_pool", kernel_shape=[2, 2], strides=[0, 1]),
                                 MEAN("p")], [LOSS], [K], [X4]))
_empty = onnx.TensorProto(name="lim", data_type=TP.INT64)  # a scalar without its value
save("range_no_data.onnx", model([MM, oh.make_node("Constant", [], ["lim"], name="my_limit", value=_empty),
                                  oh.make_node("Range", ["zero", "lim", "one"], ["r"], name="my_range"),
                                  oh.make_node("Reshape", ["h", "r"], ["hr"], name="rs"), MEAN("hr")], [LOSS],
                                 [W, nh.from_array(np.array(0, np.int64), "zero"), nh.from_array(np.array(1, np.int64), "one")], [X]))
# Operators zero implements through their ONNX function bodies: their own
# attributes are checked against their schema, and a body with an operator
# zero lacks is reported on the node that holds it.
save("hardswish_alpha.onnx", model([MM, oh.make_node("HardSwish", ["h"], ["s"], name="my_hardswish", alpha=0.5), MEAN("s")],
                                   [LOSS], [W], [X]))
save("celu_alpha_int.onnx", model([MM, oh.make_node("Celu", ["h"], ["s"], name="my_celu", alpha=2), MEAN("s")], [LOSS], [W], [X]))
save("hann_window.onnx", model([MM, oh.make_node("HannWindow", ["size"], ["win"], name="my_window"),
                                oh.make_node("Mul", ["h", "win"], ["s"], name="my_mul"), MEAN("s")], [LOSS],
                               [W, nh.from_array(np.array(3, np.int64), "size")], [X]))
# Clip's bounds must be constants; FLOAT Mod must have fmod = 1.
save("clip_computed_min.onnx", model([MM, oh.make_node("ReduceMean", ["h"], ["lo"], name="lo_mean", keepdims=0),
                                      oh.make_node("Clip", ["h", "lo"], ["c"], name="my_clip"), MEAN("c")], [LOSS], [W], [X]))
save("clip_parameter_max.onnx", model([MM, oh.make_node("Clip", ["h", "", "W"], ["c"], name="my_clip"), MEAN("c")],
                                      [LOSS], [W], [X]))
save("mod_float_fmod0.onnx", model([MM, oh.make_node("Mod", ["h", "h"], ["m"], name="my_mod"), MEAN("m")], [LOSS], [W], [X]))
# CumSum's axis, Tile's repeats and Trilu's k must be constants; Tile's
# repeats positive; ArgMax reads FLOAT; ReduceMax (like ReduceSum) reduces FLOAT.
_i64 = lambda name, v: nh.from_array(np.array(v, np.int64), name)  # noqa: E731
_imean = oh.make_node("ReduceMean", ["h"], ["hm"], name="hm_mean", keepdims=0)
_icast = oh.make_node("Cast", ["hm"], ["hi"], name="hm_cast", to=TP.INT64)
save("cumsum_computed_axis.onnx", model([MM, _imean, _icast, oh.make_node("CumSum", ["h", "hi"], ["c"], name="my_cumsum"),
                                         MEAN("c")], [LOSS], [W], [X]))
save("tile_computed_repeats.onnx", model([MM, oh.make_node("Shape", ["h"], ["hs"], name="hs"), _imean, _icast,
                                          oh.make_node("Mul", ["hs", "hi"], ["reps"], name="reps_mul"),
                                          oh.make_node("Tile", ["h", "reps"], ["t"], name="my_tile"), MEAN("t")],
                                         [LOSS], [W], [X]))
save("tile_zero_repeats.onnx", model([MM, oh.make_node("Tile", ["h", "reps"], ["t"], name="my_tile"),
                                      oh.make_node("ReduceSum", ["t"], ["loss"], name="rs", keepdims=0)],
                                     [LOSS], [W, _i64("reps", [1, 0])], [X]))
save("trilu_computed_k.onnx", model([MM, _imean, _icast, oh.make_node("Trilu", ["h", "hi"], ["t"], name="my_trilu"),
                                     MEAN("t")], [LOSS], [W], [X]))
save("argmax_int.onnx", model([MM, oh.make_node("Cast", ["h"], ["hi"], name="h_cast", to=TP.INT64),
                               oh.make_node("ArgMax", ["hi"], ["am"], name="my_argmax", axis=1),
                               oh.make_node("Cast", ["am"], ["amf"], name="am_cast", to=TP.FLOAT),
                               oh.make_node("Mul", ["h", "amf"], ["p"], name="p"), MEAN("p")], [LOSS], [W], [X]))
save("reducemax_int.onnx", model([MM, oh.make_node("Cast", ["h"], ["hi"], name="h_cast", to=TP.INT64),
                                  oh.make_node("ReduceMax", ["hi"], ["m"], name="my_max", keepdims=0),
                                  oh.make_node("Cast", ["m"], ["mf"], name="m_cast", to=TP.FLOAT),
                                  oh.make_node("Mul", ["h", "mf"], ["p"], name="p"), MEAN("p")], [LOSS], [W], [X]))
# Indexing: constant indices out of range are import errors; unsupported
# reductions, batch_dims and gradients, and a K zero cannot size, name
# themselves. (h is [2, 3].)
save("gather_elements_oob.onnx", model([MM, oh.make_node("GatherElements", ["h", "gi"], ["g"], name="my_gather", axis=1),
                                        MEAN("g")], [LOSS], [W, _i64("gi", [[0], [3]])], [X]))
save("scatter_elements_oob.onnx", model([MM, oh.make_node("ScatterElements", ["h", "si", "h"], ["s"], name="my_scatter",
                                                          axis=0), MEAN("s")], [LOSS],
                                        [W, _i64("si", [[0, 1, -3], [1, 1, 1]])], [X]))
_upd = nh.from_array(np.ones((1, 3), np.float32), "upd")
save("scatter_nd_oob.onnx", model([MM, oh.make_node("Constant", [], ["upd"], value=_upd),
                                   oh.make_node("ScatterND", ["h", "ti", "upd"], ["s"], name="my_scatter_nd"), MEAN("s")],
                                  [LOSS], [W, _i64("ti", [[2]])], [X]))
save("scatter_elements_max.onnx", model([MM, oh.make_node("ScatterElements", ["h", "si", "h"], ["s"], name="my_scatter",
                                                          reduction="max"), MEAN("s")], [LOSS],
                                        [W, _i64("si", [[0, 1, 1], [1, 0, 0]])], [X]))
save("scatter_nd_mul_updates.onnx", model([MM, oh.make_node("Slice", ["h", "z", "one"], ["u"], name="u_slice"),
                                           oh.make_node("ScatterND", ["h", "ti", "u"], ["s"], name="my_scatter_nd",
                                                        reduction="mul"), MEAN("s")], [LOSS],
                                          [W, _i64("ti", [[1]]), _i64("z", [0]), _i64("one", [1])], [X]))
save("gather_nd_batch_dims.onnx", model([MM, oh.make_node("GatherND", ["h", "ti"], ["g"], name="my_gather_nd", batch_dims=1),
                                         MEAN("g")], [LOSS], [W, _i64("ti", [[1], [0]])], [X]))
save("topk_computed_k.onnx", model([MM, _imean, _icast, oh.make_node("Unsqueeze", ["hi", "z"], ["k"], name="k_unsq"),
                                    oh.make_node("TopK", ["h", "k"], ["v", "i"], name="my_topk"), MEAN("v")], [LOSS],
                                   [W, _i64("z", [0])], [X]))
save("topk_int.onnx", model([MM, oh.make_node("Cast", ["h"], ["hi"], name="h_cast", to=TP.INT64),
                             oh.make_node("TopK", ["hi", "k"], ["v", "i"], name="my_topk"),
                             oh.make_node("Cast", ["v"], ["vf"], name="v_cast", to=TP.FLOAT), MEAN("vf")], [LOSS],
                            [W, _i64("k", [2])], [X]))
_short = onnx.TensorProto(name="W", data_type=TP.FLOAT, dims=[4, 3], float_data=[1.0] * 5)
save("short_initializer.onnx", model([MM, MEAN("h")], [LOSS], [_short], [X]))
bad("Scan without a body (crashed ONNX shape inference)", "scan_no_body.onnx",
    ["scan_no_body.onnx", "node 'my_scan'", "unsupported operator 'Scan'", "opset 17"])
bad("unsupported op Loop", "loop.onnx", ["my_loop", "unsupported operator 'Loop'"])
bad("attribute a function op's schema lacks", "hardswish_alpha.onnx",
    ["node 'my_hardswish' (HardSwish, opset 17)", "attribute 'alpha' of HardSwish is not defined in ONNX opset 17"])
bad("function op attribute of the wrong type", "celu_alpha_int.onnx",
    ["node 'my_celu' (Celu, opset 17)", "attribute 'alpha' of Celu must be"])
bad("function body with an unsupported op", "hann_window.onnx",
    ["node 'my_window' (HannWindow, opset 17)", "unsupported operator 'Cos' in its ONNX function body"])
bad("Clip with a computed min", "clip_computed_min.onnx",
    ["node 'my_clip' (Clip, opset 17)", "'min' must be a compile-time constant"])
bad("Clip with a parameter as max", "clip_parameter_max.onnx",
    ["node 'my_clip' (Clip, opset 17)", "'max' must be a compile-time constant"])
bad("FLOAT Mod with fmod 0", "mod_float_fmod0.onnx", ["node 'my_mod' (Mod, opset 17)", "fmod must be 1 for FLOAT"])
bad("CumSum with a computed axis", "cumsum_computed_axis.onnx",
    ["node 'my_cumsum' (CumSum, opset 17)", "'hi' must be a compile-time constant"])
# Shape inference cannot size a Tile of computed repeats, nor zero build a
# zero-size tensor: both are caught at the output's type.
bad("Tile with computed repeats", "tile_computed_repeats.onnx", ["output 't' of node 'my_tile'", "dynamic dimension"])
bad("Tile with a zero repeat", "tile_zero_repeats.onnx", ["output 't' of node 'my_tile'", "zero-size dimension"])
bad("Trilu with a computed k", "trilu_computed_k.onnx",
    ["node 'my_trilu' (Trilu, opset 17)", "'hi' must be a compile-time constant"])
bad("ArgMax of INT64", "argmax_int.onnx", ["node 'my_argmax' (ArgMax, opset 17)", "only FLOAT inputs are supported"])
bad("ReduceMax of INT64", "reducemax_int.onnx", ["node 'my_max' (ReduceMax, opset 17)", "only FLOAT tensors are supported"])
bad("GatherElements with a constant index out of range", "gather_elements_oob.onnx",
    ["node 'my_gather' (GatherElements, opset 17)", "index 3 at indices[1, 0] is out of range [-3, 3)"])
bad("ScatterElements with a negative constant index out of range", "scatter_elements_oob.onnx",
    ["node 'my_scatter' (ScatterElements, opset 17)", "index -3 at indices[0, 2] is out of range [-2, 2)"])
bad("ScatterND with a constant index out of range", "scatter_nd_oob.onnx",
    ["node 'my_scatter_nd' (ScatterND, opset 17)", "index 2 at indices[0, 0] (dimension 0 of data) is out of range [-2, 2)"])
bad("ScatterElements reduction max", "scatter_elements_max.onnx",
    ["node 'my_scatter' (ScatterElements, opset 17)", "reduction 'max' is not supported"])
bad("ScatterND reduction mul with trainable updates", "scatter_nd_mul_updates.onnx",
    ["ScatterND", "gradient of the updates", "'mul' is not supported"])
bad("GatherND batch_dims 1", "gather_nd_batch_dims.onnx",
    ["node 'my_gather_nd' (GatherND, opset 17)", "batch_dims 1 is not supported"])
bad("TopK with a computed K", "topk_computed_k.onnx",
    ["node 'my_topk' (TopK, opset 17)", "K must be a compile-time constant"])
bad("TopK of INT64", "topk_int.onnx", ["node 'my_topk' (TopK, opset 17)", "only FLOAT inputs are supported"])
bad("unsupported op If off the loss path", "if.onnx", ["my_if", "unsupported operator 'If'"])
bad("LSTM with clip", "lstm_clip.onnx", ["node 'my_lstm' (LSTM, opset 17)", "attribute 'clip' of LSTM is not supported"])
bad("LSTM with a Relu gate activation", "lstm_relu.onnx",
    ["node 'my_lstm' (LSTM, opset 17)", "'activations': Relu is not supported", "Sigmoid, Tanh, Tanh"])
bad("LSTM with activation_alpha", "lstm_activation_alpha.onnx",
    ["node 'my_lstm' (LSTM, opset 17)", "attribute 'activation_alpha' of LSTM is not supported"])
bad("LSTM with input_forget 1", "lstm_input_forget.onnx",
    ["node 'my_lstm' (LSTM, opset 17)", "'input_forget' 1", "not supported"])
bad("LSTM with two activations for one direction", "lstm_activations_count.onnx",
    ["node 'my_lstm' (LSTM, opset 17)", "'activations' has 2 entries; expected 3"])
bad("GRU with a sequence shorter than the input", "gru_short_sequences.onnx",
    ["node 'my_gru' (GRU, opset 17)", "sequence_lens must be 3", "shorter sequences are not supported"])
bad("GRU layout before opset 14", "gru_layout_opset13.onnx",
    ["node 'my_gru' (GRU, opset 13)", "attribute 'layout' of GRU is not defined in ONNX opset 13"])
bad("Resize with scales not known at compile time", "resize.onnx",
    ["node 'my_resize' (Resize, opset 17)", "'scales' must be a compile-time constant"])
bad("unsupported op NonZero (off the loss path)", "nonzero.onnx", ["my_nonzero", "unsupported operator 'NonZero'"])
bad("op of another domain", "other_domain.onnx", ["my_gelu", "unsupported operator 'Gelu'", "com.example"])
bad("op the opset does not define (LayerNormalization, opset 16)", "layernorm_opset16.onnx",
    ["my_ln", "unsupported operator 'LayerNormalization'", "opset 16"])
bad("node input that is never defined", "undefined_input.onnx", ["my_relu", "'nope'"])
bad("nodes out of topological order", "out_of_order.onnx", ["my_relu", "'h'", "earlier node"])
bad("output name defined twice", "duplicate_output.onnx", ["my_relu", "'h'", "already defined"])
bad("graph output no node computes", "output_not_computed.onnx", ["'loss'", "not computed"])
bad("MatMul with one input", "matmul_one_input.onnx", ["'mm'", "MatMul", "expects 2 inputs, got 1"])
bad("required input left empty", "gemm_empty_input.onnx", ["my_gemm", "input 1", "empty"])
# External data (onnx.save_model(..., save_as_external_data=True)): files
# inside the model's directory, big enough for what the tensor needs.
XW = oh.make_tensor_value_info("x", TP.FLOAT, [2, 128])


def external_weights(name, location="w.data", file_bytes=128 * 128 * 4, **keys):
    """A model whose 128x128 weight W (mapped, as it is 64 KiB) has its data at `location`."""
    w = nh.from_array(np.ones((128, 128), np.float32), "W")
    w.ClearField("raw_data")
    w.data_location = TP.EXTERNAL
    for k, v in {"location": location, **keys}.items():
        w.external_data.add(key=k, value=str(v))
    if file_bytes is not None:
        with open(M(location if location.startswith("w") else "w.data"), "wb") as f:
            f.write(np.ones(file_bytes // 4, np.float32).tobytes())
    return save(name, model([MM, MEAN("h")], [LOSS], [w], [XW]))


external_weights("external_missing.onnx", location="missing.data", file_bytes=None)
external_weights("external_escapes.onnx", location="../w.data")
external_weights("external_absolute.onnx", location="/etc/passwd")
external_weights("external_short.onnx", location="w_short.data", file_bytes=1000)
external_weights("external_length.onnx", length=12)
external_weights("external_offset.onnx", offset="x1")
external_weights("external_past_end.onnx", offset=128 * 128 * 4)
_c = nh.from_array(np.ones((2, 3), np.float32), "c")
_c.ClearField("raw_data")
_c.data_location = TP.EXTERNAL
_c.external_data.add(key="location", value="missing_constant.data")
save("external_constant_missing.onnx",
     model([MM, oh.make_node("Constant", [], ["c"], name="my_constant", value=_c),
            oh.make_node("Add", ["h", "c"], ["a"]), MEAN("a")], [LOSS], [W], [X]))
bad("external data file missing", "external_missing.onnx",
    ["initializer 'W'", "missing.data", "cannot open external data file"])
bad("external data outside the model's directory", "external_escapes.onnx",
    ["initializer 'W'", "'../w.data'", "inside the model's directory"])
bad("external data at an absolute path", "external_absolute.onnx",
    ["initializer 'W'", "'/etc/passwd'", "relative path"])
bad("external data file too short", "external_short.onnx",
    ["initializer 'W'", "bytes 0 to 65536", "'w_short.data'", "has 1000"])
bad("external data length that is not the tensor's", "external_length.onnx",
    ["initializer 'W'", "length 12", "needs 65536"])
bad("external data offset that is not a number", "external_offset.onnx", ["initializer 'W'", "offset 'x1'"])
bad("external data past the end of its file", "external_past_end.onnx",
    ["initializer 'W'", "bytes 65536 to 131072", "has 65536"])
bad("external data of a Constant node missing", "external_constant_missing.onnx",
    ["my_constant", "attribute 'value'", "missing_constant.data"])
bad("Gemm beta given as a string", "gemm_beta_string.onnx", ["my_gemm", "'beta'", "FLOAT", "STRING"])
bad("MaxPool ceil_mode given as a string", "maxpool_ceil_string.onnx", ["my_pool", "'ceil_mode'", "INT", "STRING"])
bad("Flatten axis given as a string", "flatten_axis_string.onnx", ["my_flatten", "'axis'", "INT", "STRING"])
bad("ReduceMean keepdims given as a string", "reducemean_keepdims_string.onnx", ["my_mean", "'keepdims'", "INT", "STRING"])
bad("ReduceMean keepdims given as a FLOAT (an INT)", "reducemean_keepdims_float.onnx",
    ["reducemean_keepdims_float.onnx", "my_mean", "ReduceMean", "attribute 'keepdims'", "must be INT, got FLOAT"])
bad("Transpose perm given as an INT (INTS)", "transpose_perm_int.onnx",
    ["transpose_perm_int.onnx", "my_transpose", "Transpose", "attribute 'perm'", "must be INTS, got INT"])
bad("Gemm alpha given as an INT (a FLOAT)", "gemm_alpha_int.onnx",
    ["gemm_alpha_int.onnx", "my_gemm", "Gemm", "attribute 'alpha'", "must be FLOAT, got INT"])
bad("Slice at opset 9, outside every row's opsets", "slice_opset9.onnx",
    ["slice_opset9.onnx", "node 'my_slice'", "Slice", "domain 'ai.onnx'", "opset 9", "opsets 10 to 17"])
bad("unknown attribute foo on Relu", "relu_foo.onnx", ["my_relu", "attribute 'foo' of Relu is not supported"])
bad("LayerNormalization stash_type 0", "layernorm_stash0.onnx", ["my_ln", "stash_type", "0"])
bad("attribute given twice", "softmax_axis_twice.onnx", ["my_softmax", "'axis'", "twice"])
bad("attribute the opset does not define (ReduceSum axes, opset 17)", "reducesum_axes_attribute_opset17.onnx",
    ["my_sum", "'axes'", "opset 17"])
bad("required attribute missing (Cast without to)", "cast_without_to.onnx", ["my_cast", "'to'", "required"])
bad("Split sizes that do not add up, then Shape (crashed ONNX shape inference)", "split_then_shape.onnx", ["my_reshape", "'r'"])
bad("pooling stride 0 (crashed ONNX shape inference)", "pool_stride0.onnx", ["my_pool", "'strides'", "at least 1"])
bad("Constant scalar without data", "range_no_data.onnx", ["my_limit", "'lim'", "0 values"])
bad("initializer with less data than its dimensions", "short_initializer.onnx", ["'W'", "5 values", "12"])
# Options.
bad("--world-size=0", "dynamic.onnx".replace("dynamic", "good"), ["world-size", "0"], ["--world-size=0"])
bad("--world-size=abc", "good.onnx", ["world-size", "abc"], ["--world-size=abc"])
bad("--zero-stage=5", "good.onnx", ["zero-stage", "5"], ["--zero-stage=5"])
bad("--optimizer=rmsprop", "good.onnx", ["rmsprop"], ["--optimizer=rmsprop"])
bad("--emit=foo", "good.onnx", ["emit", "foo"], ["--emit=foo"])
bad("--freeze with an invalid regex", "good.onnx", ["freeze", "(w"], ["--freeze=(w"], existing=b"kept plan")
bad("--freeze matching no initializer", "good.onnx", ["freeze", "nope", "matches no parameter"], ["--freeze=nope"])
bad("--trainable matching no initializer", "good.onnx", ["trainable", "w.*x", "matches no parameter"],
    ["--trainable=w.*x"])
bad("--freeze with --forward-only", "good.onnx", ["forward-only", "--freeze"], ["--freeze=w", "--forward-only"])
for flag, value in (("--lr", "nan"), ("--lr", "inf"), ("--weight-decay", "nan"), ("--beta2", "nan"), ("--eps", "inf"),
                    ("--world-size", "99999999999"), ("--world-size", "1e10"), ("--zero-stage", "1.5"),
                    ("--prefetch", "-5"), ("--bucket-mb", "nan"), ("--bucket-mb", "1e300"), ("--overlap-window", "99999"),
                    ("--zero-persist-below", "-1"), ("--zero-persist-below", "abc")):
    bad(f"{flag}={value}", "good.onnx", [flag.lstrip("-"), value.replace("1e300", "1e+300")], [f"{flag}={value}"])
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

# --- zero-run --------------------------------------------------------------------
# Same rules: exit 1, one line naming the problem (under --nproc too: no mpirun
# banner, no copy per rank), and every file that was there before is byte-identical.
RUN = os.path.join(tmp, "zero-run")
os.makedirs(RUN)
Rp = lambda n: os.path.join(RUN, n)  # noqa: E731


def compile_plan(name, *extra):
    subprocess.run([args.zero_opt, GOOD, "-o", Rp(name), *OPT, *extra], check=True, env=ENV, timeout=60)
    return Rp(name)


def write_npy_header(path, shape, descr="<f4", payload=4096):
    """A .npy file whose header claims `shape` but which holds `payload` bytes."""
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, ", ".join(map(str, shape)) + ("," if len(shape) == 1 else ""))
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + bytes(payload))


if args.zero_run:
    P1 = compile_plan("p1.zplan")
    P2 = compile_plan("p2.zplan", "--world-size=2")
    # A squared loss: at lr 1e30 the weights blow up to inf within a few steps.
    SQUARE = save("square.onnx", model([MM, oh.make_node("Mul", ["h", "h"], ["s"], name="sq"), MEAN("s")], [LOSS], [W], [X]))
    subprocess.run([args.zero_opt, SQUARE, "-o", Rp("pinf.zplan"), "--optimizer=sgd", "--lr=1e30"], check=True, env=ENV,
                   timeout=60)
    PINF = Rp("pinf.zplan")
    os.makedirs(Rp("data"))
    np.save(Rp("data/x.npy"), np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32))
    os.makedirs(Rp("nan"))
    xn = np.ones((16, 4), np.float32)
    xn[0, 2] = np.nan
    np.save(Rp("nan/x.npy"), xn)
    os.makedirs(Rp("params"))
    np.save(Rp("params/W.npy"), np.ones((4, 3), np.float32))
    # Earlier results of a good run, which no failed run may touch.
    os.makedirs(Rp("saved"))
    np.save(Rp("saved/W.npy"), np.full((4, 3), 7, np.float32))
    with open(Rp("old.onnx"), "wb") as f:
        f.write(b"an earlier export\n")
    with open(Rp("old.jsonl"), "w") as f:
        f.write('{"step": 0, "loss": 1.0}\n')
    for name, shape in (("header_2e40", (2 ** 40, 4)), ("header_2e7", (20000000, 4)), ("header_overflow", (2 ** 62, 4)),
                        ("header_negative", (-1, 4)), ("header_huge_dim", (10 ** 30, 4))):
        os.makedirs(Rp(name))
        write_npy_header(Rp(name + "/x.npy"), shape)
    # Indices and K that only a step reads: GatherElements of a graph input
    # (a training plan), and TopK of a K input that the declared outputs fix
    # (forward only, as ONNX's node tests run).
    IDX = oh.make_tensor_value_info("idx", TP.INT64, [2, 1])
    save("gather_elements_input.onnx", model([MM, oh.make_node("GatherElements", ["h", "idx"], ["g"], name="my_gather",
                                                               axis=1), MEAN("g")], [LOSS], [W], [X, IDX]))
    subprocess.run([args.zero_opt, M("gather_elements_input.onnx"), "-o", Rp("gather.zplan"), *OPT], check=True, env=ENV,
                   timeout=60)
    os.makedirs(Rp("bad_idx"))
    np.save(Rp("bad_idx/x.npy"), np.ones((16, 4), np.float32))
    np.save(Rp("bad_idx/idx.npy"), np.array([[1]] * 5 + [[-4]] + [[2]] * 10, np.int64))
    KIN = oh.make_tensor_value_info("k", TP.INT64, [1])
    save("topk_k_input.onnx", model([oh.make_node("TopK", ["x", "k"], ["v", "i"], name="my_topk")],
                                    [oh.make_tensor_value_info("v", TP.FLOAT, [2, 3]),
                                     oh.make_tensor_value_info("i", TP.INT64, [2, 3])], [], [X, KIN]))
    subprocess.run([args.zero_opt, M("topk_k_input.onnx"), "--forward-only", "-o", Rp("topk.zplan")], check=True,
                   env=ENV, timeout=60)
    os.makedirs(Rp("bad_k"))
    np.save(Rp("bad_k/x.npy"), np.ones((2, 4), np.float32))
    np.save(Rp("bad_k/k.npy"), np.array([2], np.int64))


def expect_run_failure(run_args, keywords, limit_file_size=None):
    before = snapshot(RUN)

    def limits():
        if limit_file_size is not None:
            import resource
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_size, limit_file_size))

    p = subprocess.run([args.zero_run, *map(str, run_args)], capture_output=True, text=True, env=ENV, timeout=120,
                       preexec_fn=limits)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert p.returncode == 1, f"exit code {p.returncode} (expected 1); stderr: {p.stderr.strip()[-800:]!r}"
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {p.stderr.strip()[-800:]!r}"
    for k in keywords:
        assert k.lower() in lines[0].lower(), f"stderr line does not name {k!r}: {lines[0]!r}"
    after = snapshot(RUN)
    assert sorted(after) == sorted(before), f"files added or removed: {sorted(set(after) ^ set(before))}"
    for path, data in before.items():
        assert after[path] == data, f"{os.path.relpath(path, RUN)} was modified"
    return lines[0]


def bad_run(name, run_args, keywords, **kw):
    if args.zero_run:
        R.case("zero-run: " + name, expect_run_failure, run_args, keywords, **kw)


DATA = ["--data", Rp("data")]
SAVE = ["--save-params", Rp("saved"), "--export-onnx", Rp("old.onnx")]
# .npy headers are checked against the file's size before anything is allocated.
bad_run(".npy header claims (2^40, 4)", [P1, "--data", Rp("header_2e40")], ["x.npy", "truncated"])
bad_run(".npy header claims (20000000, 4)", [P1, "--data", Rp("header_2e7")], ["x.npy", "truncated", "320000000"])
bad_run(".npy header whose size overflows", [P1, "--data", Rp("header_overflow")], ["x.npy", "too large"])
bad_run(".npy header with a dimension past int64", [P1, "--data", Rp("header_huge_dim")], ["x.npy", "too large"])
bad_run(".npy header with a negative dimension", [P1, "--data", Rp("header_negative")], ["x.npy", "shape"])
bad_run(".npy header (2^40, 4) under --nproc 2", [P2, "--nproc", 2, "--data", Rp("header_2e40")], ["x.npy", "truncated"])
# An output that is an input, or two outputs that are one file.
bad_run("--log onto the plan", [P1, "--synthetic", "--log", P1], ["--log", "p1.zplan", "the plan"])
bad_run("--log onto the plan, another spelling", [P1, "--synthetic", "--log", os.path.join(RUN, "..", "zero-run", "p1.zplan")],
        ["--log", "the plan"])
bad_run("--log onto a data file", [P1, *DATA, "--log", Rp("data/x.npy")], ["--log", "x.npy", "input 'x'"])
bad_run("--export-onnx onto the plan", [P1, *DATA, "--export-onnx", P1], ["--export-onnx", "the plan"])
# Data a step reads: an index out of range, a K that differs from TopK's outputs.
bad_run("GatherElements index out of range in the data", [Rp("gather.zplan"), "--data", Rp("bad_idx"), "--steps", 4],
        ["GatherElements (my_gather)", "index -4 out of range [-3, 3)"])
bad_run("TopK K input that differs from the declared outputs", [Rp("topk.zplan"), "--data", Rp("bad_k"), "--steps", 1],
        ["TopK (my_topk)", "k = 2 differs from the outputs' 3 along the axis"])
bad_run("--save-params into --init-params", [P1, *DATA, "--init-params", Rp("params"), "--save-params", Rp("params")],
        ["--save-params", "W.npy", "--init-params"])
bad_run("--log and --export-onnx are one file", [P1, *DATA, "--log", Rp("old.onnx"), "--export-onnx", Rp("old.onnx")],
        ["--export-onnx", "--log"])
bad_run("--log onto the plan under --nproc 2", [P2, "--nproc", 2, "--synthetic", "--log", P2], ["--log", "the plan"])
# Writes that fail part-way leave the earlier file as it was.
bad_run("--export-onnx past the file-size limit", [P1, *DATA, "--export-onnx", Rp("old.onnx")], ["old.onnx", "write failed"],
        limit_file_size=64)
bad_run("--save-params past the file-size limit", [P1, *DATA, "--save-params", Rp("saved")], ["W.npy", "write failed"],
        limit_file_size=64)
bad_run("--log past the file-size limit", [P1, *DATA, "--steps", 10, "--log", Rp("old.jsonl")], ["old.jsonl", "write failed"],
        limit_file_size=64)
bad_run("--log /dev/full", [P1, *DATA, "--log", "/dev/full"], ["/dev/full", "no space"])
# Numbers are integers where integers are meant, in range.
for flag, value in (("--steps", "1e300"), ("--steps", "-1"), ("--steps", "2.5"), ("--nproc", "1e10"), ("--nproc", "0"),
                    ("--timeout-s", "1e10"), ("--timeout-s", "nan"), ("--timeout-s", "0"), ("--seed", "-1"),
                    ("--seed", "1.5"), ("--seed", "99999999999999999999")):
    bad_run(f"{flag} {value}", [P1, "--synthetic", flag, value], [flag, value])
bad_run("--shuffle without data", [P1, "--synthetic", "--shuffle"], ["--shuffle", "--data"])
# Checkpoint flags (test_checkpoints.py has the refused checkpoints).
bad_run("--checkpoint-every without --checkpoint-dir", [P1, *DATA, "--checkpoint-every", 2],
        ["--checkpoint-every", "--checkpoint-dir"])
bad_run("--keep-checkpoints without --checkpoint-dir", [P1, *DATA, "--keep-checkpoints", 2],
        ["--keep-checkpoints", "--checkpoint-dir"])
for flag in ("--checkpoint-every", "--keep-checkpoints"):
    bad_run(f"{flag} 0", [P1, *DATA, "--checkpoint-dir", Rp("ckpt"), flag, 0], [flag, "'0'"])
bad_run("--resume-override without --resume", [P1, *DATA, "--resume-override"], ["--resume-override", "--resume"])
bad_run("--resume of a missing directory", [P1, *DATA, "--resume", Rp("no-such-ckpt")], ["no-such-ckpt", "no checkpoint"])
bad_run("--resume of a directory without a checkpoint", [P1, *DATA, "--resume", Rp("data")],
        ["not a complete checkpoint"])
# Evaluation (zero-opt --eval, zero-run --eval-data DIR --eval-every K).
if args.zero_run:
    PE = compile_plan("pe.zplan", "--eval")
    for name, x in (("eval_shape", np.zeros((32, 5), np.float32)), ("eval_dtype", np.zeros((32, 4), np.float64)),
                    ("eval_few", np.zeros((1, 4), np.float32)), ("eval_three", np.zeros((3, 4), np.float32))):
        os.makedirs(Rp(name))
        np.save(Rp(name + "/x.npy"), x)
bad_run("--eval-every without --eval-data", [P1, *DATA, "--eval-every", 5], ["--eval-every", "--eval-data"])
for value in ("0", "-3", "2.5"):
    bad_run(f"--eval-every {value}", [PE, *DATA, "--eval-data", Rp("data"), "--eval-every", value],
            ["--eval-every", value])
bad_run("--eval-data for a plan without evaluation", [P1, *DATA, "--eval-data", Rp("data")],
        ["p1.zplan", "--eval-data", "zero-opt --eval"])
bad_run("--eval-data without its file", [PE, *DATA, "--eval-data", Rp("params")], ["missing data file", "x.npy"])
bad_run("--eval-data of another shape", [PE, *DATA, "--eval-data", Rp("eval_shape")], ["eval_shape/x.npy", "shape"])
bad_run("--eval-data of another dtype", [PE, *DATA, "--eval-data", Rp("eval_dtype")], ["eval_dtype/x.npy", "dtype"])
bad_run("--eval-data under one batch", [PE, *DATA, "--eval-data", Rp("eval_few")], ["eval_few/x.npy", "1 rows"])
bad_run("--eval-data under one batch of N = 2", [compile_plan("pe2.zplan", "--eval", "--world-size=2")
                                                 if args.zero_run else None, "--nproc", 2, *DATA,
                                                 "--eval-data", Rp("eval_three")], ["x.npy", "3 rows", "of 4"])
# A non-finite loss stops the run and saves nothing over earlier results.
bad_run("NaN in x.npy", [P1, "--data", Rp("nan"), *SAVE, "--steps", 3], ["loss is NaN at step 0"])
bad_run("lr=1e30 diverges", [PINF, *DATA, *SAVE, "--steps", 20], ["loss is", "at step"])
bad_run("NaN in x.npy under --nproc 2", [P2, "--nproc", 2, "--data", Rp("nan"), *SAVE, "--steps", 3], ["loss is NaN at step 0"])
# Errors the launcher finds before starting ranks.
bad_run("world size 2 plan, --nproc 3", [P2, "--nproc", 3, "--synthetic"], ["world size 2", "3 rank"])
bad_run("missing data file under --nproc 2", [P2, "--nproc", 2, "--data", Rp("params")], ["missing data file", "x.npy"])


def zero_opt_past_size_limit():
    """A plan (and report) write that fails part-way keeps the earlier files."""
    d = os.path.join(tmp, "fsize")
    os.makedirs(d)
    out, rep = os.path.join(d, "o.zplan"), os.path.join(d, "r.json")
    for p_ in (out, rep):
        with open(p_, "wb") as f:
            f.write(b"earlier\n")

    def limits():
        import resource
        resource.setrlimit(resource.RLIMIT_FSIZE, (256, 256))

    p = subprocess.run([args.zero_opt, GOOD, "-o", out, "--report", rep, *OPT], capture_output=True, text=True, env=ENV,
                       timeout=60, preexec_fn=limits)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert p.returncode == 1 and len(lines) == 1 and "write failed" in lines[0], (p.returncode, p.stderr[-600:])
    assert sorted(os.listdir(d)) == ["o.zplan", "r.json"], sorted(os.listdir(d))
    for p_ in (out, rep):
        assert open(p_, "rb").read() == b"earlier\n", f"{p_} was modified"


R.case("zero-opt: plan write past the file-size limit keeps the earlier plan", zero_opt_past_size_limit)


def mutations(data, count, seed):
    """`count` copies of data, each with 1-4 random bytes replaced."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        b = bytearray(data)
        for _ in range(int(rng.integers(1, 5))):
            b[int(rng.integers(len(b)))] = int(rng.integers(256))
        yield bytes(b)


def survives_mutations(cmd_for, original, suffix, count, seed):
    """Every mutated file gives exit 0, or exit 1 with one line: never a signal or a hang."""
    d = os.path.join(tmp, f"mutated{seed}")
    os.makedirs(d)
    path = os.path.join(d, "m" + suffix)
    outcomes = {0: 0, 1: 0}
    for i, data in enumerate(mutations(original, count, seed)):
        with open(path, "wb") as f:
            f.write(data)
        p = subprocess.run(cmd_for(path, d), capture_output=True, text=True, errors="backslashreplace", env=ENV, timeout=60)
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        assert p.returncode in (0, 1), f"mutation {i}: exit code {p.returncode}; stderr {p.stderr[-600:]!r}"
        assert p.returncode == 0 or len(lines) == 1, f"mutation {i}: {len(lines)} lines: {p.stderr[-600:]!r}"
        outcomes[p.returncode] += 1
    assert outcomes[1] > 0, outcomes


R.case("zero-opt: 60 byte-mutated ONNX models", survives_mutations,
       lambda m, d: [args.zero_opt, m, "-o", os.path.join(d, "o.zplan"), *OPT], good_bytes, ".onnx", 60, 1)
if args.zero_run:
    R.case("zero-run: 150 byte-mutated plans", survives_mutations,
           lambda m, d: [args.zero_run, m, "--synthetic", "--steps", "2", "--timeout-s", "30"],
           open(P1, "rb").read(), ".zplan", 150, 2)

R.finish()
