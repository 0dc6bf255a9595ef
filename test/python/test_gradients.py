#!/usr/bin/python3
"""Gradient rules of zero-opt's differentiable ONNX ops vs PyTorch autograd.

Each case is a tiny ONNX model (opset 17 unless it says) built with onnx.helper: the op's float
inputs are FLOAT initializers (trainable parameters; loss class weights are
constants), and
    loss = ReduceSum(Mul(op_output, R))
with R a random Constant node (so dloss/dop_output = R).  The model is compiled
with --optimizer=sgd --lr=1 --momentum=0 --weight-decay=0, run for one step with
zero-run --save-params, and grad = before - after is compared with torch
autograd of the same expression in float64 (rtol 1e-4, atol 1e-5).  Integer
inputs (loss labels) are graph inputs fed through the --data directory.  A few
cases run again at world size 2, stage 3: sharding must not change gradients.
The recurrent modules (nn.LSTM, nn.GRU, nn.RNN in small models), normalizations
(nn.InstanceNorm2d, nn.GroupNorm) and torch.einsum modules are exported whole by
torch.onnx.export: their logged loss and every parameter's gradient are compared.

usage: test_gradients.py --zero-opt PATH --zero-run PATH [-k FILTER] [-v]
"""
import os
import sys
import tempfile

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto
from onnx import helper as oh
from onnx import numpy_helper as nh

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zero_test_util import Runner, assert_close, parse_args, read_log, run_tool  # noqa: E402

args = parse_args()
R = Runner(args)
tmp = tempfile.mkdtemp(prefix="zero-grad-test-")
rng = np.random.default_rng(1234)
_count = [0]


def randn(*shape, lo=None):
    """Standard normal float32; with lo, |x| >= lo (away from kinks)."""
    x = rng.standard_normal(shape).astype(np.float32)
    if lo is not None:
        x = np.where(np.abs(x) < lo, np.sign(x + 1e-9) * (lo + np.abs(x)), x).astype(np.float32)
    return x


def positive(*shape, lo=0.5, hi=2.0):
    return rng.uniform(lo, hi, shape).astype(np.float32)


def i64(*v):
    return np.array(v, np.int64)


def grad_case(name, params, torch_fn, nodes, consts=None, inputs=None, world_size=1, stage=0, opset=17,
              full_check=True):
    """params: trainable float32 initializers; consts: other initializers (int64 shapes/axes);
    inputs: graph inputs (name -> array, fed via --data); nodes: ONNX nodes computing 'out';
    torch_fn(dict of tensors) -> out, the same expression. full_check: ONNX's checker with its
    shape inference too (which rejects Einsum's broadcast ellipses)."""
    consts, inputs = consts or {}, inputs or {}
    _count[0] += 1
    d = os.path.join(tmp, f"{_count[0]:03d}")
    os.makedirs(d)

    # Torch reference (float64), also giving out's shape for R.
    tp = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    tin = {k: torch.from_numpy(v) if v.dtype != np.float32 else torch.from_numpy(v).double() for k, v in inputs.items()}
    out = torch_fn({**tp, **tin})
    r = randn(*out.shape)
    (out * torch.from_numpy(r).double()).sum().backward()
    ref = {k: t.grad.numpy() if t.grad is not None else np.zeros(t.shape) for k, t in tp.items()}

    graph_nodes = list(nodes) + [
        oh.make_node("Constant", [], ["R"], value=nh.from_array(r, "R")),
        oh.make_node("Mul", ["out", "R"], ["out_r"], name="loss_mul")]
    if r.ndim == 0:
        graph_nodes.append(oh.make_node("Identity", ["out_r"], ["loss"], name="loss_id"))
    else:
        graph_nodes.append(oh.make_node("ReduceSum", ["out_r"], ["loss"], name="loss_sum", keepdims=0))
    inits = [nh.from_array(v, k) for k, v in {**params, **consts}.items()]
    ginputs = [oh.make_tensor_value_info(k, onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[v.dtype], list(v.shape))
               for k, v in inputs.items()]
    g = oh.make_graph(graph_nodes, name.replace(" ", "_"), ginputs,
                      [oh.make_tensor_value_info("loss", TensorProto.FLOAT, [])], initializer=inits)
    model = oh.make_model(g, opset_imports=[oh.make_opsetid("", opset)])
    onnx.checker.check_model(model, full_check=full_check)
    path = os.path.join(d, "model.onnx")
    onnx.save(model, path)

    plan = os.path.join(d, "model.zplan")
    run_tool([args.zero_opt, path, "-o", plan, f"--zero-stage={stage}", f"--world-size={world_size}",
              "--optimizer=sgd", "--lr=1", "--momentum=0", "--weight-decay=0"])
    cmd = [args.zero_run, plan, "--nproc", world_size, "--steps", 1, "--save-params", os.path.join(d, "out")]
    if inputs:
        os.makedirs(os.path.join(d, "data"))
        for k, v in inputs.items():
            np.save(os.path.join(d, "data", k + ".npy"), v)  # D = micro-batch rows: every rank reads them all
        cmd += ["--data", os.path.join(d, "data")]
    run_tool(cmd)
    for k, before in params.items():
        after = np.load(os.path.join(d, "out", k + ".npy"))
        assert after.shape == before.shape, f"{k}: saved shape {after.shape} != {before.shape}"
        assert_close(f"d loss/d {k}", before.astype(np.float64) - after, ref[k], rtol=1e-4, atol=1e-5)


def case(name, *a, **kw):
    R.case(name, grad_case, name, *a, **kw)


def node(op, ins, out="out", **attrs):
    return oh.make_node(op, ins, [out], name=f"{op.lower()}_node", **attrs)


# --- elementwise binary ops with broadcasting ----------------------------------------
BIN = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div}
for op, fn in BIN.items():
    for sa, sb in [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 3, 4), (3, 1)), ((4,), (3, 4)), ((2, 1, 4), (3, 1))]:
        b = positive(*sb) * np.where(rng.random(sb) < 0.5, -1, 1).astype(np.float32) if op == "Div" else randn(*sb)
        case(f"{op} {list(sa)} {list(sb)}", {"A": randn(*sa), "B": b},
             lambda t, fn=fn: fn(t["A"], t["B"]), [node(op, ["A", "B"])])
    # Both inputs the same tensor.
    case(f"{op} X X", {"X": positive(3, 4)}, lambda t, fn=fn: fn(t["X"], t["X"]), [node(op, ["X", "X"])])

# A rank-0 parameter (torch: nn.Parameter(torch.tensor(2.0)) exports a [] initializer).
case("Mul [3,4] [] (scalar parameter)", {"A": randn(3, 4), "S": np.array(1.5, np.float32)},
     lambda t: t["A"] * t["S"], [node("Mul", ["A", "S"])])

case("Pow base and exponent [3,4] [4]", {"A": positive(3, 4), "B": randn(4)},
     lambda t: torch.pow(t["A"], t["B"]), [node("Pow", ["A", "B"])])
case("Pow base and exponent [2,3,4] [3,1]", {"A": positive(2, 3, 4), "B": randn(3, 1)},
     lambda t: torch.pow(t["A"], t["B"]), [node("Pow", ["A", "B"])])
case("Pow constant exponent 2 (negative base)", {"A": randn(3, 4)},
     lambda t: t["A"] ** 2,
     [oh.make_node("Constant", [], ["two"], value=nh.from_array(np.array(2.0, np.float32), "two")),
      node("Pow", ["A", "two"])])
case("Pow constant exponent 3 (negative base)", {"A": randn(3, 4)},
     lambda t: t["A"] ** 3,
     [oh.make_node("Constant", [], ["three"], value=nh.from_array(np.array(3.0, np.float32), "three")),
      node("Pow", ["A", "three"])])

# --- unary ops -----------------------------------------------------------------
UNARY = {"Sqrt": (torch.sqrt, positive), "Neg": (torch.neg, randn), "Relu": (torch.relu, lambda *s: randn(*s, lo=0.05)),
         "Tanh": (torch.tanh, randn), "Sigmoid": (torch.sigmoid, randn), "Erf": (torch.erf, randn),
         "Exp": (torch.exp, randn), "Log": (torch.log, positive), "Identity": (lambda x: x, randn),
         "Reciprocal": (torch.reciprocal, lambda *s: randn(*s, lo=0.2)), "Abs": (torch.abs, lambda *s: randn(*s, lo=0.05)),
         "Softplus": (torch.nn.functional.softplus, lambda *s: 4 * randn(*s)),
         "Softsign": (F.softsign, lambda *s: 3 * randn(*s))}
for op, (fn, gen) in UNARY.items():
    case(f"{op} [3,4]", {"X": gen(3, 4)}, lambda t, fn=fn: fn(t["X"]), [node(op, ["X"])])
    case(f"{op} [2,3,4]", {"X": gen(2, 3, 4)}, lambda t, fn=fn: fn(t["X"]), [node(op, ["X"])])
# Elementwise ops with attributes: ONNX's defaults, then given values.
case("HardSigmoid defaults [3,4]", {"X": 3 * randn(3, 4)},
     lambda t: torch.clamp(0.2 * t["X"] + 0.5, 0, 1), [node("HardSigmoid", ["X"])])
case("HardSigmoid alpha 0.3 beta 0.4", {"X": 3 * randn(3, 4)},
     lambda t: torch.clamp(0.3 * t["X"] + 0.4, 0, 1), [node("HardSigmoid", ["X"], alpha=0.3, beta=0.4)])
case("Elu defaults [3,4]", {"X": randn(3, 4, lo=0.05)}, lambda t: F.elu(t["X"]), [node("Elu", ["X"])])
case("Elu alpha 0.5", {"X": randn(3, 4, lo=0.05)}, lambda t: F.elu(t["X"], 0.5), [node("Elu", ["X"], alpha=0.5)])
case("LeakyRelu defaults [3,4]", {"X": randn(3, 4, lo=0.05)}, lambda t: F.leaky_relu(t["X"]),
     [node("LeakyRelu", ["X"])])
case("LeakyRelu alpha 0.2 [2,3,4]", {"X": randn(2, 3, 4, lo=0.05)}, lambda t: F.leaky_relu(t["X"], 0.2),
     [node("LeakyRelu", ["X"], alpha=0.2)])
case("Selu defaults [3,4]", {"X": randn(3, 4, lo=0.05)}, lambda t: F.selu(t["X"]), [node("Selu", ["X"])])
case("Selu alpha 1.5 gamma 0.8", {"X": randn(2, 3, 4, lo=0.05)},
     lambda t: 0.8 * torch.where(t["X"] > 0, t["X"], 1.5 * torch.expm1(t["X"])),
     [node("Selu", ["X"], alpha=1.5, gamma=0.8)])


def const(name, value):
    return oh.make_node("Constant", [], [name], value=nh.from_array(np.array(value, np.float32), name))


# Clip: x on the bounds too, where torch.clamp passes the gradient.
CLIP_X = 2 * randn(3, 4)
CLIP_X[0, :2] = -0.5
CLIP_X[1, :2] = 1.25
case("Clip(X, -0.5, 1.25) (Constant bounds, X on both)", {"X": CLIP_X}, lambda t: torch.clamp(t["X"], -0.5, 1.25),
     [const("lo", -0.5), const("hi", 1.25), node("Clip", ["X", "lo", "hi"])])
case("Clip(X, '', 0.75) (max only)", {"X": CLIP_X}, lambda t: torch.clamp(t["X"], max=0.75),
     [const("hi", 0.75), node("Clip", ["X", "", "hi"])])
case("Clip(X, 0) (min only, an initializer: a constant, not a parameter)", {"X": CLIP_X},
     lambda t: torch.clamp(t["X"], min=0.0), [node("Clip", ["X", "lo"])], consts={"lo": np.array(0.0, np.float32)})
case("Clip(X, 1, -1) (min > max: max everywhere)", {"X": CLIP_X}, lambda t: torch.clamp(t["X"], 1.0, -1.0),
     [const("lo", 1.0), const("hi", -1.0), node("Clip", ["X", "lo", "hi"])])
case("Clip min -0.5 max 1.25 attributes (opset 10)", {"X": CLIP_X}, lambda t: torch.clamp(t["X"], -0.5, 1.25),
     [node("Clip", ["X"], min=-0.5, max=1.25)], opset=10)
# Floor, Ceil and Sign pass no gradient (torch's is zero).
case("X Sign(Y) + Floor(X) + Ceil(Y)", {"X": 3 * randn(3, 4), "Y": 3 * randn(3, 4)},
     lambda t: t["X"] * torch.sign(t["Y"]) + torch.floor(t["X"]) + torch.ceil(t["Y"]),
     [node("Sign", ["Y"], "s"), node("Mul", ["X", "s"], "xs"), node("Floor", ["X"], "f"),
      node("Ceil", ["Y"], "c"), node("Add", ["xs", "f"], "sum"), node("Add", ["sum", "c"])])
# Max and Min: the selected operand's gradient, split evenly on ties.
for op, fn in (("Max", torch.maximum), ("Min", torch.minimum)):
    a, b = randn(3, 4), randn(4)
    a[0, :2] = b[:2]  # ties
    case(f"{op} [3,4] [4] with ties", {"A": a, "B": b}, lambda t, fn=fn: fn(t["A"], t["B"]), [node(op, ["A", "B"])])
    case(f"{op} X X", {"X": randn(3, 4)}, lambda t, fn=fn: fn(t["X"], t["X"]), [node(op, ["X", "X"])])
    case(f"{op} of three [2,3,4] [3,1] [4]", {"A": randn(2, 3, 4), "B": randn(3, 1), "C": randn(4)},
         lambda t, fn=fn: fn(fn(t["A"], t["B"]), t["C"]), [node(op, ["A", "B", "C"])])
    case(f"{op} of one", {"A": randn(3, 4)}, lambda t: t["A"] * 1, [node(op, ["A"])])
# PRelu: per-channel and scalar slopes; x = 0 (where torch gives dx = slope dy, dslope 0) included.
PRELU_X = randn(2, 3, 4, 4, lo=0.05)
PRELU_X[0, :, 0, :2] = 0.0
case("PRelu [2,3,4,4] slope [3,1,1]", {"X": PRELU_X, "S": randn(3, 1, 1)},
     lambda t: F.prelu(t["X"], t["S"].reshape(3)), [node("PRelu", ["X", "S"])])
case("PRelu [3,4] slope [1]", {"X": randn(3, 4, lo=0.05), "S": np.array([0.25], np.float32)},
     lambda t: F.prelu(t["X"], t["S"]), [node("PRelu", ["X", "S"])])
# Mod: FLOAT needs fmod = 1 (torch.fmod); integer Mod has no gradient.
MOD_B = positive(3, 4) * np.where(rng.random((3, 4)) < 0.5, -1, 1).astype(np.float32)
case("Mod fmod=1 [3,4] [3,4]", {"A": 4 * randn(3, 4), "B": MOD_B}, lambda t: torch.fmod(t["A"], t["B"]),
     [node("Mod", ["A", "B"], fmod=1)])
case("Mod fmod=1 [2,3,4] [4]", {"A": 4 * randn(2, 3, 4), "B": MOD_B[0]}, lambda t: torch.fmod(t["A"], t["B"]),
     [node("Mod", ["A", "B"], fmod=1)])
# Ops zero implements through their ONNX function bodies, with no code of
# their own: HardSwish (HardSigmoid, Mul) and Celu (context-dependent: Div,
# Elu, Mul).
case("HardSwish (function body) [3,4]", {"X": 4 * randn(3, 4)}, lambda t: F.hardswish(t["X"]),
     [node("HardSwish", ["X"])])
case("Celu (function body) alpha 2", {"X": randn(3, 4, lo=0.05)}, lambda t: F.celu(t["X"], 2.0),
     [node("Celu", ["X"], alpha=2.0)])
def mvn(x, axes=(0, 2, 3)):
    mean = x.mean(axes, keepdim=True)
    return (x - mean) / (torch.sqrt((x * x).mean(axes, keepdim=True) - mean * mean) + 1e-9)


case("MeanVarianceNormalization (function body) [2,3,4,5]", {"X": randn(2, 3, 4, 5)}, lambda t: mvn(t["X"]),
     [node("MeanVarianceNormalization", ["X"])])
case("MeanVarianceNormalization (function body) axes [1]", {"X": randn(3, 6)}, lambda t: mvn(t["X"], (1,)),
     [node("MeanVarianceNormalization", ["X"], axes=[1])])
case("Celu (function body) default alpha", {"X": randn(3, 4, lo=0.05)}, lambda t: F.celu(t["X"]),
     [node("Celu", ["X"])])
# Comparisons and logical ops select through Where (no gradient of their
# own); GreaterOrEqual and LessOrEqual come in through their function bodies
# (Greater or Less, Equal, Or).
case("Where(GreaterOrEqual(X, 0), X, 0.1 X)", {"X": randn(3, 4, lo=0.05)},
     lambda t: torch.where(t["X"] >= 0, t["X"], 0.1 * t["X"]),
     [oh.make_node("Constant", [], ["zero"], value=nh.from_array(np.array(0.0, np.float32), "zero")),
      oh.make_node("Constant", [], ["tenth"], value=nh.from_array(np.array(0.1, np.float32), "tenth")),
      node("GreaterOrEqual", ["X", "zero"], "ge"), node("Mul", ["X", "tenth"], "small"),
      node("Where", ["ge", "X", "small"])])
case("Where(And(Greater(X, A), Not(LessOrEqual(X, B))), X, B) [3,4] [4]", {"X": randn(3, 4), "A": randn(4), "B": randn(4)},
     lambda t: torch.where((t["X"] > t["A"]) & ~(t["X"] <= t["B"]), t["X"], t["B"]),
     [node("Greater", ["X", "A"], "gt"), node("LessOrEqual", ["X", "B"], "le"), node("Not", ["le"], "nle"),
      node("And", ["gt", "nle"], "both"), node("Where", ["both", "X", "B"])])
case("Where(Or(Less(X, -0.5), Xor(Equal(L, 0), Equal(L, 2))), X, 3 X) int labels",
     {"X": randn(3, 4)}, lambda t: torch.where((t["X"] < -0.5) | ((t["L"] == 0) ^ (t["L"] == 2)), t["X"], 3 * t["X"]),
     [oh.make_node("Constant", [], ["m"], value=nh.from_array(np.array(-0.5, np.float32), "m")),
      oh.make_node("Constant", [], ["three"], value=nh.from_array(np.array(3.0, np.float32), "three")),
      oh.make_node("Constant", [], ["i0"], value=nh.from_array(np.array(0, np.int64), "i0")),
      oh.make_node("Constant", [], ["i2"], value=nh.from_array(np.array(2, np.int64), "i2")),
      node("Less", ["X", "m"], "lt"), node("Equal", ["L", "i0"], "e0"), node("Equal", ["L", "i2"], "e2"),
      node("Xor", ["e0", "e2"], "x"), node("Or", ["lt", "x"], "sel"), node("Mul", ["X", "three"], "big"),
      node("Where", ["sel", "X", "big"])],
     inputs={"L": rng.integers(0, 3, (3, 4)).astype(np.int64)})
case("Dropout ratio 0", {"X": randn(3, 4)}, lambda t: t["X"],
     [oh.make_node("Constant", [], ["ratio"], value=nh.from_array(np.array(0.0, np.float32), "ratio")),
      node("Dropout", ["X", "ratio"])])
case("Cast float->float", {"X": randn(3, 4)}, lambda t: t["X"], [node("Cast", ["X"], to=TensorProto.FLOAT)])
case("chain Tanh(Exp(X)) * X", {"X": randn(3, 4)}, lambda t: torch.tanh(torch.exp(t["X"])) * t["X"],
     [node("Exp", ["X"], "e"), node("Tanh", ["e"], "th"), node("Mul", ["th", "X"])])

# --- softmax family ----------------------------------------------------------------
for op, fn in [("Softmax", torch.softmax), ("LogSoftmax", torch.log_softmax)]:
    for axis in (1, -1, 0):
        case(f"{op} axis {axis} [2,3,4]", {"X": randn(2, 3, 4)}, lambda t, fn=fn, axis=axis: fn(t["X"], axis),
             [node(op, ["X"], axis=axis)])
    case(f"{op} default axis [3,5]", {"X": randn(3, 5)}, lambda t, fn=fn: fn(t["X"], -1), [node(op, ["X"])])

# --- Gemm ------------------------------------------------------------------------
M_, K_, N_ = 3, 4, 5
for ta in (0, 1):
    for tb in (0, 1):
        for cshape in [(N_,), (1, N_), (M_, N_), (M_, 1), None]:
            for alpha, beta in [(1.0, 1.0), (0.7, 1.3)]:
                if cshape in [(M_, N_), (M_, 1)] and (alpha, beta) == (1.0, 1.0):
                    continue
                p = {"A": randn(K_, M_) if ta else randn(M_, K_), "B": randn(N_, K_) if tb else randn(K_, N_)}
                ins = ["A", "B"]
                if cshape:
                    p["C"] = randn(*cshape)
                    ins.append("C")

                def gemm(t, ta=ta, tb=tb, alpha=alpha, beta=beta, c=cshape is not None):
                    a = t["A"].T if ta else t["A"]
                    b = t["B"].T if tb else t["B"]
                    y = alpha * (a @ b)
                    return y + beta * t["C"] if c else y
                case(f"Gemm transA={ta} transB={tb} C={list(cshape) if cshape else None} alpha={alpha} beta={beta}",
                     p, gemm, [node("Gemm", ins, transA=ta, transB=tb, alpha=alpha, beta=beta)])

# --- MatMul ----------------------------------------------------------------------
for sa, sb in [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)), ((2, 3, 4), (2, 4, 5)),
               ((2, 1, 3, 4), (5, 4, 2)), ((1, 3, 4), (2, 4, 5))]:
    case(f"MatMul {list(sa)} {list(sb)}", {"A": randn(*sa), "B": randn(*sb)},
         lambda t: torch.matmul(t["A"], t["B"]), [node("MatMul", ["A", "B"])])

# --- reductions (opset 17: ReduceSum axes is an input, ReduceMean axes an attribute) ---
for keep in (0, 1):
    for axes in ([1], [0, 2], [-1], [-3, -1], None):
        dims = axes if axes is not None else [0, 1, 2]
        case(f"ReduceSum axes={axes} keepdims={keep}", {"X": randn(2, 3, 4)},
             lambda t, dims=dims, keep=keep: t["X"].sum(dim=dims, keepdim=bool(keep)),
             [node("ReduceSum", ["X", "axes"] if axes is not None else ["X"], keepdims=keep)],
             consts={"axes": i64(*axes)} if axes is not None else None)
        kw = {"axes": axes} if axes is not None else {}
        case(f"ReduceMean axes={axes} keepdims={keep}", {"X": randn(2, 3, 4)},
             lambda t, dims=dims, keep=keep: t["X"].mean(dim=dims, keepdim=bool(keep)),
             [node("ReduceMean", ["X"], keepdims=keep, **kw)])

# ReduceMax/ReduceMin (torch.amax/amin: the gradient split evenly among ties), ReduceProd (zeros
# included: torch.prod's exact rule), ReduceL2 (a zero row: torch's gradient 0), ReduceLogSumExp.
TIES = randn(2, 3, 4)
TIES[0, 1, :3] = TIES[0, 1, 3]  # a row of four equal values
TIES[1, :2, 2] = TIES[1, 2, 2]  # a column of three
TIES[1, 0, 0] = TIES[1, 0, 3]
PROD_X = positive(2, 3, 4) * np.where(rng.random((2, 3, 4)) < 0.5, -1, 1).astype(np.float32)
PROD_X[0, 1, 2] = 0  # one zero in a row and in a column
PROD_X[1, 2, 0] = PROD_X[1, 2, 3] = 0  # two in a row
L2_X = randn(2, 3, 4)
L2_X[1, 1, :] = 0  # a zero norm over axis 2
REDUCE_EXTRA = {
    "ReduceMax": (TIES, lambda x, dims, keep: torch.amax(x, dims, keep)),
    "ReduceMin": (-TIES, lambda x, dims, keep: torch.amin(x, dims, keep)),
    "ReduceProd": (PROD_X, None),
    "ReduceL2": (L2_X, lambda x, dims, keep: torch.linalg.vector_norm(x, 2, dims, keep)),
    "ReduceLogSumExp": (3 * randn(2, 3, 4), lambda x, dims, keep: torch.logsumexp(x, dims, keep)),
}


def torch_prod(x, dims, keep):
    for d in sorted({d % x.dim() for d in dims}, reverse=True):
        x = torch.prod(x, d, keepdim=keep)
    return x


for op, (x, fn) in REDUCE_EXTRA.items():
    fn = fn or torch_prod
    for keep in (0, 1):
        for axes in ([2], [0, 2], [-2], None):
            dims = axes if axes is not None else [0, 1, 2]
            kw = {"axes": axes} if axes is not None else {}
            case(f"{op} axes={axes} keepdims={keep}", {"X": x},
                 lambda t, fn=fn, dims=dims, keep=keep: fn(t["X"], dims, bool(keep)),
                 [node(op, ["X"], keepdims=keep, **kw)])
# A tie of the maximum with every element: the whole tensor constant.
case("ReduceMax all equal", {"X": np.full((2, 3), 0.5, np.float32)}, lambda t: torch.amax(t["X"], [0, 1]),
     [node("ReduceMax", ["X"], keepdims=0)])
case("ReduceMax opset 13", {"X": TIES}, lambda t: torch.amax(t["X"], [1], True),
     [node("ReduceMax", ["X"], axes=[1])], opset=13)
# ArgMax has no gradient; a model using its indices still trains.
case("X * Cast(ArgMax(X, axis 1)) + Gather(X, ArgMin(Y, axis 0, keepdims 0))",
     {"X": randn(3, 4), "Y": randn(3, 3)},
     lambda t: t["X"] * torch.argmax(t["X"], 1, keepdim=True).double() + t["X"][torch.argmin(t["Y"], 0)],
     [node("ArgMax", ["X"], "am", axis=1), node("Cast", ["am"], "amf", to=TensorProto.FLOAT),
      node("Mul", ["X", "amf"], "p"), node("ArgMin", ["Y"], "ai", axis=0, keepdims=0),
      node("Gather", ["X", "ai"], "g"), node("Add", ["p", "g"])])

# --- CumSum, Tile, Trilu -------------------------------------------------------------------


def torch_cumsum(x, axis, exclusive, reverse):
    y = torch.flip(x, [axis]) if reverse else x
    y = torch.cumsum(y, axis) - (y if exclusive else 0)
    return torch.flip(y, [axis]) if reverse else y


for axis in (0, 1, -1):
    for exclusive in (0, 1):
        for reverse in (0, 1):
            case(f"CumSum axis={axis} exclusive={exclusive} reverse={reverse}", {"X": randn(2, 3, 4)},
                 lambda t, a=axis, e=exclusive, r=reverse: torch_cumsum(t["X"], a, e, r),
                 [node("CumSum", ["X", "axis"], exclusive=exclusive, reverse=reverse)],
                 consts={"axis": np.array(axis, np.int64)})
for shape, repeats in [((2, 3), (2, 3)), ((2, 3, 4), (1, 2, 1)), ((3, 1, 2), (2, 1, 3)), ((2, 3), (1, 1)),
                       ((4,), (3,)), ((1, 2, 3, 2), (2, 2, 2, 2))]:
    case(f"Tile {list(shape)} repeats {list(repeats)}", {"X": randn(*shape)},
         lambda t, r=repeats: t["X"].repeat(*r), [node("Tile", ["X", "repeats"])], consts={"repeats": i64(*repeats)})
for upper in (0, 1):
    for shape, k in [((4, 4), None), ((2, 3, 5), 1), ((2, 5, 3), -1), ((3, 4), 7), ((4, 3), -2)]:
        fn = torch.triu if upper else torch.tril
        case(f"Trilu upper={upper} {list(shape)} k={k}", {"X": randn(*shape)},
             lambda t, fn=fn, k=k: fn(t["X"], k or 0),
             [node("Trilu", ["X", "k"] if k is not None else ["X"], upper=upper)],
             consts={"k": np.array(k, np.int64)} if k is not None else None)

# Masks built from INT64 constants fold at import (a causal mask: Trilu of ones; Tile of a
# constant row); the model sees them as constants.
IOTA = np.arange(4, dtype=np.int64).reshape(1, 4)
case("Where(Trilu(ones, k=1, upper=0), X, 0) * Cast(Tile(iota, [3, 1])) (folded masks)", {"X": randn(3, 4)},
     lambda t: torch.where(torch.tril(torch.ones(3, 4, dtype=torch.int64), 1) != 0, t["X"], torch.zeros(()).double())
     * torch.from_numpy(IOTA).repeat(3, 1).double(),
     [node("Trilu", ["ones", "k"], "mask", upper=0), node("Where", ["mask", "X", "zero"], "masked"),
      node("Tile", ["iota", "reps"], "tiled"), node("Cast", ["tiled"], "tiledf", to=TensorProto.FLOAT),
      node("Mul", ["masked", "tiledf"])],
     consts={"ones": np.ones((3, 4), np.bool_), "k": np.array(1, np.int64), "zero": np.array(0, np.float32),
             "iota": IOTA, "reps": i64(3, 1)})

# --- shape ops -------------------------------------------------------------------------
for perm in ([2, 0, 1], [1, 0, 2], None):
    case(f"Transpose perm={perm}", {"X": randn(2, 3, 4)},
         lambda t, perm=perm: t["X"].permute(*(perm if perm else [2, 1, 0])),
         [node("Transpose", ["X"], **({"perm": perm} if perm else {}))])
for shape, tshape in [([4, -1], (4, 6)), ([0, -1], (2, 12)), ([24], (24,)), ([2, 2, 2, 3], (2, 2, 2, 3))]:
    case(f"Reshape {shape}", {"X": randn(2, 3, 4)}, lambda t, s=tshape: t["X"].reshape(s),
         [node("Reshape", ["X", "shape"])], consts={"shape": i64(*shape)})
for axis in (0, 1, 2, 3):
    case(f"Flatten axis={axis}", {"X": randn(2, 3, 4)},
         lambda t, axis=axis: t["X"].reshape(int(np.prod([2, 3, 4][:axis])), -1),
         [node("Flatten", ["X"], axis=axis)])
for sx, shape in [((3, 1), [2, 3, 4]), ((4,), [3, 4]), ((1, 4), [3, 1]), ((2, 1, 4), [2, 3, 4])]:
    tshape = tuple(np.broadcast_shapes(sx, tuple(shape)))
    case(f"Expand {list(sx)} -> {shape}", {"X": randn(*sx)}, lambda t, s=tshape: t["X"].expand(*s),
         [node("Expand", ["X", "shape"])], consts={"shape": i64(*shape)})
case("Squeeze axes=[1]", {"X": randn(3, 1, 4)}, lambda t: t["X"].squeeze(1),
     [node("Squeeze", ["X", "axes"])], consts={"axes": i64(1)})
case("Unsqueeze axes=[0,3]", {"X": randn(3, 4)}, lambda t: t["X"].unsqueeze(0).unsqueeze(3),
     [node("Unsqueeze", ["X", "axes"])], consts={"axes": i64(0, 3)})

# --- losses with integer labels (graph input 'labels', fed via --data) ----------------
LABELS = i64(0, 2, 1, 4, 1, 3)  # ignore_index=1 hits two rows
for reduction in ("mean", "sum"):
    for ignore in (None, 1):
        kw = {"reduction": reduction, **({"ignore_index": ignore} if ignore is not None else {})}
        tkw = {"reduction": reduction, "ignore_index": ignore if ignore is not None else -100}
        case(f"SoftmaxCrossEntropyLoss reduction={reduction} ignore_index={ignore}", {"S": randn(6, 5)},
             lambda t, tkw=tkw: F.cross_entropy(t["S"], t["labels"], **tkw),
             [node("SoftmaxCrossEntropyLoss", ["S", "labels"], **kw)], inputs={"labels": LABELS})
        case(f"NegativeLogLikelihoodLoss reduction={reduction} ignore_index={ignore}", {"S": randn(6, 5)},
             lambda t, tkw=tkw: F.nll_loss(t["S"], t["labels"], **tkw),
             [node("NegativeLogLikelihoodLoss", ["S", "labels"], **kw)], inputs={"labels": LABELS})
case("SoftmaxCrossEntropyLoss reduction=none", {"S": randn(6, 5)},
     lambda t: F.cross_entropy(t["S"], t["labels"], reduction="none"),
     [node("SoftmaxCrossEntropyLoss", ["S", "labels"], reduction="none")], inputs={"labels": LABELS})
case("LogSoftmax + NegativeLogLikelihoodLoss", {"S": randn(6, 5)},
     lambda t: F.nll_loss(torch.log_softmax(t["S"], 1), t["labels"]),
     [node("LogSoftmax", ["S"], "ls", axis=1), node("NegativeLogLikelihoodLoss", ["ls", "labels"])],
     inputs={"labels": LABELS})
case("SoftmaxCrossEntropyLoss 3-D scores [3,5,2]", {"S": randn(3, 5, 2)},
     lambda t: F.cross_entropy(t["S"], t["labels"]),
     [node("SoftmaxCrossEntropyLoss", ["S", "labels"])], inputs={"labels": np.array([[0, 4], [2, 2], [1, 3]], np.int64)})
# Class weights W [C]: a FLOAT initializer (imported as a constant, not trained) or a graph input.
W = positive(5, lo=0.2, hi=3.0)
for reduction in ("mean", "sum", "none"):
    for ignore in (None, 1):
        kw = {"reduction": reduction, **({"ignore_index": ignore} if ignore is not None else {})}
        tkw = {"reduction": reduction, "ignore_index": ignore if ignore is not None else -100}
        for op, fn in [("SoftmaxCrossEntropyLoss", F.cross_entropy), ("NegativeLogLikelihoodLoss", F.nll_loss)]:
            case(f"{op} weights reduction={reduction} ignore_index={ignore}", {"S": randn(6, 5)},
                 lambda t, fn=fn, tkw=tkw: fn(t["S"], t["labels"], weight=torch.from_numpy(W).double(), **tkw),
                 [node(op, ["S", "labels", "W"], **kw)], consts={"W": W}, inputs={"labels": LABELS})
case("SoftmaxCrossEntropyLoss weights as a graph input, 3-D scores [3,5,2]", {"S": randn(3, 5, 2)},
     lambda t: F.cross_entropy(t["S"], t["labels"], weight=t["W"]),
     [node("SoftmaxCrossEntropyLoss", ["S", "labels", "W"])],
     inputs={"labels": np.array([[0, 4], [2, 2], [1, 3]], np.int64), "W": W})
case("LogSoftmax + NegativeLogLikelihoodLoss weights ignore_index=1", {"S": randn(6, 5)},
     lambda t: F.nll_loss(torch.log_softmax(t["S"], 1), t["labels"], weight=torch.from_numpy(W).double(), ignore_index=1),
     [node("LogSoftmax", ["S"], "ls", axis=1), node("NegativeLogLikelihoodLoss", ["ls", "labels", "W"], ignore_index=1)],
     consts={"W": W}, inputs={"labels": LABELS})

# --- transformer ops ----------------------------------------------------------------------
IDS = np.array([[1, 3, 3], [0, 4, 1]], np.int64)
case("Gather embedding rows (repeated indices add up)", {"E": randn(5, 4)},
     lambda t: t["E"][t["ids"]], [node("Gather", ["E", "ids"])], inputs={"ids": IDS})
case("Gather axis 1, negative constant indices", {"X": randn(3, 5, 2)},
     lambda t: t["X"][:, [4, 0, 4]], [node("Gather", ["X", "idx"], axis=1)], consts={"idx": i64(-1, 0, 4)})
case("Slice with steps and negative bounds", {"X": randn(4, 7)},
     lambda t: t["X"][1:, 1:-1:2],
     [node("Slice", ["X", "starts", "ends", "axes", "steps"])],
     consts={"starts": i64(1, 1), "ends": i64(100, -1), "axes": i64(0, 1), "steps": i64(1, 2)})
case("Split into three along axis 1", {"X": randn(2, 6)},
     lambda t: torch.cat([t["X"][:, 4:6] * 2, t["X"][:, 0:1], t["X"][:, 1:4] * 3], 1),
     [oh.make_node("Split", ["X", "sizes"], ["a", "b", "c"], name="split", axis=1),
      oh.make_node("Constant", [], ["two"], value=nh.from_array(np.array(2.0, np.float32), "two")),
      oh.make_node("Constant", [], ["three"], value=nh.from_array(np.array(3.0, np.float32), "three")),
      node("Mul", ["c", "two"], "c2"), node("Mul", ["b", "three"], "b3"),
      node("Concat", ["c2", "a", "b3"], axis=1)],
     consts={"sizes": i64(1, 3, 2)})
case("Concat three inputs on a middle axis", {"A": randn(2, 1, 3), "B": randn(2, 2, 3), "C": randn(2, 3, 3)},
     lambda t: torch.cat([t["A"], t["B"], t["C"]], 1), [node("Concat", ["A", "B", "C"], axis=1)])
# --- indexing by index tensors ------------------------------------------------------------
GE_IDX = np.array([[0, 4, 4], [2, -1, 0], [3, 3, 1]], np.int64)  # repeats and a negative index
case("GatherElements axis 1, negative and repeated constant indices", {"X": randn(3, 5)},
     lambda t: torch.gather(t["X"], 1, torch.from_numpy(np.where(GE_IDX < 0, GE_IDX + 5, GE_IDX))),
     [node("GatherElements", ["X", "idx"], axis=1)], consts={"idx": GE_IDX})
GE_IDX0 = np.array([[[1], [0]], [[2], [2]]], np.int64)
case("GatherElements axis 0, indices smaller than data, a graph input", {"X": randn(3, 4, 2)},
     lambda t: torch.gather(t["X"], 0, t["idx"]), [node("GatherElements", ["X", "idx"], axis=0)],
     inputs={"idx": GE_IDX0})
SE_IDX = np.array([[0, 4, 1], [2, 3, 0], [4, 2, 1]], np.int64)  # no repeats within a row
case("ScatterElements axis 1 (data and updates trainable)", {"X": randn(3, 5), "U": randn(3, 3)},
     lambda t: t["X"].scatter(1, torch.from_numpy(SE_IDX), t["U"]),
     [node("ScatterElements", ["X", "idx", "U"], axis=1)], consts={"idx": SE_IDX})
case("ScatterElements axis -2, negative indices", {"X": randn(4, 3), "U": randn(2, 3)},
     lambda t: t["X"].scatter(0, torch.tensor([[3, 0, 1], [1, 2, 3]]), t["U"]),
     [node("ScatterElements", ["X", "idx", "U"], axis=-2)], consts={"idx": i64([-1, 0, 1], [1, -2, 3])})
case("ScatterElements reduction add, repeated indices", {"X": randn(3, 5), "U": randn(3, 3)},
     lambda t: t["X"].scatter_add(1, torch.from_numpy(GE_IDX % 5), t["U"]),
     [node("ScatterElements", ["X", "idx", "U"], axis=1, reduction="add")], consts={"idx": GE_IDX})
SE_U = positive(3, 3)
case("ScatterElements reduction mul, repeated indices (data's gradient)", {"X": randn(3, 5)},
     lambda t: t["X"].scatter_reduce(1, torch.from_numpy(GE_IDX % 5), torch.from_numpy(SE_U).double(), "prod"),
     [oh.make_node("Constant", [], ["U"], value=nh.from_array(SE_U, "U")),
      node("ScatterElements", ["X", "idx", "U"], axis=1, reduction="mul")], consts={"idx": GE_IDX})
case("Scatter (opset 10) axis 1", {"X": randn(3, 5), "U": randn(3, 3)},
     lambda t: t["X"].scatter(1, torch.from_numpy(SE_IDX), t["U"]),
     [node("Scatter", ["X", "idx", "U"], axis=1)], consts={"idx": SE_IDX}, opset=10)


def index_put(x, idx, u, accumulate=False):
    """ScatterND as torch: idx [..., k] tuples into x's first k dimensions."""
    tuples = tuple(torch.from_numpy(idx[..., j] % x.shape[j]) for j in range(idx.shape[-1]))
    return x.index_put(tuples, u, accumulate=accumulate)


ND1, ND2 = np.array([[2], [0]], np.int64), np.array([[[0, 1], [2, -1]], [[1, 0], [0, 3]]], np.int64)
case("ScatterND rows (k=1, data and updates trainable)", {"X": randn(4, 3, 2), "U": randn(2, 3, 2)},
     lambda t: index_put(t["X"], ND1, t["U"]), [node("ScatterND", ["X", "idx", "U"])], consts={"idx": ND1})
case("ScatterND elements (k=2, negative indices)", {"X": randn(3, 4), "U": randn(2, 2)},
     lambda t: index_put(t["X"], ND2, t["U"]), [node("ScatterND", ["X", "idx", "U"])], consts={"idx": ND2})
ND_REP = np.array([[1], [3], [1]], np.int64)
case("ScatterND reduction add, a repeated tuple", {"X": randn(4, 3), "U": randn(3, 3)},
     lambda t: index_put(t["X"], ND_REP, t["U"], accumulate=True),
     [node("ScatterND", ["X", "idx", "U"], reduction="add")], consts={"idx": ND_REP})
ND_U = positive(3, 3)
case("ScatterND reduction mul, a repeated tuple (data's gradient)", {"X": randn(4, 3)},
     lambda t: t["X"] * torch.from_numpy(np.stack([ND_U[[i for i in range(3) if ND_REP[i, 0] == r]].prod(0)
                                                    for r in range(4)])).double(),
     [oh.make_node("Constant", [], ["U"], value=nh.from_array(ND_U, "U")),
      node("ScatterND", ["X", "idx", "U"], reduction="mul")], consts={"idx": ND_REP})
case("GatherND slices (k=1) and elements (k=2), repeated", {"X": randn(3, 4)},
     lambda t: torch.cat([t["X"][[2, 0, 2]].reshape(-1), t["X"][[0, 2, 0], [1, 3, 1]]]),
     [node("GatherND", ["X", "i1"], "g1"), node("GatherND", ["X", "i2"], "g2"),
      oh.make_node("Constant", [], ["flat"], value=nh.from_array(i64(-1), "flat")),
      node("Reshape", ["g1", "flat"], "r1"), node("Concat", ["r1", "g2"], axis=0)],
     consts={"i1": i64([2], [0], [2]), "i2": i64([0, 1], [-1, -1], [0, 1])})
TOPK_X = randn(3, 6)
for axis, largest, k in ((1, 1, 3), (-1, 0, 2), (0, 1, 2)):
    case(f"TopK axis {axis} largest {largest} k {k} (values' gradient)", {"X": TOPK_X},
         lambda t, a=axis, l=largest, k=k: torch.topk(t["X"], k, dim=a, largest=bool(l)).values,
         [oh.make_node("TopK", ["X", "k"], ["out", "ind"], name="topk", axis=axis, largest=largest)],
         consts={"k": i64(k)})
case("TopK values times Cast(indices)", {"X": TOPK_X},
     lambda t: (lambda r: r.values * r.indices)(torch.topk(t["X"], 4)),
     [oh.make_node("TopK", ["X", "k"], ["v", "ind"], name="topk"),
      oh.make_node("Cast", ["ind"], ["fi"], name="cast", to=TensorProto.FLOAT), node("Mul", ["v", "fi"])],
     consts={"k": i64(4)})

MASK = np.array([[True, False, True, True], [False, False, True, False], [True, True, True, False]])
case("Where with a broadcast condition and scalar fill", {"X": randn(3, 4), "Y": randn(4)},
     lambda t: torch.where(torch.from_numpy(MASK), t["X"], t["Y"]),
     [node("Where", ["cond", "X", "Y"])], consts={"cond": MASK})
case("masked_fill(-inf) before Softmax (causal attention)", {"S": randn(2, 4, 4)},
     lambda t: torch.softmax(t["S"].masked_fill(torch.triu(torch.ones(4, 4, dtype=torch.bool), 1),
                                                float("-inf")), -1),
     [oh.make_node("Constant", [], ["ninf"], value=nh.from_array(np.array(-np.inf, np.float32), "ninf")),
      node("Where", ["mask", "ninf", "S"], "masked"), node("Softmax", ["masked"], axis=-1)],
     consts={"mask": np.triu(np.ones((4, 4), bool), 1)})
for axis in (-1, 1):
    shape = (2, 3, 4)
    norm_shape = shape[axis % 3:]
    case(f"LayerNormalization axis {axis}", {"X": randn(*shape), "G": randn(*norm_shape), "B": randn(*norm_shape)},
         lambda t, n=norm_shape: F.layer_norm(t["X"], n, t["G"], t["B"], 1e-5),
         [node("LayerNormalization", ["X", "G", "B"], axis=axis, epsilon=1e-5)])
case("Gelu (erf form) as exported", {"X": randn(3, 5)},
     lambda t: F.gelu(t["X"]),
     [oh.make_node("Constant", [], ["sqrt2"], value=nh.from_array(np.array(1.4142135, np.float32), "sqrt2")),
      oh.make_node("Constant", [], ["one"], value=nh.from_array(np.array(1.0, np.float32), "one")),
      oh.make_node("Constant", [], ["half"], value=nh.from_array(np.array(0.5, np.float32), "half")),
      node("Div", ["X", "sqrt2"], "xs"), node("Erf", ["xs"], "e"), node("Add", ["e", "one"], "e1"),
      node("Mul", ["X", "e1"], "xe"), node("Mul", ["xe", "half"])])



# --- PyTorch's own exports at opset 17 -------------------------------------------------
class _Exported(torch.nn.Module):
    def __init__(self, module, x):
        super().__init__()
        self.X = torch.nn.Parameter(torch.from_numpy(x))
        self.module = module

    def forward(self):
        return self.module(self.X)


def exported_case(name, module, x):
    """module(X) as torch.onnx.export writes it at opset 17 (X a parameter, so an
    initializer), its output renamed 'out'; torch autograd of the module is the reference."""
    path = os.path.join(tmp, f"export_{_count[0]}_{len(R.failed)}.onnx")
    # No constant folding: it would fold the parameter into ops of its own.
    torch.onnx.export(_Exported(module, x), (), path, opset_version=17, input_names=[], output_names=["out"],
                      do_constant_folding=False)
    exported = onnx.load(path)
    consts = {i.name: nh.to_array(i) for i in exported.graph.initializer if i.name != "X"}
    assert all(v.dtype != np.float32 for v in consts.values()), f"{name}: a float initializer besides X"
    case(f"{name} (torch.onnx.export, opset 17: {' '.join(sorted({n.op_type for n in exported.graph.node}))})",
         {"X": x}, lambda t: module.double()(t["X"]), list(exported.graph.node), consts=consts)


exported_case("nn.GELU()", torch.nn.GELU(), randn(3, 5))
exported_case("nn.GELU(approximate='tanh')", torch.nn.GELU(approximate="tanh"), randn(3, 5))
exported_case("nn.Mish()", torch.nn.Mish(), 3 * randn(3, 5))
exported_case("nn.SELU()", torch.nn.SELU(), randn(3, 5, lo=0.05))
exported_case("nn.Softsign()", torch.nn.Softsign(), 3 * randn(3, 5))
exported_case("nn.ReLU6()", torch.nn.ReLU6(), 4 * randn(3, 5, lo=0.05))
exported_case("nn.Hardtanh(-0.5, 1.5)", torch.nn.Hardtanh(-0.5, 1.5), 2 * randn(3, 5))
exported_case("nn.Hardswish()", torch.nn.Hardswish(), 4 * randn(3, 5))
exported_case("nn.CELU(1.5)", torch.nn.CELU(1.5), randn(3, 5, lo=0.05))


class _Fn(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


# Reductions, scans and masks as PyTorch writes them.
for name, fn in [("torch.amax(x, 1, keepdim=True)", lambda x: torch.amax(x, 1, keepdim=True)),
                 ("torch.amin(x, (0, 1))", lambda x: torch.amin(x, (0, 1))),
                 ("x.max()", lambda x: x.max()),
                 ("x.max(dim=1).values * x.argmax(1)", lambda x: x.max(dim=1).values * x.argmax(1)),
                 ("torch.prod(x, 1)", lambda x: torch.prod(x, 1)),
                 ("x.norm(dim=-1, keepdim=True)", lambda x: x.norm(dim=-1, keepdim=True)),
                 ("torch.logsumexp(x, 1)", lambda x: torch.logsumexp(x, 1)),
                 ("torch.cumsum(x, 1)", lambda x: torch.cumsum(x, 1)),
                 ("x.repeat(2, 1, 3)", lambda x: x.repeat(2, 1, 3)),
                 ("x.repeat(1, 2)", lambda x: x.repeat(1, 2)),
                 ("torch.triu(x, 1) + torch.tril(x, -2)", lambda x: torch.triu(x, 1) + torch.tril(x, -2))]:
    exported_case(name, _Fn(fn), randn(3, 5))


# Indexing as PyTorch writes it: gather, scatter, index_put / `x[idx] = v`
# (ScatterND of folded index tuples), masked writes (Where), topk.
GIDX = torch.tensor([[0, 1, 4], [2, 2, 0], [4, 3, 1]])


def _set_columns(x):
    y = x.clone()
    y[:, torch.tensor([0, 3])] = x[:, 1:3] * 2
    return y


def _set_rows(x):
    y = x.clone()
    y[torch.tensor([0, 2])] = 0
    return y


def _masked_write(x):
    y = x.clone()
    y[x > 0.5] = 0
    return y


for name, fn in [("torch.gather(x, 1, idx)", lambda x: torch.gather(x, 1, GIDX)),
                 ("x.scatter(1, idx, 2 * x[:, :3])", lambda x: x.scatter(1, GIDX[:, [0, 2, 1]], 2 * x[:, :3])),
                 ("x.scatter(1, idx, 2.0)", lambda x: x.scatter(1, GIDX, 2.0)),
                 ("x.scatter_add(1, idx, x[:, 1:4])", lambda x: x.scatter_add(1, GIDX, x[:, 1:4])),
                 ("x.index_add(0, idx, 2 * x[:2])", lambda x: x.index_add(0, torch.tensor([0, 2]), 2 * x[:2])),
                 ("y[:, idx] = 2 * x[:, 1:3]", _set_columns),
                 ("y[idx] = 0", _set_rows),
                 ("y[x > 0.5] = 0", _masked_write),
                 ("x.index_put((rows, cols), 3 * x[0, :2])",
                  lambda x: x.index_put((torch.tensor([0, 2]), torch.tensor([1, 3])), 3 * x[0, :2])),
                 ("x.index_put(..., accumulate=True)",
                  lambda x: x.index_put((torch.tensor([0, 2, 0]), torch.tensor([1, 3, 1])), 3 * x[1, :3],
                                        accumulate=True)),
                 ("torch.topk(x, 2).values", lambda x: torch.topk(x, 2).values),
                 ("torch.topk(x, 2, dim=0, largest=False).values.sum()",
                  lambda x: torch.topk(x, 2, dim=0, largest=False).values.sum())]:
    exported_case(name, _Fn(fn), randn(3, 5))


# --- Pad, Resize, Upsample (composed at import of Slice, Concat, Gather, Mul, Add) ------
PAD_X = randn(2, 3, 4, 5)
# ONNX pads are [begins..., ends...]; F.pad's pairs run from the last axis.
for mode, torch_mode, pads, torch_pads in [
        ("constant", "constant", [0, 0, 1, -1, 0, 0, 2, 1], (-1, 1, 1, 2)),
        ("reflect", "reflect", [0, 0, 2, 3, 0, 0, 1, 0], (3, 0, 2, 1)),
        ("edge", "replicate", [0, 0, 0, 1, 0, 0, 3, 2], (1, 2, 0, 3))]:
    value = {"value": 0.5} if mode == "constant" else {}
    case(f"Pad mode {mode} pads {pads}", {"X": PAD_X},
         lambda t, m=torch_mode, p=torch_pads, v=value: F.pad(t["X"], p, mode=m, **v),
         [oh.make_node("Constant", [], ["v"], value=nh.from_array(np.array(0.5, np.float32), "v")),
          node("Pad", ["X", "pads", "v"] if mode == "constant" else ["X", "pads"], mode=mode)],
         consts={"pads": i64(*pads)})
    case(f"Pad opset 10 (attributes) mode {mode} pads {pads}", {"X": PAD_X},
         lambda t, m=torch_mode, p=torch_pads, v=value: F.pad(t["X"], p, mode=m, **v),
         [node("Pad", ["X"], mode=mode, pads=pads, value=0.5)], opset=10)
# Negative pads crop before reflect and edge pad what is left.
case("Pad mode reflect pads [0, -1, 0, 2] (crop, then pad)", {"X": randn(3, 5)},
     lambda t: F.pad(t["X"][None, :, 1:], (0, 2), mode="reflect")[0],
     [node("Pad", ["X", "pads"], mode="reflect")], consts={"pads": i64(0, -1, 0, 2)})
case("Pad mode edge pads [2, 0, -2, 1]", {"X": randn(4, 3)},
     lambda t: F.pad(t["X"][None, :2], (0, 1, 2, 0), mode="replicate")[0],
     [node("Pad", ["X", "pads"], mode="edge")], consts={"pads": i64(2, 0, -2, 1)})

RESIZE_X = randn(2, 3, 4, 5)
for attrs, scales, sizes, torch_fn in [
        ({"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
         [1, 1, 2, 3], None, lambda x: F.interpolate(x, scale_factor=(2, 3), mode="nearest")),
        ({"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
         None, [2, 3, 3, 3], lambda x: F.interpolate(x, size=(3, 3), mode="nearest")),
        ({"mode": "linear"}, [1, 1, 2, 2], None,
         lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)),
        ({"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"}, None, [2, 3, 3, 7],
         lambda x: F.interpolate(x, size=(3, 7), mode="bilinear", align_corners=False)),
        ({"mode": "linear", "coordinate_transformation_mode": "align_corners"}, None, [2, 3, 7, 9],
         lambda x: F.interpolate(x, size=(7, 9), mode="bilinear", align_corners=True)),
        ({"mode": "cubic"}, [1, 1, 2, 2], None,
         lambda x: F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)),
        ({"mode": "cubic", "coordinate_transformation_mode": "align_corners"}, None, [2, 3, 3, 8],
         lambda x: F.interpolate(x, size=(3, 8), mode="bicubic", align_corners=True))]:
    inputs = ["X", "", "scales"] if scales else ["X", "", "", "sizes"]
    consts = {"scales": np.array(scales, np.float32)} if scales else {"sizes": i64(*sizes)}
    case(f"Resize {attrs} {'scales' if scales else 'sizes'} {scales or sizes}", {"X": RESIZE_X},
         lambda t, fn=torch_fn: fn(t["X"]), [node("Resize", inputs, **attrs)], consts=consts)
case("Resize linear [2,3,5] sizes [2,3,8] (1-D)", {"X": randn(2, 3, 5)},
     lambda t: F.interpolate(t["X"], size=8, mode="linear", align_corners=False),
     [node("Resize", ["X", "", "", "sizes"], mode="linear")], consts={"sizes": i64(2, 3, 8)})
case("Upsample opset 9 nearest scales [1, 1, 2, 2]", {"X": RESIZE_X},
     lambda t: F.interpolate(t["X"], scale_factor=2, mode="nearest"),
     [node("Upsample", ["X", "scales"], mode="nearest")], consts={"scales": np.array([1, 1, 2, 2], np.float32)},
     opset=9)
case("Upsample opset 8 nearest scales attribute [1, 1, 2, 3]", {"X": RESIZE_X},
     lambda t: F.interpolate(t["X"], scale_factor=(2, 3), mode="nearest"),
     [node("Upsample", ["X"], mode="nearest", scales=[1.0, 1.0, 2.0, 3.0])], opset=8)
case("Resize opset 10 nearest scales [1, 1, 3, 2]", {"X": RESIZE_X},
     lambda t: F.interpolate(t["X"], scale_factor=(3, 2), mode="nearest"),
     [node("Resize", ["X", "scales"], mode="nearest")], consts={"scales": np.array([1, 1, 3, 2], np.float32)},
     opset=10)

# As PyTorch exports them (pads through a shape subgraph, scales a Concat of Constants).
for name, module, x in [
        ("nn.ReflectionPad2d((1, 2, 2, 1))", torch.nn.ReflectionPad2d((1, 2, 2, 1)), randn(2, 3, 4, 5)),
        ("nn.ReplicationPad2d(1)", torch.nn.ReplicationPad2d(1), randn(2, 3, 4, 5)),
        ("nn.ZeroPad2d((1, 0, 2, 3))", torch.nn.ZeroPad2d((1, 0, 2, 3)), randn(2, 3, 4, 5)),
        ("F.pad(x, (1, 2, -1, 1), value=0.5)", _Fn(lambda x: F.pad(x, (1, 2, -1, 1), value=0.5)), randn(2, 3, 4, 5)),
        ("F.pad(x, (2, 1), mode='reflect')", _Fn(lambda x: F.pad(x, (2, 1), mode="reflect")), randn(3, 4, 5)),
        ("F.pad(x, (1, 1, 2, 0), mode='replicate')", _Fn(lambda x: F.pad(x, (1, 1, 2, 0), mode="replicate")),
         randn(2, 3, 4, 5)),
        ("nn.Upsample(scale_factor=2, mode='nearest')", torch.nn.Upsample(scale_factor=2, mode="nearest"),
         randn(2, 3, 4, 5)),
        ("nn.Upsample(scale_factor=2, mode='bilinear')", torch.nn.Upsample(scale_factor=2, mode="bilinear"),
         randn(2, 3, 4, 5)),
        ("F.interpolate(x, size=(7, 9), mode='bilinear', align_corners=True)",
         _Fn(lambda x: F.interpolate(x, size=(7, 9), mode="bilinear", align_corners=True)), randn(2, 3, 4, 5)),
        ("F.interpolate(x, size=(3, 7), mode='nearest')",
         _Fn(lambda x: F.interpolate(x, size=(3, 7), mode="nearest")), randn(2, 3, 4, 5))]:
    exported_case(name, module, x)


# --- recurrent ops (LSTM, GRU, RNN: unrolled at import) ----------------------------------
def onnx_recurrent(cell, X, W, R, B=None, h0=None, c0=None, P=None, direction="forward", lbr=0, layout=0,
                   activation="Tanh"):
    """ONNX's LSTM / GRU / RNN in torch (checked against ONNX's own reference below): Y, Y_h, Y_c."""
    if layout:
        X = X.transpose(0, 1)
        h0 = None if h0 is None else h0.transpose(0, 1)
        c0 = None if c0 is None else c0.transpose(0, 1)
    seq, batch, hidden = X.shape[0], X.shape[1], R.shape[-1]
    act = torch.relu if activation == "Relu" else torch.tanh
    ys, hs, cs = [], [], []
    for d in range(W.shape[0]):
        Wd, Rd = W[d], R[d]
        gates = Wd.shape[0] // hidden
        wb, rb = (B[d][:gates * hidden], B[d][gates * hidden:]) if B is not None else (0, 0)
        h = h0[d] if h0 is not None else X.new_zeros(batch, hidden)
        c = c0[d] if c0 is not None else X.new_zeros(batch, hidden)
        out = [None] * seq
        steps = range(seq - 1, -1, -1) if d == 1 or direction == "reverse" else range(seq)
        for t in steps:
            x = X[t]
            if cell == "RNN":
                h = act(x @ Wd.T + h @ Rd.T + wb + rb)
            elif cell == "GRU":
                xw, hr = x @ Wd.T + wb, h @ Rd.T
                xz, xr, xh = xw.split(hidden, -1)
                rz, rr, rh = hr.split(hidden, -1)
                bz, br, bh = (rb.split(hidden) if B is not None else (0, 0, 0))
                z, r = torch.sigmoid(xz + rz + bz), torch.sigmoid(xr + rr + br)
                if lbr:
                    n = torch.tanh(xh + r * (rh + bh))
                else:
                    n = torch.tanh(xh + (r * h) @ Rd[2 * hidden:].T + bh)
                h = (1 - z) * n + z * h
            else:
                g = x @ Wd.T + h @ Rd.T + wb + rb
                i, o, f, cc = g.split(hidden, -1)
                pi, po, pf = P[d].split(hidden) if P is not None else (0, 0, 0)
                i, f = torch.sigmoid(i + pi * c), torch.sigmoid(f + pf * c)
                c = f * c + i * torch.tanh(cc)
                h = torch.sigmoid(o + po * c) * torch.tanh(c)
            out[t] = h
        ys.append(torch.stack(out))
        hs.append(h)
        cs.append(c)
    Y, Y_h, Y_c = torch.stack(ys, 1), torch.stack(hs), torch.stack(cs)
    if layout:
        Y, Y_h, Y_c = Y.permute(2, 0, 1, 3), Y_h.transpose(0, 1), Y_c.transpose(0, 1)
    return Y, Y_h, Y_c


def check_recurrent_reference():
    """The torch reference above agrees with ONNX's own (onnx.backend.test.case.node: one
    direction, no Y_c), so the cases below hold zero to ONNX's semantics."""
    from onnx.backend.test.case.node import gru, lstm, rnn
    x, h = randn(4, 3, 2), 5
    p = lambda *s: 0.5 * randn(*s)  # noqa: E731
    for cell, helper, g in [("LSTM", lstm.LSTM_Helper, 4), ("GRU", gru.GRU_Helper, 3), ("RNN", rnn.RNN_Helper, 1)]:
        for layout in (0, 1):
            for lbr in ((0, 1) if cell == "GRU" else (0,)):
                # ONNX's helpers handle layout 1 only in part: its batch size must be the
                # sequence length, there are no initial states and Y_h is not right.
                t = {"X": x if not layout else x[:3], "W": p(1, g * h, 2), "R": p(1, g * h, h), "B": p(1, 2 * g * h)}
                if layout:
                    t["X"] = t["X"].transpose(1, 0, 2).copy()
                else:
                    t["initial_h"] = p(1, 3, h)
                if cell == "LSTM":
                    t["P"] = p(1, 3 * h)
                    if not layout:
                        t["initial_c"] = p(1, 3, h)
                kw = {"layout": layout} if layout else {}
                if cell == "GRU":
                    kw["linear_before_reset"] = lbr
                Y, Y_h = helper(**{k: v.copy() for k, v in t.items()}, **kw).step()
                T = {k: torch.from_numpy(v).double() for k, v in t.items()}
                ours = onnx_recurrent(cell, T["X"], T["W"], T["R"], T["B"], T.get("initial_h"), T.get("initial_c"),
                                      T.get("P"), lbr=lbr, layout=layout)
                assert_close(f"{cell} layout {layout} lbr {lbr} Y", ours[0].numpy(), Y, rtol=1e-5, atol=1e-6)
                if not layout:
                    assert_close(f"{cell} lbr {lbr} Y_h", ours[1].numpy(), Y_h, rtol=1e-5, atol=1e-6)


R.case("recurrent: the torch reference agrees with ONNX's", check_recurrent_reference)

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def recurrent_case(cell, seq=4, batch=3, inp=5, hidden=4, direction="forward", bias=True, h0=False, c0=False,
                   peepholes=False, lbr=0, layout=0, activation=None, outputs=("Y", "Y_h", "Y_c"), opset=17,
                   lens=False):
    """One ONNX node of `cell` with every float input a parameter; out is the sum of its outputs
    used, weighted by R (grad_case)."""
    dirs, g = (2 if direction == "bidirectional" else 1), GATES[cell]
    x = randn(seq, batch, inp) if not layout else randn(batch, seq, inp)
    state = (dirs, batch, hidden) if not layout else (batch, dirs, hidden)
    params = {"X": x, "W": 0.5 * randn(dirs, g * hidden, inp), "Rec": 0.5 * randn(dirs, g * hidden, hidden)}
    if bias:
        params["B"] = 0.5 * randn(dirs, 2 * g * hidden)
    if h0:
        params["H0"] = randn(*state)
    if c0:
        params["C0"] = randn(*state)
    if peepholes:
        params["P"] = randn(dirs, 3 * hidden)
    names = ["X", "W", "Rec", "B" if bias else "", "lens" if lens else "", "H0" if h0 else "", "C0" if c0 else "", "P" if peepholes else ""]
    while names[-1] == "":
        names.pop()
    outs = [o if o in outputs else "" for o in ("Y", "Y_h", "Y_c")[:3 if cell == "LSTM" else 2]]
    while outs[-1] == "":
        outs.pop()
    attrs = {"hidden_size": hidden}
    if direction != "forward":
        attrs["direction"] = direction
    if layout:
        attrs["layout"] = layout
    if cell == "GRU":
        attrs["linear_before_reset"] = lbr
    if activation:
        attrs["activations"] = [activation] * dirs
    used = [o for o in outs if o]
    nodes = [oh.make_node(cell, names, outs, name=f"{cell.lower()}_node", **attrs)]
    # out = [Y, Y_h, Y_c] flattened and concatenated.
    for o in used:
        nodes.append(oh.make_node("Reshape", [o, "flat"], [o + "_flat"], name=f"flat_{o}"))
    nodes.append(oh.make_node("Concat", [o + "_flat" for o in used], ["out"], name="cat", axis=0))

    def torch_fn(t):
        ys = onnx_recurrent(cell, t["X"], t["W"], t["Rec"], t.get("B"), t.get("H0"), t.get("C0"), t.get("P"),
                            direction, lbr, layout, activation or "Tanh")
        return torch.cat([y.reshape(-1) for y, o in zip(ys, ("Y", "Y_h", "Y_c")) if o in used])
    label = (f"{cell} {direction} seq={seq} bias={bias} h0={h0} c0={c0} peepholes={peepholes} "
             f"lbr={lbr} layout={layout} activation={activation} outputs={','.join(used)} opset {opset}"
             f"{' sequence_lens (all full)' if lens else ''}")
    consts = {"flat": i64(-1), **({"lens": np.full(batch, seq, np.int32)} if lens else {})}
    case(label, params, torch_fn, nodes, consts=consts, opset=opset)


recurrent_case("LSTM")
recurrent_case("LSTM", direction="bidirectional", h0=True, c0=True)
recurrent_case("LSTM", direction="reverse", bias=False, outputs=("Y_h",))
recurrent_case("LSTM", h0=True, c0=True, peepholes=True)
recurrent_case("LSTM", peepholes=True, direction="bidirectional", outputs=("Y", "Y_c"))
recurrent_case("LSTM", layout=1, h0=True, c0=True, direction="bidirectional")
recurrent_case("LSTM", seq=1, opset=7, outputs=("Y_h", "Y_c"))
for lbr in (0, 1):
    recurrent_case("GRU", lbr=lbr)
    recurrent_case("GRU", lbr=lbr, direction="bidirectional", h0=True)
    recurrent_case("GRU", lbr=lbr, direction="reverse", bias=False, outputs=("Y_h",))
recurrent_case("GRU", lbr=1, layout=1, h0=True, opset=14)
recurrent_case("GRU", lbr=1, lens=True)
recurrent_case("RNN")
recurrent_case("RNN", direction="bidirectional", h0=True, layout=1)
recurrent_case("RNN", activation="Relu", h0=True, bias=False)


def module_case(name, module, inputs, world_size=1, stage=0, expect_ops=("LSTM", "GRU", "RNN")):
    """A torch module whose forward(*inputs) is the loss, exported by torch.onnx.export in training
    mode at opset 17 with its parameters as initializers and inputs as graph inputs (fed via --data),
    the export holding one of expect_ops.
    One SGD step at lr 1: the loss zero-run logs and every parameter's gradient (before - after)
    against torch autograd in float64. The export must hold one of `expect_ops`."""
    def run():
        d = os.path.join(tmp, f"module_{_count[0]}_{len(R.failed)}_{world_size}_{stage}")
        _count[0] += 1
        os.makedirs(os.path.join(d, "data"))
        path = os.path.join(d, "model.onnx")
        args_t = tuple(torch.from_numpy(v) for v in inputs.values())
        torch.onnx.export(module, args_t, path, opset_version=17, input_names=list(inputs),
                          output_names=["loss"], training=torch.onnx.TrainingMode.TRAINING,
                          do_constant_folding=False)
        exported = onnx.load(path)
        ops = {n.op_type for n in exported.graph.node}
        assert ops & set(expect_ops), f"none of {expect_ops} in the export: {sorted(ops)}"
        params = {k: v.detach().numpy().copy() for k, v in module.named_parameters()}
        inits = {i.name: nh.to_array(i) for i in exported.graph.initializer if i.data_type == TensorProto.FLOAT}
        assert set(inits) == set(params), f"float initializers {sorted(inits)} != parameters {sorted(params)}"
        for k, v in inputs.items():
            np.save(os.path.join(d, "data", k + ".npy"), v)

        ref = __import__("copy").deepcopy(module).double()
        loss = ref(*(t.double() if t.is_floating_point() else t for t in args_t))
        loss.backward()
        grads = {k: p.grad.numpy() for k, p in ref.named_parameters()}

        plan, log = os.path.join(d, "model.zplan"), os.path.join(d, "log.jsonl")
        run_tool([args.zero_opt, path, "-o", plan, f"--zero-stage={stage}", f"--world-size={world_size}",
                  "--optimizer=sgd", "--lr=1", "--momentum=0", "--weight-decay=0"])
        run_tool([args.zero_run, plan, "--nproc", world_size, "--steps", 1, "--data", os.path.join(d, "data"),
                  "--log", log, "--save-params", os.path.join(d, "out")])
        logged = read_log(log)[0]["loss"]
        assert abs(logged - loss.item()) <= 1e-5 * abs(loss.item()) + 1e-6, f"loss {logged} vs torch {loss.item()}"
        for k, before in params.items():
            after = np.load(os.path.join(d, "out", k + ".npy"))
            assert_close(f"d loss/d {k}", before.astype(np.float64) - after, grads[k], rtol=1e-4, atol=1e-5)
    suffix = f" N={world_size} stage {stage}" if world_size > 1 else ""
    R.case(f"{name} (torch.onnx.export, opset 17){suffix}", run)


from recurrent_models import LstmClassifier  # noqa: E402


class RecurrentRegression(torch.nn.Module):
    """rnn(x[, state]) -> mean squared error of its output against y, plus its final states."""
    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x, y, *state):
        out, last = self.rnn(x, tuple(state) if len(state) > 1 else state[0]) if state else self.rnn(x)
        last = last if isinstance(last, tuple) else (last,)
        return ((out - y) ** 2).mean() + sum(0.1 * s.sum() for s in last)


torch.manual_seed(0)
TOKENS = rng.integers(0, 11, (3, 7)).astype(np.int64)
CLASSES = i64(0, 3, 1)
module_case("LSTM classifier: Embedding, nn.LSTM(batch_first=True), h_n, Linear",
            LstmClassifier(11, 6, 8, 4), {"tokens": TOKENS, "labels": CLASSES})
module_case("LSTM classifier: Embedding, nn.LSTM(batch_first=True), h_n, Linear",
            LstmClassifier(11, 6, 8, 4), {"tokens": TOKENS, "labels": CLASSES}, world_size=2, stage=3)
module_case("nn.GRU(num_layers=2, bidirectional=True)",
            RecurrentRegression(torch.nn.GRU(5, 4, num_layers=2, bidirectional=True)),
            {"x": randn(6, 3, 5), "y": randn(6, 3, 8)})
module_case("nn.LSTM with given h0, c0",
            RecurrentRegression(torch.nn.LSTM(4, 5)),
            {"x": randn(5, 2, 4), "y": randn(5, 2, 5), "h0": randn(1, 2, 5), "c0": randn(1, 2, 5)})
module_case("nn.LSTM(num_layers=2, bidirectional=True, batch_first=True) with h0, c0",
            RecurrentRegression(torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)),
            {"x": randn(2, 5, 3), "y": randn(2, 5, 8), "h0": randn(4, 2, 4), "c0": randn(4, 2, 4)})
module_case("nn.RNN(nonlinearity='relu', bidirectional=True)",
            RecurrentRegression(torch.nn.RNN(4, 3, nonlinearity="relu", bidirectional=True)),
            {"x": randn(5, 2, 4), "y": randn(5, 2, 6)})


class WindowRegression(torch.nn.Module):
    """layers(x) -> mean squared error against y."""
    def __init__(self, *layers):
        super().__init__()
        self.layers = torch.nn.Sequential(*layers)

    def forward(self, x, y):
        return ((self.layers(x) - y) ** 2).mean()


torch.manual_seed(1)
WINDOW_OPS = ("Conv", "ConvTranspose", "MaxPool", "AveragePool")
module_case("nn.Conv1d(groups=2, dilation=2), nn.MaxPool1d(3, 2, dilation=2)",
            WindowRegression(torch.nn.Conv1d(4, 6, 3, padding=1, dilation=2, groups=2),
                             torch.nn.MaxPool1d(3, 2, dilation=2)),
            {"x": randn(2, 4, 13), "y": randn(2, 6, 4)}, expect_ops=WINDOW_OPS)
# count_include_pad=False: PyTorch exports the included padding as a Pad node.
module_case("nn.Conv3d(stride=(1, 2, 1), padding=(1, 0, 1)), nn.AvgPool3d(2, padding=1, count_include_pad=False)",
            WindowRegression(torch.nn.Conv3d(2, 3, (2, 3, 3), stride=(1, 2, 1), padding=(1, 0, 1)),
                             torch.nn.AvgPool3d(2, padding=1, count_include_pad=False)),
            {"x": randn(2, 2, 4, 7, 5), "y": randn(2, 3, 3, 2, 3)}, expect_ops=WINDOW_OPS)
module_case("nn.ConvTranspose2d(stride=2, padding=1, output_padding=1)",
            WindowRegression(torch.nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1)),
            {"x": randn(2, 3, 4, 5), "y": randn(2, 4, 8, 10)}, expect_ops=WINDOW_OPS)
module_case("nn.ConvTranspose2d(stride=2, padding=1, output_padding=1)",
            WindowRegression(torch.nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1)),
            {"x": randn(2, 3, 4, 5), "y": randn(2, 4, 8, 10)}, world_size=2, stage=3, expect_ops=WINDOW_OPS)
module_case("nn.MaxPool3d(2, 1, padding=1), nn.ConvTranspose3d(groups=2, dilation=2)",
            WindowRegression(torch.nn.MaxPool3d(2, 1, padding=1),
                             torch.nn.ConvTranspose3d(4, 2, 2, stride=(1, 2, 1), dilation=2, groups=2)),
            {"x": randn(1, 4, 2, 3, 2), "y": randn(1, 2, 5, 9, 5)}, expect_ops=WINDOW_OPS)
# --- normalizations and Einsum, composed at import ------------------------------------------
for shape, eps in [((2, 3, 4, 5), 1e-5), ((2, 3, 5), 1e-2), ((2, 2, 2, 3, 2), 1e-5)]:
    case(f"InstanceNormalization {list(shape)} epsilon={eps}",
         {"X": randn(*shape), "S": randn(shape[1]), "B": randn(shape[1])},
         lambda t, e=eps: F.instance_norm(t["X"], weight=t["S"], bias=t["B"], eps=e),
         [node("InstanceNormalization", ["X", "S", "B"], epsilon=eps)])
EINSUM = [("bhid,bhjd->bhij", [(2, 2, 3, 4), (2, 2, 5, 4)]), ("bhij,bhjd->bhid", [(2, 2, 3, 5), (2, 2, 5, 4)]),
          ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]), ("ij,jk->ik", [(3, 4), (4, 5)]), ("bi,ij->bj", [(2, 3), (3, 4)]),
          ("i,j->ij", [(3,), (4,)]), ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]), ("...ij->...ji", [(2, 3, 4)]),
          ("bij->bji", [(2, 3, 4)]), ("ij->i", [(3, 4)]), ("bij,bkj->", [(2, 3, 4), (2, 5, 4)]),
          ("...ij,...jk", [(2, 3, 4), (2, 4, 5)]), ("i,i", [(5,)] * 2), ("bid,bd->bi", [(2, 3, 4), (1, 4)]),
          ("b i d , b j d -> b j i", [(2, 3, 4), (2, 5, 4)]), ("ij,jk,k->j", [(3, 4), (4, 5), (5,)]),
          ("bi,bi->bi", [(2, 3), (2, 3)])]
# ONNX 1.12's shape inference rejects ellipses of different ranks, which broadcast (numpy, torch).
EINSUM_BROADCAST_ELLIPSIS = [("...ij,...jk", [(2, 1, 3, 4), (6, 4, 5)])]
for eq, shapes, full_check in [(*c, True) for c in EINSUM] + [(*c, False) for c in EINSUM_BROADCAST_ELLIPSIS]:
    names = [f"X{i}" for i in range(len(shapes))]
    case(f"Einsum '{eq}' {' '.join(str(list(s)) for s in shapes)}", {k: randn(*s) for k, s in zip(names, shapes)},
         lambda t, eq=eq, names=names: torch.einsum(eq.replace(" ", ""), *(t[k] for k in names)),
         [node("Einsum", names, equation=eq)], opset=12, full_check=full_check)


class NormRegression(torch.nn.Module):
    """Mean squared error of norm(conv(x)) (norm(x) without `channels`) against y."""
    def __init__(self, norm, channels=None):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, channels, 3, padding=1) if channels else torch.nn.Identity()
        self.norm = norm

    def forward(self, x, y):
        return ((self.norm(self.conv(x)) - y) ** 2).mean()


class EinsumAttention(torch.nn.Module):
    """Multi-head attention written with torch.einsum, as attention code does."""
    def __init__(self, dim=8, heads=2):
        super().__init__()
        self.heads, self.qkv, self.out = heads, torch.nn.Linear(dim, 3 * dim), torch.nn.Linear(dim, dim)

    def forward(self, x, y):
        b, n, dim = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        attn = torch.softmax(torch.einsum("bhid,bhjd->bhij", q, k) / (dim // self.heads) ** 0.5, -1)
        h = torch.einsum("bhij,bhjd->bhid", attn, v).permute(0, 2, 1, 3).reshape(b, n, dim)
        return ((self.out(h) - y) ** 2).mean()


class EinsumBilinear(torch.nn.Module):
    """nn.Bilinear's product as torch.einsum('bn,anm,bm->ba'), then a cross entropy."""
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(3, 4, 5) * 0.3)
        self.proj = torch.nn.Parameter(torch.randn(4, 5) * 0.3)

    def forward(self, x, labels):
        return F.cross_entropy(torch.einsum("bn,anm,bm->ba", x, self.w, torch.einsum("bn,nm->bm", x, self.proj)),
                               labels)


torch.manual_seed(0)
NORM_X, NORM_Y = randn(3, 2, 4, 5), randn(3, 6, 4, 5)
module_case("nn.InstanceNorm2d(affine=True) after Conv2d",
            NormRegression(torch.nn.InstanceNorm2d(6, affine=True), 6), {"x": NORM_X, "y": NORM_Y},
            expect_ops=["InstanceNormalization"])
module_case("nn.GroupNorm(3, 6) after Conv2d", NormRegression(torch.nn.GroupNorm(3, 6), 6),
            {"x": NORM_X, "y": NORM_Y}, expect_ops=["InstanceNormalization"])
module_case("nn.GroupNorm(3, 6) after Conv2d", NormRegression(torch.nn.GroupNorm(3, 6), 6),
            {"x": NORM_X, "y": NORM_Y}, world_size=2, stage=3, expect_ops=["InstanceNormalization"])
module_case("nn.GroupNorm(2, 4) on [N, C, L]", NormRegression(torch.nn.GroupNorm(2, 4)),
            {"x": randn(3, 4, 6), "y": randn(3, 4, 6)}, expect_ops=["InstanceNormalization"])
module_case("attention with torch.einsum", EinsumAttention(), {"x": randn(2, 5, 8), "y": randn(2, 5, 8)},
            expect_ops=["Einsum"])
module_case("bilinear torch.einsum('bn,anm,bm->ba')", EinsumBilinear(),
            {"x": randn(4, 4), "labels": i64(0, 2, 1, 2)}, expect_ops=["Einsum"])

# --- CNN ops ------------------------------------------------------------------------------
for strides, pads, dilations, group in [((1, 1), (1, 1, 1, 1), (1, 1), 1), ((2, 2), (3, 3, 3, 3), (1, 1), 1),
                                         ((2, 1), (0, 1, 1, 0), (2, 1), 1), ((1, 1), (1, 1, 1, 1), (1, 1), 2)]:
    cin, cout = 4, 6
    k = 7 if pads[0] == 3 else 3
    case(f"Conv k={k} strides={strides} pads={pads} dilations={dilations} group={group}",
         {"X": randn(2, cin, 9, 8), "W": randn(cout, cin // group, k, k), "Bias": randn(cout)},
         lambda t, s=strides, p=pads, d=dilations, g=group: F.conv2d(
             F.pad(t["X"], (p[1], p[3], p[0], p[2])), t["W"], t["Bias"], s, 0, d, g),
         [node("Conv", ["X", "W", "Bias"], strides=list(strides), pads=list(pads),
               dilations=list(dilations), group=group)])
case("MaxPool 3x3 stride 2 pad 1", {"X": randn(2, 3, 7, 6)},
     lambda t: F.max_pool2d(t["X"], 3, 2, 1), [node("MaxPool", ["X"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])])
for include in (0, 1):
    case(f"AveragePool 3x3 stride 2 pad 1 count_include_pad={include}", {"X": randn(2, 3, 7, 6)},
         lambda t, inc=include: F.avg_pool2d(t["X"], 3, 2, 1, count_include_pad=bool(inc)),
         [node("AveragePool", ["X"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
               count_include_pad=include)])
# ceil_mode: the last windows reach past the bottom/right padding (8x6 input).
for pad in (0, 1):
    pads = [pad] * 4
    case(f"MaxPool 3x3 stride 2 pad {pad} ceil_mode", {"X": randn(2, 3, 8, 6)},
         lambda t, p=pad: F.max_pool2d(t["X"], 3, 2, p, ceil_mode=True),
         [node("MaxPool", ["X"], kernel_shape=[3, 3], strides=[2, 2], pads=pads, ceil_mode=1)])
    for include in (0, 1):
        case(f"AveragePool 3x3 stride 2 pad {pad} ceil_mode count_include_pad={include}",
             {"X": randn(2, 3, 8, 6)},
             lambda t, p=pad, inc=include: F.avg_pool2d(t["X"], 3, 2, p, ceil_mode=True,
                                                        count_include_pad=bool(inc)),
             [node("AveragePool", ["X"], kernel_shape=[3, 3], strides=[2, 2], pads=pads,
                   count_include_pad=include, ceil_mode=1)])
# 1-D and 3-D windows, dilated max pooling, ConvTranspose.
case("Conv 1-D k=3 stride 2 pads [1, 2] dilation 2 group 2",
     {"X": randn(2, 4, 11), "W": randn(6, 2, 3), "Bias": randn(6)},
     lambda t: F.conv1d(F.pad(t["X"], (1, 2)), t["W"], t["Bias"], 2, 0, 2, 2),
     [node("Conv", ["X", "W", "Bias"], strides=[2], pads=[1, 2], dilations=[2], group=2)])
case("Conv 3-D k=[2,3,2] strides [1,2,1] pads [1,0,1,0,1,1] auto_pad NOTSET",
     {"X": randn(2, 3, 4, 7, 5), "W": randn(4, 3, 2, 3, 2), "Bias": randn(4)},
     lambda t: F.conv3d(F.pad(t["X"], (1, 1, 0, 1, 1, 0)), t["W"], t["Bias"], (1, 2, 1)),
     [node("Conv", ["X", "W", "Bias"], strides=[1, 2, 1], pads=[1, 0, 1, 0, 1, 1])])
case("Conv 3-D depthwise SAME_UPPER", {"X": randn(1, 3, 5, 4, 3), "W": randn(3, 1, 3, 2, 3)},
     lambda t: F.conv3d(F.pad(t["X"], (1, 1, 0, 1, 1, 1)), t["W"], None, 1, 0, 1, 3),
     [node("Conv", ["X", "W"], auto_pad="SAME_UPPER", group=3)])
case("MaxPool 1-D k=3 stride 2 pad 1 dilation 2", {"X": randn(2, 3, 12)},
     lambda t: F.max_pool1d(t["X"], 3, 2, 1, dilation=2),
     [node("MaxPool", ["X"], kernel_shape=[3], strides=[2], pads=[1, 1], dilations=[2])])
case("MaxPool 2-D k=2 dilations [2, 3] ceil_mode", {"X": randn(2, 2, 9, 10)},
     lambda t: F.max_pool2d(t["X"], 2, 2, 0, dilation=(2, 3), ceil_mode=True),
     [node("MaxPool", ["X"], kernel_shape=[2, 2], strides=[2, 2], dilations=[2, 3], ceil_mode=1)])
case("MaxPool 3-D k=[3,2,3] stride 2 pad 1 dilation [1,2,1]", {"X": randn(2, 2, 5, 6, 7)},
     lambda t: F.max_pool3d(t["X"], (3, 2, 3), 2, 1, dilation=(1, 2, 1)),
     [node("MaxPool", ["X"], kernel_shape=[3, 2, 3], strides=[2, 2, 2], pads=[1] * 6, dilations=[1, 2, 1])])
for include in (0, 1):
    case(f"AveragePool 1-D k=3 stride 2 pad 1 ceil_mode count_include_pad={include}", {"X": randn(2, 3, 8)},
         lambda t, inc=include: F.avg_pool1d(t["X"], 3, 2, 1, ceil_mode=True, count_include_pad=bool(inc)),
         [node("AveragePool", ["X"], kernel_shape=[3], strides=[2], pads=[1, 1], ceil_mode=1,
               count_include_pad=include)])
    case(f"AveragePool 3-D k=[2,3,2] stride [2,1,2] pad 1 count_include_pad={include}",
         {"X": randn(2, 2, 5, 4, 6)},
         lambda t, inc=include: F.avg_pool3d(t["X"], (2, 3, 2), (2, 1, 2), 1, count_include_pad=bool(inc)),
         [node("AveragePool", ["X"], kernel_shape=[2, 3, 2], strides=[2, 1, 2], pads=[1] * 6,
               count_include_pad=include)])
case("ConvTranspose 2-D stride 2 pads [1,0,1,1] output_padding [1,0] dilations [1,2]",
     {"X": randn(2, 3, 4, 5), "W": randn(3, 2, 3, 3), "Bias": randn(2)},
     # PyTorch pads symmetrically: crop the full (pad 0) output to ONNX's asymmetric pads.
     lambda t: F.conv_transpose2d(t["X"], t["W"], t["Bias"], 2, 0, (1, 0), 1, (1, 2))[:, :, 1:-1, 0:-1],
     [node("ConvTranspose", ["X", "W", "Bias"], strides=[2, 2], pads=[1, 0, 1, 1], output_padding=[1, 0],
           dilations=[1, 2])])
case("ConvTranspose 1-D group 2 output_shape [12]", {"X": randn(2, 4, 5), "W": randn(4, 3, 3)},
     # Past the 11 positions the windows reach: 0.
     lambda t: F.pad(F.conv_transpose1d(t["X"], t["W"], None, 2, 0, 0, 2), (0, 1)),
     [node("ConvTranspose", ["X", "W"], strides=[2], group=2, output_shape=[12])])
case("ConvTranspose 3-D SAME_LOWER stride [2,1,2]", {"X": randn(1, 2, 3, 2, 3), "W": randn(2, 3, 3, 2, 2)},
     lambda t: F.conv_transpose3d(t["X"], t["W"], None, (2, 1, 2))[:, :, 1:7, 1:3, 0:6],
     [node("ConvTranspose", ["X", "W"], strides=[2, 1, 2], auto_pad="SAME_LOWER")])
case("GlobalAveragePool", {"X": randn(2, 3, 4, 5)},
     lambda t: t["X"].mean((2, 3), keepdim=True), [node("GlobalAveragePool", ["X"])])
case("BatchNormalization training mode (batch statistics)",
     {"X": randn(4, 3, 2, 2), "G": randn(3), "B": randn(3)},
     lambda t: F.batch_norm(t["X"], None, None, t["G"], t["B"], training=True, eps=1e-5),
     [oh.make_node("BatchNormalization", ["X", "G", "B", "mean", "var"], ["out", "rm", "rv"],
                   name="bn", epsilon=1e-5, momentum=0.9, training_mode=1)],
     consts={"mean": np.zeros(3, np.float32), "var": np.ones(3, np.float32)})

# --- world size 2, ZeRO stage 3: sharding must not change gradients ---------------------
for stage in (3, 2):
    case(f"N=2 stage {stage}: Gemm transB=1 C=[5] alpha=0.7 beta=1.3",
         {"A": randn(3, 4), "B": randn(5, 4), "C": randn(5)},
         lambda t: 0.7 * (t["A"] @ t["B"].T) + 1.3 * t["C"],
         [node("Gemm", ["A", "B", "C"], transB=1, alpha=0.7, beta=1.3)], world_size=2, stage=stage)
case("N=2 stage 3: MatMul [2,1,3,4] [5,4,2]", {"A": randn(2, 1, 3, 4), "B": randn(5, 4, 2)},
     lambda t: torch.matmul(t["A"], t["B"]), [node("MatMul", ["A", "B"])], world_size=2, stage=3)
case("N=2 stage 3: Mul [2,3,4] [3,1]", {"A": randn(2, 3, 4), "B": randn(3, 1)},
     lambda t: t["A"] * t["B"], [node("Mul", ["A", "B"])], world_size=2, stage=3)
case("N=2 stage 3: Softmax axis 1", {"X": randn(2, 3, 4)}, lambda t: torch.softmax(t["X"], 1),
     [node("Softmax", ["X"], axis=1)], world_size=2, stage=3)
case("N=2 stage 3: SoftmaxCrossEntropyLoss ignore_index=1", {"S": randn(6, 5)},
     lambda t: F.cross_entropy(t["S"], t["labels"], ignore_index=1),
     [node("SoftmaxCrossEntropyLoss", ["S", "labels"], ignore_index=1)], inputs={"labels": LABELS},
     world_size=2, stage=3)
case("N=2 stage 3: SoftmaxCrossEntropyLoss weights ignore_index=1", {"S": randn(6, 5)},
     lambda t: F.cross_entropy(t["S"], t["labels"], weight=torch.from_numpy(W).double(), ignore_index=1),
     [node("SoftmaxCrossEntropyLoss", ["S", "labels", "W"], ignore_index=1)], consts={"W": W},
     inputs={"labels": LABELS}, world_size=2, stage=3)
case("N=3 stage 3: odd-sized parameters Pow [5,7] [7]", {"A": positive(5, 7), "B": randn(7)},
     lambda t: torch.pow(t["A"], t["B"]), [node("Pow", ["A", "B"])], world_size=3, stage=3)

R.finish()
