#!/usr/bin/python3
"""Export the zero example models and their datasets.

usage: /usr/bin/python3 examples/export_examples.py [OUTDIR]   (default: examples/)

Writes, deterministically (fixed seeds):
  mlp_digits.onnx         + mlp_digits_data/{x,y}.npy         (sklearn digits, 64-32-10 MLP, cross-entropy)
  linear_regression.onnx  + linear_regression_data/{x,y}.npy  (nn.Linear(8, 1), mean squared error)
Both models take one micro-batch of 16 rows per rank.
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MICRO_BATCH = 16


class MLPDigits(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 32)
        self.fc2 = nn.Linear(32, 10)

    def logits(self, x):
        return self.fc2(F.relu(self.fc1(x)))

    def forward(self, x, y):
        return F.cross_entropy(self.logits(x), y)


class LinearRegression(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 1)

    def forward(self, x, y):
        pred = self.fc(x)
        # torch 1.13 cannot export F.mse_loss; this is the same expression.
        return ((pred - y) ** 2).mean()


def make_mlp_digits():
    """The model (seed 0) and the full dataset: x float32 [1797, 64] (pixels/16), y int64 [1797]."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    torch.manual_seed(0)
    return MLPDigits(), {"x": x, "y": y}


def make_linear_regression():
    """The model (seed 0) and 256 synthetic rows: y = x @ w + b + noise."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((256, 8)).astype(np.float32)
    w = rng.uniform(-2, 2, (8, 1)).astype(np.float32)
    noise = 0.05 * rng.standard_normal(256)
    # Exactly rounded (float32 products are exact in float64, fsum rounds
    # once), so the committed data does not depend on the BLAS or the CPU.
    y = np.array([[math.fsum([*(np.float64(a) * np.float64(b) for a, b in zip(row, w[:, 0])), 0.5, n])]
                  for row, n in zip(x, noise)]).astype(np.float32)
    torch.manual_seed(0)
    return LinearRegression(), {"x": x, "y": y}


EXAMPLES = {"mlp_digits": make_mlp_digits, "linear_regression": make_linear_regression}


def export(model, data, path, micro_batch=MICRO_BATCH):
    """Export model(x, y) -> scalar loss with a micro-batch of `micro_batch` rows."""
    args = tuple(torch.from_numpy(data[k][:micro_batch]) for k in ("x", "y"))
    torch.onnx.export(model, args, path, input_names=["x", "y"], output_names=["loss"],
                      opset_version=17, training=torch.onnx.TrainingMode.TRAINING,
                      do_constant_folding=False)


def main(outdir):
    os.makedirs(outdir, exist_ok=True)
    for name, make in EXAMPLES.items():
        model, data = make()
        export(model, data, os.path.join(outdir, name + ".onnx"))
        ddir = os.path.join(outdir, name + "_data")
        os.makedirs(ddir, exist_ok=True)
        for k, v in data.items():
            np.save(os.path.join(ddir, k + ".npy"), v)
        print(f"wrote {name}.onnx and {name}_data/ ({len(data['x'])} rows) in {outdir}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
