#!/usr/bin/python3
"""End-to-end: zero-opt + zero-run training vs single-process PyTorch.

For both examples (mlp_digits, linear_regression), ZeRO stages 0-3 and world
sizes 1-4: compile, train 30 steps on N ranks, and compare
  * the loss of every step with PyTorch on the same global batch (rel. 1e-4),
  * the weights from --export-onnx with PyTorch's after 30 steps,
  * the arena the runtime measured (log peak_bytes) with the report's peak_bytes.
An LSTM classifier (Embedding, nn.LSTM(batch_first=True), Linear), a small conv net with
padding and upsampling (F.pad reflect, ReplicationPad2d, ZeroPad2d, a crop, bilinear and nearest
F.interpolate) and a small CNN with nn.GroupNorm and nn.InstanceNorm2d, exported here, train a few
steps at a few (stage, N) and are compared the same way.
The examples are exported fresh by examples/export_examples.py into a temp dir;
the PyTorch modules are built by the same code, and the test checks the ONNX
initializers equal their state_dict (and that the committed examples are current).

usage: test_train_vs_pytorch.py --zero-opt PATH --zero-run PATH [-k FILTER]
"""
import json
import os
import sys
import tempfile

import numpy as np
import onnx
import torch
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zero_test_util import (ROOT, Runner, assert_close, check_report_placement, count_plan_instrs,  # noqa: E402
                            parse_args, read_log, run_tool)

sys.path.insert(0, os.path.join(ROOT, "examples"))
import export_examples as ex  # noqa: E402

STEPS = 30
B = ex.MICRO_BATCH
OPTIMIZERS = {
    # name: (zero-opt flags, torch optimizer factory)
    "adamw": (["--optimizer=adamw", "--lr=3e-3", "--beta1=0.9", "--beta2=0.999", "--eps=1e-8", "--weight-decay=0.01"],
              lambda p: torch.optim.AdamW(p, lr=3e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)),
    "sgd": (["--optimizer=sgd", "--lr=0.05", "--momentum=0.9", "--weight-decay=0"],
            lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    "sgd_wd": (["--optimizer=sgd", "--lr=0.05", "--momentum=0.9", "--weight-decay=0.001"],
               lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.001)),
    "adamw_nowd": (["--optimizer=adamw", "--lr=0.01", "--beta1=0.8", "--beta2=0.99", "--eps=1e-6", "--weight-decay=0"],
                   lambda p: torch.optim.AdamW(p, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0)),
}

args = parse_args()
R = Runner(args)
tmp = tempfile.mkdtemp(prefix="zero-train-test-")
T = lambda *n: os.path.join(tmp, *n)  # noqa: E731

# --- the examples, exported fresh --------------------------------------------
ex.main(T("ex"))
MODELS = {name: make() for name, make in ex.EXAMPLES.items()}  # name -> (torch module, data)


def onnx_initializers(path):
    return {i.name: numpy_helper.to_array(i) for i in onnx.load(path).graph.initializer}


def check_initializers_match_torch(name):
    model, _ = MODELS[name]
    inits = onnx_initializers(T("ex", name + ".onnx"))
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    floats = {k: v for k, v in inits.items() if v.dtype == np.float32}
    assert set(floats) == set(sd), f"ONNX float initializers {sorted(floats)} != state_dict {sorted(sd)}"
    for k in sd:
        assert np.array_equal(floats[k], sd[k]), f"initializer {k} differs from the torch module"


def check_committed_example_current(name):
    committed = os.path.join(ROOT, "examples")
    a, b = onnx_initializers(os.path.join(committed, name + ".onnx")), onnx_initializers(T("ex", name + ".onnx"))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a), \
        f"examples/{name}.onnx is stale: rerun examples/export_examples.py"
    for k in ("x", "y"):
        c = np.load(os.path.join(committed, name + "_data", k + ".npy"))
        f = np.load(T("ex", name + "_data", k + ".npy"))
        assert c.dtype == f.dtype and np.array_equal(c, f), f"examples/{name}_data/{k}.npy is stale"


for name in MODELS:
    R.case(f"{name}: ONNX initializers equal the torch module", check_initializers_match_torch, name)
    R.case(f"{name}: committed example is current", check_committed_example_current, name)

# --- PyTorch reference ---------------------------------------------------------
_ref_cache = {}


def reference(name, opt, n):
    """Single-process PyTorch (float64) on the global batch of n*B rows: losses, final state_dict."""
    key = (name, opt, n)
    if key not in _ref_cache:
        torch.manual_seed(0)
        model, data = ex.EXAMPLES[name]()
        model = model.double()
        x = torch.from_numpy(data["x"]).double()
        y = torch.from_numpy(data["y"])
        if y.dtype != torch.int64:
            y = y.double()
        d = len(x)
        o = OPTIMIZERS[opt][1](model.parameters())
        losses = []
        for s in range(STEPS):
            rows = torch.tensor([(s * n * B + i) % d for i in range(n * B)])
            loss = model(x[rows], y[rows])
            losses.append(loss.item())
            o.zero_grad()
            loss.backward()
            o.step()
        _ref_cache[key] = (np.array(losses), {k: v.detach().numpy() for k, v in model.state_dict().items()})
    return _ref_cache[key]


# --- zero-opt + zero-run ---------------------------------------------------------
def train_case(name, opt, stage, n, persist_below=0):
    tag = f"{name}-{opt}-s{stage}-n{n}-p{persist_below}"
    plan, report, log, out = T(tag + ".zplan"), T(tag + ".report.json"), T(tag + ".jsonl"), T(tag + ".onnx")
    persist = [f"--zero-persist-below={persist_below}"] if persist_below else []
    run_tool([args.zero_opt, T("ex", name + ".onnx"), "-o", plan, f"--zero-stage={stage}", f"--world-size={n}",
              *OPTIMIZERS[opt][0], *persist, f"--report={report}"])
    run_tool([args.zero_run, plan, "--nproc", n, "--data", T("ex", name + "_data"), "--steps", STEPS,
              "--log", log, "--export-onnx", out], timeout=180)

    rep = json.load(open(report))
    assert rep["world_size"] == n and rep["zero_stage"] == stage, f"report header {rep['world_size']}/{rep['zero_stage']}"
    assert [r["rank"] for r in rep["ranks"]] == list(range(n)), "report ranks"
    check_report_placement(rep, stage, persist_below)

    ref_losses, ref_params = reference(name, opt, n)
    lines = read_log(log)
    assert [l["step"] for l in lines] == list(range(STEPS)), f"log steps {[l['step'] for l in lines]}"
    losses = np.array([l["loss"] for l in lines], np.float64)
    rel = np.abs(losses - ref_losses) / np.abs(ref_losses)
    if not (rel <= 1e-4).all():
        s = int(np.argmax(rel))
        raise AssertionError(f"loss at step {s}: zero {losses[s]!r} vs torch {ref_losses[s]!r} (rel {rel[s]:.2e}); "
                             f"first bad step {int(np.argmax(rel > 1e-4))}")

    peak = rep["ranks"][0]["peak_bytes"]
    got_peaks = {l["peak_bytes"] for l in lines}
    assert got_peaks == {peak}, f"runtime arena (log peak_bytes) {sorted(got_peaks)} != report peak_bytes {peak}"

    trained = onnx_initializers(out)
    for k, v in ref_params.items():
        assert k in trained, f"{k} missing from --export-onnx output"
        assert trained[k].dtype == np.float32, f"{k}: dtype {trained[k].dtype}"
        assert_close(f"trained {k}", trained[k], v, rtol=1e-4, atol=1e-6)


MAIN = {"mlp_digits": "adamw", "linear_regression": "sgd"}
for name, opt in MAIN.items():
    for stage in range(4):
        for n in (1, 2, 3, 4):
            R.case(f"{name} {opt} stage {stage} N={n}", train_case, name, opt, stage, n)
# The other way round, and other hyper-parameters.
for name, opt, stage, n in [("mlp_digits", "sgd", 1, 3), ("mlp_digits", "sgd_wd", 3, 4),
                            ("linear_regression", "adamw", 2, 3), ("linear_regression", "adamw", 3, 2),
                            ("linear_regression", "adamw_nowd", 0, 4), ("mlp_digits", "adamw_nowd", 2, 2)]:
    R.case(f"{name} {opt} stage {stage} N={n}", train_case, name, opt, stage, n)


# Stage 3's persistence threshold: parameters below it stay replicated, so they need no all-gathers;
# training must still match PyTorch.
def persist_case(name, opt, n, below):
    flags = [T("ex", name + ".onnx"), "--zero-stage=3", f"--world-size={n}", *OPTIMIZERS[opt][0]]
    gathers = count_plan_instrs(args.zero_opt, flags[0], flags[1:], "AllGather")
    persistent = count_plan_instrs(args.zero_opt, flags[0], [*flags[1:], f"--zero-persist-below={below}"],
                                   "AllGather")
    assert persistent < gathers, f"AllGathers with --zero-persist-below={below}: {persistent}, without: {gathers}"
    train_case(name, opt, 3, n, below)


# mlp_digits: the biases (128, 40 bytes) persist below 1024; fc2.weight (1280 bytes) too below 2048.
for name, opt, n, below in [("mlp_digits", "adamw", 2, 1024), ("mlp_digits", "adamw", 3, 2048),
                            ("linear_regression", "sgd", 2, 16)]:
    R.case(f"{name} {opt} stage 3 N={n} --zero-persist-below={below}", persist_case, name, opt, n, below)



# --- a recurrent model: nn.LSTM unrolled at import -----------------------------------
from recurrent_models import LstmClassifier  # noqa: E402


LSTM_STEPS, LSTM_B, LSTM_SEQ = 8, 4, 6


def lstm_data():
    """Labels a function of the tokens (which of three ranges their sum falls in), so the loss falls."""
    g = np.random.default_rng(7)
    tokens = g.integers(0, 13, (24, LSTM_SEQ)).astype(np.int64)
    return {"tokens": tokens, "labels": np.digitize(tokens.sum(1), [30, 42]).astype(np.int64)}


def module_train_case(tag, make_model, data, steps, batch, opt, stage, n):
    """make_model()(*data) is the loss; trained `steps` steps of `batch` rows per rank on N ranks, the
    rows in order (wrapping around); losses, trained weights and the arena compared with PyTorch's."""
    d = T(tag)
    os.makedirs(os.path.join(d, "data"))
    for k, v in data.items():
        np.save(os.path.join(d, "data", k + ".npy"), v)
    torch.manual_seed(0)
    model = make_model()
    path = os.path.join(d, "model.onnx")
    torch.onnx.export(model, tuple(torch.from_numpy(v[:batch]) for v in data.values()), path,
                      input_names=list(data), output_names=["loss"], opset_version=17,
                      training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False)
    ref = model.double()
    everything = tuple(torch.from_numpy(v) if v.dtype != np.float32 else torch.from_numpy(v).double()
                       for v in data.values())
    before = ref(*everything).item()
    o = OPTIMIZERS[opt][1](ref.parameters())
    ref_losses = []
    rows_total = len(next(iter(data.values())))
    for s in range(steps):
        rows = torch.tensor([(s * n * batch + i) % rows_total for i in range(n * batch)])
        loss = ref(*(t[rows] for t in everything))
        ref_losses.append(loss.item())
        o.zero_grad()
        loss.backward()
        o.step()
    plan, report, log, out = (os.path.join(d, f) for f in ("model.zplan", "report.json", "log.jsonl", "out.onnx"))
    run_tool([args.zero_opt, path, "-o", plan, f"--zero-stage={stage}", f"--world-size={n}", *OPTIMIZERS[opt][0],
              f"--report={report}"])
    run_tool([args.zero_run, plan, "--nproc", n, "--data", os.path.join(d, "data"), "--steps", steps,
              "--log", log, "--export-onnx", out], timeout=180)
    lines = read_log(log)
    losses = np.array([l["loss"] for l in lines], np.float64)
    rel = np.abs(losses - ref_losses) / np.abs(ref_losses)
    assert (rel <= 1e-4).all(), f"losses {losses} vs torch {ref_losses} (max rel {rel.max():.2e})"
    after = ref(*everything).item()
    assert after < before, f"the reference does not learn: full-dataset loss {before} -> {after}"
    peak = json.load(open(report))["ranks"][0]["peak_bytes"]
    assert {l["peak_bytes"] for l in lines} == {peak}, "runtime arena (log peak_bytes) != report peak_bytes"
    trained = onnx_initializers(out)
    for k, v in ref.state_dict().items():
        assert_close(f"trained {k}", trained[k], v.numpy(), rtol=1e-4, atol=1e-5)


def lstm_train_case(opt, stage, n):
    module_train_case(f"lstm-{opt}-s{stage}-n{n}", lambda: LstmClassifier(13, 8, 12, 3), lstm_data(), LSTM_STEPS,
                      LSTM_B, opt, stage, n)


for opt, stage, n in [("adamw_nowd", 0, 1), ("adamw_nowd", 3, 2), ("sgd", 2, 3)]:
    R.case(f"LSTM classifier (nn.LSTM, batch_first) {opt} stage {stage} N={n}", lstm_train_case, opt, stage, n)


# --- padding and upsampling (Pad, Resize composed at import) --------------------------
class PadUpsampleNet(torch.nn.Module):
    """Reflection-padded conv, bilinear upsampling, replication-padded conv, a zero pad and a crop."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(2, 4, 3)
        self.conv2 = torch.nn.Conv2d(4, 1, 3)

    def forward(self, x, target):
        h = torch.relu(self.conv1(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")))
        h = torch.nn.functional.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)
        h = self.conv2(torch.nn.ReplicationPad2d(1)(h))
        h = torch.nn.functional.pad(torch.nn.ZeroPad2d((1, 0, 1, 0))(h), (0, -1, 0, -1))
        h = h + torch.nn.functional.interpolate(x[:, :1], scale_factor=2, mode="nearest")
        return ((h - target) ** 2).mean()


def pad_upsample_data():
    g = np.random.default_rng(11)
    x = g.standard_normal((16, 2, 5, 5)).astype(np.float32)
    return {"x": x, "target": g.standard_normal((16, 1, 10, 10)).astype(np.float32)}


for opt, stage, n in [("adamw_nowd", 0, 1), ("sgd", 3, 2)]:
    R.case(f"reflect/replicate/zero pads and nearest/bilinear upsampling {opt} stage {stage} N={n}",
           module_train_case, f"pad-upsample-{opt}-s{stage}-n{n}", PadUpsampleNet, pad_upsample_data(), 8, 4,
           opt, stage, n)


# --- a CNN with nn.GroupNorm (exported as Reshape, InstanceNormalization, Reshape, Mul, Add) ---
class GroupNormClassifier(torch.nn.Module):
    """Conv -> nn.GroupNorm -> ReLU -> Conv -> nn.InstanceNorm2d(affine) -> mean over space -> Linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 6, 3, padding=1)
        self.gn = torch.nn.GroupNorm(3, 6)
        # No bias: instance normalization cancels it (a zero gradient, up to rounding, that AdamW
        # would scale into steps of noise).
        self.conv2 = torch.nn.Conv2d(6, 4, 3, padding=1, bias=False)
        self.inorm = torch.nn.InstanceNorm2d(4, affine=True)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, images, labels):
        h = torch.relu(self.gn(self.conv1(images)))
        h = torch.relu(self.inorm(self.conv2(h))).mean((2, 3))
        return torch.nn.functional.cross_entropy(self.fc(h), labels)


def group_norm_data():
    """Labels: whether the image's top half is brighter than its bottom half."""
    g = np.random.default_rng(11)
    images = g.standard_normal((16, 1, 6, 6)).astype(np.float32)
    return {"images": images, "labels": (images[:, 0, :3].sum((1, 2)) > images[:, 0, 3:].sum((1, 2))).astype(np.int64)}


for opt, stage, n in [("adamw_nowd", 0, 1), ("sgd", 3, 2)]:
    R.case(f"GroupNorm CNN (nn.GroupNorm, nn.InstanceNorm2d) {opt} stage {stage} N={n}", module_train_case,
           f"groupnorm-{opt}-s{stage}-n{n}", GroupNormClassifier, group_norm_data(), 6, 4,
           opt, stage, n)

R.finish()
