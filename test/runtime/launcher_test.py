#!/usr/bin/python3
"""zero-run launcher tests: training runs and every error path.

usage: launcher_test.py ZERO_RUN MAKE_TEST_PLAN
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

ZERO_RUN, MAKE_PLAN = sys.argv[1], sys.argv[2]
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
failures = []


def run(*args, timeout=120):
    p = subprocess.run([ZERO_RUN, *map(str, args)], capture_output=True, text=True, env=ENV, timeout=timeout)
    return p.returncode, p.stderr


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else ": " + detail))
    if not cond:
        failures.append(name)


def expect_error(name, args, text):
    """Exit code 1 and exactly one line on stderr, an error containing text
    (under --nproc too: no mpirun banner, no copy per rank)."""
    rc, err = run(*args)
    lines = [l for l in err.splitlines() if l.strip()]
    check(name, rc == 1 and len(lines) == 1 and lines[0].startswith("zero-run: error:") and text in lines[0],
          f"rc={rc} stderr={err.strip()[-600:]!r}")


def plan(path, *args):
    subprocess.run([MAKE_PLAN, path, *map(str, args)], check=True)


def read_log(path):
    with open(path) as f:
        return [json.loads(l) for l in f]


tmp = tempfile.mkdtemp(prefix="zero-run-test-")
T = lambda n: os.path.join(tmp, n)

# Dataset: 32 rows, 3 features, y = x @ [1, -2, 0.5].
rng = np.random.default_rng(0)
data = T("data")
os.mkdir(data)
x = rng.uniform(-1, 1, (32, 3)).astype("<f4")
np.save(os.path.join(data, "x.npy"), x)
np.save(os.path.join(data, "y.npy"), (x @ np.array([[1], [-2], [0.5]], "<f4")).astype("<f4"))

plan(T("p1.zplan"), "--world-size", 1, "--batch", 8)
plan(T("p2.zplan"), "--world-size", 2, "--batch", 4)
plan(T("p2s.zplan"), "--world-size", 2, "--batch", 4, "--sharded")

# --- training runs ---------------------------------------------------------
rc, err = run(T("p1.zplan"), "--data", data, "--steps", 30, "--log", T("l1.jsonl"), "--save-params", T("out1"))
check("single rank trains", rc == 0, err)
l1 = read_log(T("l1.jsonl"))
check("log has one line per step", [r["step"] for r in l1] == list(range(30)), str(l1[:2]))
check("log fields", all(k in l1[0] for k in ("step", "loss", "ms", "peak_bytes", "rss_bytes")), str(l1[0]))
check("loss decreases", l1[-1]["loss"] < 0.5 * l1[0]["loss"], f"{l1[0]['loss']} -> {l1[-1]['loss']}")
w1 = np.load(T("out1/W.npy"))
check("saved parameter shape", w1.shape == (3, 1) and w1.dtype == np.float32, str(w1.shape))

# Reference: the same SGD on the same global batches in numpy.
w = np.array([[0.1], [0.2], [0.3]], np.float64)
y = x.astype(np.float64) @ np.array([[1], [-2], [0.5]])
ref_losses = []
for s in range(30):
    rows = [(s * 8 + j) % 32 for j in range(8)]
    xb, yb = x[rows].astype(np.float64), y[rows]
    d = xb @ w - yb
    ref_losses.append(float((d ** 2).mean()))
    w -= 0.1 * (xb.T @ (2 * d / 8))
check("single rank matches numpy", np.allclose(w1, w, atol=1e-4) and
      np.allclose([r["loss"] for r in l1], ref_losses, rtol=1e-4, atol=1e-6), f"{w1.ravel()} vs {w.ravel()}")

for name, p in (("replicated", "p2.zplan"), ("sharded", "p2s.zplan")):
    rc, err = run(T(p), "--nproc", 2, "--data", data, "--steps", 30, "--log", T(f"l_{name}.jsonl"),
                  "--save-params", T(f"out_{name}"))
    check(f"2 ranks ({name}) train", rc == 0, err[-800:])
    if rc == 0:
        l2 = read_log(T(f"l_{name}.jsonl"))
        w2 = np.load(T(f"out_{name}/W.npy"))
        check(f"2 ranks ({name}) match 1 rank", np.allclose([r["loss"] for r in l2], [r["loss"] for r in l1],
              rtol=1e-5, atol=1e-7) and np.allclose(w2, w1, atol=1e-6), f"{w2.ravel()} vs {w1.ravel()}")

rc, err = run(T("p1.zplan"), "--synthetic", "--steps", 5, "--log", T("syn.jsonl"))
check("synthetic run", rc == 0 and len(read_log(T("syn.jsonl"))) == 5, err)

# --- ONNX export ---------------------------------------------------------------
try:
    import onnx
    from onnx import helper, TensorProto, numpy_helper
except ImportError:
    onnx = None
if onnx is not None:
    g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["pred"])], "linreg",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 3]),
                           helper.make_tensor_value_info("W", TensorProto.FLOAT, [3, 1])],
                          [helper.make_tensor_value_info("pred", TensorProto.FLOAT, [8, 1])])
    onnx.save(helper.make_model(g), T("src.onnx"))
    plan(T("p1onnx.zplan"), "--world-size", 1, "--batch", 8, "--onnx", T("src.onnx"))
    rc, err = run(T("p1onnx.zplan"), "--data", data, "--steps", 30, "--export-onnx", T("trained.onnx"))
    check("export onnx", rc == 0, err)
    if rc == 0:
        m = onnx.load(T("trained.onnx"))
        inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
        check("exported initializer holds trained W", "W" in inits and np.allclose(inits["W"], w1, atol=1e-6),
              str(inits))
expect_error("export onnx without a model", [T("p1.zplan"), "--synthetic", "--export-onnx", T("x.onnx")],
             "no valid ONNX model")

# --- model state: BatchNorm running statistics (Parameter.trainable = false) ----
bn_data = T("bn_data")
os.mkdir(bn_data)
bx = rng.uniform(-1, 3, (16, 2, 3, 3)).astype("<f4")
np.save(os.path.join(bn_data, "x.npy"), bx)


def bn_reference(steps, nproc, b):
    """scale, bias (SGD on the global mean of y^2) and rank 0's running statistics."""
    scale, bias = np.array([1.0, 0.5]), np.array([0.0, 0.1])
    rm, rv = np.zeros(2), np.ones(2)
    losses = []
    for s in range(steps):
        ds, db, loss = np.zeros(2), np.zeros(2), 0.0
        for r in range(nproc):
            xb = bx[[((s * nproc + r) * b + j) % 16 for j in range(b)]].astype(np.float64)
            m, v = xb.mean(axis=(0, 2, 3)), xb.var(axis=(0, 2, 3))
            xhat = (xb - m[None, :, None, None]) / np.sqrt(v + 1e-5)[None, :, None, None]
            y = xhat * scale[None, :, None, None] + bias[None, :, None, None]
            loss += (y ** 2).mean() / nproc
            ds += (2 * y / y.size * xhat).sum(axis=(0, 2, 3)) / nproc
            db += (2 * y / y.size).sum(axis=(0, 2, 3)) / nproc
            if r == 0:
                n = b * 9
                rm, rv = 0.9 * rm + 0.1 * m, 0.9 * rv + 0.1 * v * n / (n - 1)
        losses.append(loss)
        scale, bias = scale - 0.1 * ds, bias - 0.1 * db
    return {"bn.weight": scale, "bn.bias": bias, "bn.running_mean": rm, "bn.running_var": rv}, losses


for nproc, b in ((1, 8), (2, 4)):
    plan(T(f"bn{nproc}.zplan"), "--batchnorm", "--world-size", nproc, "--batch", b)
    rc, err = run(T(f"bn{nproc}.zplan"), *(["--nproc", nproc] if nproc > 1 else []), "--data", bn_data,
                  "--steps", 5, "--log", T(f"bn{nproc}.jsonl"), "--save-params", T(f"bn_out{nproc}"))
    check(f"batchnorm plan trains ({nproc} rank(s))", rc == 0, err[-800:])
    if rc == 0:
        want, losses = bn_reference(5, nproc, b)
        got = {k: np.load(T(f"bn_out{nproc}/{k}.npy")) for k in want}
        check(f"model state saved with the parameters ({nproc} rank(s))",
              all(np.allclose(got[k], want[k], atol=1e-5) for k in want) and
              np.allclose([r["loss"] for r in read_log(T(f"bn{nproc}.jsonl"))], losses, rtol=1e-5),
              f"{got} vs {want}")

if onnx is not None:
    g = helper.make_graph(
        [helper.make_node("BatchNormalization", ["x", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"],
                          ["y"], epsilon=1e-5, momentum=0.9)], "bn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 2, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8, 2, 3, 3])])
    onnx.save(helper.make_model(g), T("bn.onnx"))
    plan(T("bn_onnx.zplan"), "--batchnorm", "--batch", 8, "--onnx", T("bn.onnx"))
    rc, err = run(T("bn_onnx.zplan"), "--data", bn_data, "--steps", 5, "--export-onnx", T("bn_trained.onnx"))
    check("export onnx with model state", rc == 0, err)
    if rc == 0:
        inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(T("bn_trained.onnx")).graph.initializer}
        want, _ = bn_reference(5, 1, 8)
        check("exported initializers hold trained parameters and running statistics",
              set(inits) == set(want) and all(np.allclose(inits[k], want[k], atol=1e-5) for k in want), str(inits))

# --- errors ------------------------------------------------------------------
with open(T("garbage.zplan"), "wb") as f:
    f.write(b"this is not a plan at all" * 10)
expect_error("bad plan file", [T("garbage.zplan"), "--synthetic"], "not a zero plan")
good = open(T("p1.zplan"), "rb").read()
with open(T("trunc.zplan"), "wb") as f:
    f.write(good[: len(good) // 2])
expect_error("truncated plan", [T("trunc.zplan"), "--synthetic"], "corrupt or truncated plan")
expect_error("missing plan", [T("nope.zplan"), "--synthetic"], "nope.zplan: cannot open plan")
plan(T("v2.zplan"), "--version", 2)
expect_error("other format version", [T("v2.zplan"), "--synthetic"], "plan format version 2 is not supported")
plan(T("cuda.zplan"), "--backend", "cuda")
# The CUDA backend is a module zero-run loads for CUDA plans only: built
# without CUDA, the module is missing; with it on a machine without a GPU
# (CI), it loads and finds no GPU; with a GPU the plan runs.
module = os.path.join(os.path.dirname(ZERO_RUN), "..", "lib", "libzero_cuda.so")
want = "no GPU is available" if os.path.exists(module) else "cannot load the CUDA backend"
rc, err = run(T("cuda.zplan"), "--synthetic")
check("cuda plan", rc == 0 or ("zero-run: error:" in err and "plan targets CUDA but " + want in err),
      f"rc={rc} stderr={err.strip()[-600:]!r}")
needed = subprocess.run(["readelf", "-d", ZERO_RUN], capture_output=True, text=True).stdout
check("zero-run links no CUDA library", "NEEDED" in needed and
      not any(lib in needed for lib in ("libcudart", "libcublas", "libnccl", "libcuda.")), needed)
# A copy without lib/ beside it: the module is not found, a clear error.
os.makedirs(T("alone/bin"))
alone = T("alone/bin/zero-run")
subprocess.run(["cp", ZERO_RUN, alone], check=True)
p = subprocess.run([alone, T("cuda.zplan"), "--synthetic"], capture_output=True, text=True, env=ENV, timeout=60)
check("cuda module missing", p.returncode == 1 and "plan targets CUDA but cannot load the CUDA backend" in p.stderr,
      p.stderr[-600:])
# CPU plans never need it.
p = subprocess.run([alone, T("p1.zplan"), "--synthetic"], capture_output=True, text=True, env=ENV, timeout=60)
check("cpu plan without the cuda module", p.returncode == 0, p.stderr[-600:])
expect_error("world size mismatch (1 rank)", [T("p2.zplan"), "--synthetic"],
             "compiled for world size 2 but running with 1 rank(s)")
expect_error("world size mismatch (3 ranks)", [T("p2.zplan"), "--nproc", 3, "--synthetic"],
             "error: " + T("p2.zplan") + ": plan was compiled for world size 2 but running with 3 rank(s)")
os.mkdir(T("partial"))
np.save(T("partial/x.npy"), x)
expect_error("missing npy", [T("p1.zplan"), "--data", T("partial")], "missing data file")
expect_error("missing npy (2 ranks)", [T("p2.zplan"), "--nproc", 2, "--data", T("partial")], "missing data file")
os.mkdir(T("misshaped"))
np.save(T("misshaped/x.npy"), rng.uniform(size=(32, 4)).astype("<f4"))
np.save(T("misshaped/y.npy"), np.zeros((32, 1), "<f4"))
expect_error("mis-shaped npy", [T("p1.zplan"), "--data", T("misshaped")],
             "x.npy: shape [32, 4] but plan input 'x' needs [D, 3]")
os.mkdir(T("mistyped"))
np.save(T("mistyped/x.npy"), x.astype("<f8"))
np.save(T("mistyped/y.npy"), np.zeros((32, 1), "<f4"))
expect_error("mis-typed npy", [T("p1.zplan"), "--data", T("mistyped")], "dtype '<f8' is not supported")
expect_error("unwritable log", [T("p1.zplan"), "--synthetic", "--log", "/nonexistent/dir/log.jsonl"],
             "cannot open log file /nonexistent/dir/log.jsonl")
expect_error("unwritable log (2 ranks)", [T("p2.zplan"), "--nproc", 2, "--synthetic", "--log", "/nonexistent/l"],
             "cannot open log file /nonexistent/l")
expect_error("unknown flag", [T("p1.zplan"), "--frobnicate"], "unknown option --frobnicate")
expect_error("bad steps", [T("p1.zplan"), "--steps", "many"], "invalid value 'many' for --steps")


# --- forward-only plan: --save-outputs, scalar and rank-1 inputs ------------
plan(T("fwd.zplan"), "--forward", "--batch", 2, "--features", 4, "--k", 3)
fdata = T("fdata")
os.mkdir(fdata)
fx = rng.uniform(-1, 1, (5, 4)).astype("<f4")
fidx = np.array([0, -1, 2, 3, -4, 1, 1], "<i8")  # rank-1 input: rows are scalars
np.save(os.path.join(fdata, "x.npy"), fx)
np.save(os.path.join(fdata, "idx.npy"), fidx)
np.save(os.path.join(fdata, "scale.npy"), np.array(1.5, "<f4"))  # rank-0 input: shape ()
rc, err = run(T("fwd.zplan"), "--data", fdata, "--steps", 2, "--log", T("fwd.jsonl"), "--save-outputs", T("fout"))
check("forward-only plan runs", rc == 0, err)
flog = read_log(T("fwd.jsonl"))
check("forward-only log has null loss", [r["loss"] for r in flog] == [None, None], str(flog))
# Outputs after the last step (step 1): x rows (2 + j) % 5, idx rows (3 + j) % 7.
xb = fx[[(2 + j) % 5 for j in range(2)]].astype(np.float64)
ib = fidx[[(3 + j) % 7 for j in range(3)]]
norm = (xb - xb.mean(1, keepdims=True)) / np.sqrt(xb.var(1, keepdims=True) + 1e-5)
files = sorted(os.listdir(T("fout"))) if os.path.isdir(T("fout")) else []
check("one npy per output, '/' sanitized", files == ["ids.npy", "out_g.npy", "out_y.npy"], str(files))
if files == ["ids.npy", "out_g.npy", "out_y.npy"]:
    oy, og, oi = (np.load(T("fout/" + n)) for n in ("out_y.npy", "out_g.npy", "ids.npy"))
    check("output y (layer norm * scalar)", oy.dtype == np.float32 and oy.shape == (2, 4)
          and np.allclose(oy, 1.5 * norm, atol=1e-5), str(oy))
    check("output g (gather axis 1)", og.shape == (2, 3) and np.array_equal(og, xb.astype(np.float32)[:, ib]), str(og))
    check("output ids (int64)", oi.dtype == np.int64 and np.array_equal(oi, ib), str(oi))
np.save(os.path.join(fdata, "scale.npy"), np.array([1.5], "<f4"))
expect_error("scalar input needs shape ()", [T("fwd.zplan"), "--data", fdata],
             "scale.npy: shape [1] but plan input 'scale' is a scalar and needs shape ()")
np.save(os.path.join(fdata, "scale.npy"), np.array(1.5, "<f4"))
np.save(os.path.join(fdata, "idx.npy"), fidx.reshape(7, 1))
expect_error("rank-1 input needs shape [D]", [T("fwd.zplan"), "--data", fdata], "needs [D]")
np.save(os.path.join(fdata, "idx.npy"), np.array([0, 9, 1], "<i8"))
expect_error("gather index out of range", [T("fwd.zplan"), "--data", fdata], "index 9 out of range [-4, 4)")
rc, err = run(T("fwd.zplan"), "--synthetic", "--steps", 2)
check("forward-only plan with --synthetic", rc == 0, err)
expect_error("--save-outputs needs outputs", [T("p1.zplan"), "--data", data, "--save-outputs", T("nope")],
             "--save-outputs needs a forward-only plan")


# --- a rank dies -------------------------------------------------------------
def children(pid):
    """(pid, cmdline) of the processes whose parent is pid."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if ppid == pid:
            found.append((int(d), cmd))
    return found


def rank_pids(launcher_pid):
    """The rank processes: children of the mpirun the launcher started, running zero-run."""
    return [pid for mpirun, cmd in children(launcher_pid) if cmd.startswith(b"mpirun")
            for pid, rank_cmd in children(mpirun) if b"zero-run" in rank_cmd]


def long_run(timeout_s):
    p = subprocess.Popen([ZERO_RUN, T("p2.zplan"), "--nproc", "2", "--synthetic", "--steps", "1000000000",
                          "--timeout-s", str(timeout_s)], env=ENV, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    pids = []
    while time.time() < deadline and len(pids) < 2:
        time.sleep(0.2)
        pids = rank_pids(p.pid)
    time.sleep(2)  # let the ranks get into their step loop (slower under the sanitizers)
    return p, pids


for sig, name, limit in ((signal.SIGKILL, "killed rank", 30), (signal.SIGSTOP, "hung rank (watchdog)", 30)):
    p, pids = long_run(timeout_s=3)
    if len(pids) != 2:
        p.kill()
        check(name, False, f"found rank pids {pids}")
        continue
    t0 = time.time()
    os.kill(pids[1], sig)
    try:
        _, err = p.communicate(timeout=limit)
        rc, elapsed = p.returncode, time.time() - t0
        check(name + " ends the job", rc == 1 and elapsed < limit, f"rc={rc} after {elapsed:.1f}s")
        lines = [l for l in err.splitlines() if l.strip()]
        if sig == signal.SIGSTOP:
            check("watchdog message", len(lines) == 1 and "did not finish within 3 s (--timeout-s)" in lines[0],
                  err[-600:])
        else:
            check("killed rank: one line naming rank, pid, signal and step", len(lines) == 1 and
                  re.fullmatch(rf"zero-run: error: rank 1 \(pid {pids[1]}\) was killed by signal 9 \(Killed\) "
                               r"at step \d+; all ranks stopped", lines[0]) is not None, err[-600:])
    except subprocess.TimeoutExpired:
        p.kill()
        check(name + " ends the job", False, "still running")
    for pid in pids:  # a stopped rank left behind must not linger
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

print(f"{len(failures)} failure(s)" if failures else "all launcher tests passed")
sys.exit(1 if failures else 0)
