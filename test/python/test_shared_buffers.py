#!/usr/bin/python3
"""Plans where several values share one buffer, vs PyTorch.

The lowering runs collectives in place and reshapes are views, so one buffer
can hold several gradients or a gradient and a value still to be read. These
models make that happen and check one SGD step (lr 1) at every stage on 1
and 2 ranks, each rank on its own rows: gradients (before - after) must
equal PyTorch's averaged over the ranks, and the logged loss must be the
loss before the update, also when the loss is a parameter itself.

usage: test_shared_buffers.py --zero-opt PATH --zero-run PATH [-k FILTER] [-v]
"""
import os
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zero_test_util import Runner, assert_close, onnx_initializers, parse_args, read_log, run_tool  # noqa: E402

args = parse_args()
R = Runner(args)
tmp = tempfile.mkdtemp(prefix="zero-shared-buffers-")


class ReshapedGradientReadLater(nn.Module):
    """dt is w's gradient (through a reshape) and still feeds v's gradient."""

    def __init__(self):
        super().__init__()
        self.v, self.w = nn.Parameter(torch.randn(6)), nn.Parameter(torch.randn(2, 3))

    def forward(self, x):
        t = (x * self.v).sum(0) + self.w.reshape(6)
        return (t * t).mean()


class TwoGradientsOneBuffer(nn.Module):
    """v's gradient and w's gradient are the same buffer."""

    def __init__(self):
        super().__init__()
        self.v, self.w = nn.Parameter(torch.randn(6)), nn.Parameter(torch.randn(2, 3))

    def forward(self, x):
        t = (x.sum(0) + self.v) + self.w.reshape(6)
        return (t * t).mean()


class LossIsTheParameter(nn.Module):
    """The loss is a parameter: it must be reported before the update."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(1.5))

    def forward(self, x):
        return self.w + 0 * x.sum()


def one_step(name, make, world, stage):
    torch.manual_seed(0)
    model = make()
    x = torch.randn(8, 6)
    d = tempfile.mkdtemp(dir=tmp)
    b = 8 // world
    path = os.path.join(d, "m.onnx")
    torch.onnx.export(model, (x[:b],), path, input_names=["x"], output_names=["loss"], opset_version=17,
                      training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False)
    initial = onnx_initializers(path)
    losses = [model(x[r * b:(r + 1) * b]) for r in range(world)]
    loss = sum(losses) / world
    loss.backward()
    os.makedirs(os.path.join(d, "data"))
    np.save(os.path.join(d, "data", "x.npy"), x.numpy())
    plan, out, log = (os.path.join(d, f) for f in ("m.zplan", "out", "log.jsonl"))
    run_tool([args.zero_opt, path, "-o", plan, f"--zero-stage={stage}", f"--world-size={world}",
              "--optimizer=sgd", "--lr=1"])
    run_tool([args.zero_run, plan, "--nproc", world, "--data", os.path.join(d, "data"), "--steps", 1,
              "--save-params", out, "--log", log])
    assert_close("loss", np.array(read_log(log)[0]["loss"]), loss.detach().numpy(), rtol=1e-5, atol=1e-6)
    for pname, param in model.named_parameters():
        after = np.load(os.path.join(out, pname + ".npy"))
        assert_close(f"d loss/d {pname}", initial[pname] - after, param.grad.numpy(), rtol=1e-4, atol=1e-5)


for make in (ReshapedGradientReadLater, TwoGradientsOneBuffer, LossIsTheParameter):
    for world in (1, 2):
        for stage in range(4):
            name = f"{make.__name__} N={world} stage {stage}"
            R.case(name, one_step, name, make, world, stage)
R.finish()
