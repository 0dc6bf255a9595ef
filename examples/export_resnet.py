#!/usr/bin/python3
"""Export torchvision's ResNet-18 (10 classes, 32x32 inputs) for training, and synthetic CIFAR-like data.

usage: /usr/bin/python3 examples/export_resnet.py OUTDIR

Writes, deterministically (fixed seeds):
  OUTDIR/resnet18.onnx      forward(x, y) -> F.cross_entropy(resnet18(x), y), exported with opset 17,
                            TrainingMode.TRAINING (BatchNorm uses batch statistics and updates its
                            running statistics), do_constant_folding=False; micro-batch MICRO_BATCH
  OUTDIR/resnet18_data/     x.npy float32 [ROWS, 3, 32, 32] (N(0, 1)), y.npy int64 [ROWS] in 0..9

Note: torch.onnx.export in training mode runs the module once while tracing, which updates the
BatchNorm running statistics (and num_batches_tracked).  The module after export is therefore NOT
the model in the ONNX file.  Use reference_module(onnx_path) to get a module that starts exactly
from the ONNX initializers (parameters and running_mean / running_var).
"""
import os
import sys
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

MICRO_BATCH = 4  # per rank; see test/python/test_resnet.py for why not 2
ROWS = 64
CLASSES = 10
NAME = "resnet18"


class ResNetLoss(nn.Module):
    """resnet18(num_classes=10); forward(x, y) returns the mean cross-entropy loss."""

    def __init__(self):
        super().__init__()
        self.net = torchvision.models.resnet18(num_classes=CLASSES)

    def forward(self, x, y):
        return F.cross_entropy(self.net(x), y)


def make():
    """(module initialised with seed 0, data dict).  The same call gives the same weights."""
    torch.manual_seed(0)
    model = ResNetLoss()
    rng = np.random.default_rng(3)
    data = {"x": rng.standard_normal((ROWS, 3, 32, 32)).astype(np.float32),
            "y": rng.integers(0, CLASSES, ROWS).astype(np.int64)}
    return model, data


def export(model, data, path, micro_batch=MICRO_BATCH):
    args = (torch.from_numpy(data["x"][:micro_batch]), torch.from_numpy(data["y"][:micro_batch]))
    model.train()
    warnings.filterwarnings("ignore", category=UserWarning)
    torch.onnx.export(model, args, path, input_names=["x", "y"], output_names=["loss"],
                      opset_version=17, training=torch.onnx.TrainingMode.TRAINING,
                      do_constant_folding=False)


def onnx_state(path):
    """{initializer name: numpy array} of the exported model (FLOAT ones: parameters and running stats)."""
    import onnx
    from onnx import numpy_helper
    return {i.name: numpy_helper.to_array(i) for i in onnx.load(path).graph.initializer}


def reference_module(onnx_path, dtype=torch.float32):
    """A fresh ResNetLoss in train mode holding exactly the ONNX initializers: every parameter and
    every BatchNorm running_mean / running_var (num_batches_tracked stays 0: it is not in the
    ONNX file, and with a fixed momentum it does not affect training)."""
    torch.manual_seed(0)
    model = ResNetLoss()
    inits = onnx_state(onnx_path)
    sd = model.state_dict()
    missing = [k for k in sd if not k.endswith("num_batches_tracked") and k not in inits]
    if missing:
        raise KeyError(f"state_dict entries missing from {onnx_path}: {missing}")
    model.load_state_dict({k: torch.from_numpy(inits[k].copy()) for k in sd if k in inits}, strict=False)
    return model.to(dtype).train()


def write(outdir, micro_batch=MICRO_BATCH):
    os.makedirs(outdir, exist_ok=True)
    model, data = make()
    export(model, data, os.path.join(outdir, NAME + ".onnx"), micro_batch)
    ddir = os.path.join(outdir, NAME + "_data")
    os.makedirs(ddir, exist_ok=True)
    for k, v in data.items():
        np.save(os.path.join(ddir, k + ".npy"), v)
    return data


def main(outdir):
    write(outdir)
    print(f"wrote {NAME}.onnx and {NAME}_data/ in {outdir}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
