#!/usr/bin/python3
"""The model zoo: one small model per family people train, written the way their projects write
them, exported as a user would (torch.onnx.export, opset 17, TrainingMode.TRAINING,
do_constant_folding=False) and trained by zero-opt + zero-run with no change to the model code
beyond --freeze for float buffers (zoo_models.py has the models and what each stands for).

For each family: compile at ZeRO stage 3 for N = 2 ranks (models with BatchNorm, whose statistics
are per rank as in torch DDP without SyncBatchNorm, at N = 1 and N = 2), train STEPS steps of AdamW
on micro-batches of B rows, and compare
  * every step's loss with float64 PyTorch on the same rows (relative LOSS_RTOL),
  * the trained weights from --export-onnx with PyTorch's (rtol 1e-3, atol 0.5% of the largest
    movement Adam allows, lr * STEPS; test_models.py says why),
  * that float buffers named by --freeze come back unchanged.
The reference is the module converted to float64, loaded with the exported initializers (an
export in training mode runs the module once, which moves BatchNorm's running statistics), and
trained with torch.optim.AdamW on rank r's rows ((s * N + r) * B + j) mod D at step s by one
replica per rank with its own BatchNorm statistics, the gradients averaged over ranks: what torch
DDP computes (test_resnet.py runs real DDP processes).

usage: test_zoo.py --zero-opt PATH --zero-run PATH [-k FILTER] [-v]
"""
import copy
import os
import sys
import tempfile
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zoo_models  # noqa: E402
from zero_test_util import (Runner, assert_close, assert_losses_close, loss_errors, onnx_initializers,  # noqa: E402
                            parse_args, read_log, run_tool)

STEPS, B = 5, 2
LR = 1e-3
OPT_FLAGS = ["--optimizer=adamw", f"--lr={LR}", "--weight-decay=0.01"]
LOSS_RTOL = 1e-4
W_RTOL, W_ATOL = 1e-3, 5e-3 * LR * STEPS
# Gradients below this fraction of the model's largest are float64 rounding noise (~1e-16);
# float32's noise is ~1e-7. |m / sqrt(v)| of bias-corrected Adam stays below 3.2 (beta1 0.9,
# beta2 0.999).
GRADIENT_FREE, ADAM_BOUND = 1e-9, 3.2
STATS_RTOL = 2e-2

torch.set_num_threads(1)
args = parse_args()
R = Runner(args)
tmp = tempfile.mkdtemp(prefix="zero-zoo-test-")
T = lambda *n: os.path.join(tmp, *n)  # noqa: E731


def rank_rows(step, n, rank, rows):
    return [((step * n + rank) * B + j) % rows for j in range(B)]


def export(family, model, data):
    path = T(family + ".onnx")
    names = list(data)
    example = tuple(torch.from_numpy(data[k][:B]) for k in names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, example, path, input_names=names, output_names=["loss"], opset_version=17,
                          training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False)
    os.makedirs(T(family + "_data"), exist_ok=True)
    for k, v in data.items():
        np.save(T(family + "_data", k + ".npy"), v)
    return path


def reference(model, data, init, n):
    """float64 PyTorch: n replicas (one per rank, each with its own buffers) whose gradients are
    averaged; per-step mean losses, rank 0's final state, and each parameter's largest gradient
    magnitudes over the steps."""
    model = copy.deepcopy(model).double()
    with torch.no_grad():
        for k, v in model.state_dict().items():
            if k in init and v.is_floating_point():
                v.copy_(torch.from_numpy(init[k].astype(np.float64)))
    replicas = [model] + [copy.deepcopy(model) for _ in range(n - 1)]
    params = [list(m.parameters()) for m in replicas]
    opt = torch.optim.AdamW(params[0], lr=LR, weight_decay=0.01)
    tensors = {k: torch.from_numpy(v.astype(np.float64) if v.dtype == np.float32 else v) for k, v in data.items()}
    rows = len(next(iter(data.values())))
    losses = []
    names = [k for k, _ in model.named_parameters()]
    largest = {k: torch.zeros_like(p) for k, p in model.named_parameters()}
    for step in range(STEPS):
        total = 0.0
        grads = [torch.zeros_like(p) for p in params[0]]
        for rank, m in enumerate(replicas):
            idx = torch.tensor(rank_rows(step, n, rank, rows))
            loss = m(*(t[idx] for t in tensors.values()))
            total += loss.item() / n
            m.zero_grad()
            loss.backward()
            for g, p in zip(grads, params[rank]):
                if p.grad is not None:
                    g += p.grad / n
        for k, g, p in zip(names, grads, params[0]):
            p.grad = g
            largest[k] = torch.maximum(largest[k], g.abs())
        opt.step()
        with torch.no_grad():
            for replica in params[1:]:
                for p, p0 in zip(replica, params[0]):
                    p.copy_(p0)
        losses.append(total)
    return (np.array(losses), {k: v.detach().numpy() for k, v in model.state_dict().items()},
            {k: v.numpy() for k, v in largest.items()})


def check_weight(name, trained, want, init, largest, top):
    """trained vs the reference's weights. An element whose gradient is zero in exact arithmetic
    (a key bias before softmax, a bias a normalisation removes) has only rounding noise for a
    gradient, which Adam scales up to steps of ~lr: there only Adam's bound on the movement holds."""
    free = largest is not None and largest < GRADIENT_FREE * top
    if free is not False and free.any():
        bound = ADAM_BOUND * LR * STEPS + LR * 0.01 * STEPS * np.abs(init)
        moved = np.abs(trained.astype(np.float64) - init)
        assert (moved[free] <= bound[free]).all(), f"{name}: a gradient-free element moved past Adam's bound"
        trained, want = trained[~free], want[~free]
    assert_close(name, trained, want, W_RTOL, W_ATOL)


def train(family, n):
    spec = zoo_models.FAMILIES[family]
    torch.manual_seed(0)
    model, data = spec.make()
    path = export(family, copy.deepcopy(model), data)
    init = onnx_initializers(path)
    freeze = [f"--freeze={spec.freeze}"] if spec.freeze else []
    tag = f"{family}-n{n}"
    plan, log, out = T(tag + ".zplan"), T(tag + ".jsonl"), T(tag + ".trained.onnx")
    run_tool([args.zero_opt, path, "-o", plan, "--zero-stage=3", f"--world-size={n}", *OPT_FLAGS, *freeze])
    run_tool([args.zero_run, plan, "--nproc", n, "--data", T(family + "_data"), "--steps", STEPS, "--log", log,
              "--export-onnx", out], timeout=180)

    ref_losses, ref_state, largest = reference(model, data, init, n)
    top = max(float(v.max()) for v in largest.values())
    losses, rel = loss_errors(read_log(log), ref_losses, STEPS)
    assert_losses_close(losses, ref_losses, rel, LOSS_RTOL)
    trained = onnx_initializers(out)
    compared = 0
    for k, want in ref_state.items():
        if k not in init or init[k].dtype != np.float32:
            continue  # a parameter PyTorch's export shares under another name, or an int buffer
        assert k in trained, f"{k} missing from --export-onnx output"
        if spec.freeze and spec.frozen(k):
            assert np.array_equal(trained[k], init[k]), f"frozen {k} changed"
        elif k not in largest:
            # Rank 0's running statistics: of the inputs of normalisations, which the
            # gradient-free elements' Adam noise (see check_weight) shifts by ~lr * STEPS.
            assert_close(k, trained[k], want, STATS_RTOL, LR * STEPS)
        else:
            check_weight(k, trained[k], want, init[k].astype(np.float64), largest.get(k), top)
        compared += 1
    assert compared > 0, "no weight was compared"


def still_unsupported(family, error):
    try:
        train(family, 2)
    except AssertionError as e:
        assert error in str(e), f"{family} fails otherwise now: {str(e)[-600:]}"
    else:
        raise AssertionError(f"{family} trains now: move it out of zoo_models.UNSUPPORTED")


for family, spec in zoo_models.FAMILIES.items():
    if family in zoo_models.UNSUPPORTED:
        R.case(f"{family}: unsupported yet", still_unsupported, family, zoo_models.UNSUPPORTED[family])
        continue
    for n in (1, 2) if spec.batch_norm else (2,):
        R.case(f"{family} N={n}", train, family, n)
R.finish()
