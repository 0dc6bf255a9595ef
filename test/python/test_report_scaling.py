#!/usr/bin/python3
"""ZeRO memory and communication relations in zero-opt's --report.

A 3-layer MLP with Psi ~ 1.06M parameters (built and exported here with torch)
is compiled at ZeRO stages 0-3 and world sizes N = 1, 2, 4, 8, and every rank's
report is checked against the ZeRO paper's per-rank accounting (fp32, AdamW:
K = 8 bytes of optimizer state per parameter):

  optimizer_state_bytes  8Psi/N at stages 1-3, 8Psi at stage 0
  gradient_bytes         4Psi/N at stages 2-3, 4Psi at stages 0-1
  parameter_bytes        4Psi/N at stage 3,    4Psi otherwise
  sent_bytes_per_step    2*4Psi*(N-1)/N at stages 0-2 (ring all-reduce, or
                         reduce-scatter + all-gather), and at stage 3
                         forward all-gather 4Psi + backward all-gather of the
                         parameters the backward pass reads + reduce-scatter 4Psi,
                         all times (N-1)/N.  See STAGE3_BACKWARD below.
  peak_bytes             stage 3 < stage 0 for N >= 2; >= the persistent state.

Tolerance: 0.1% + 256*N bytes for padding shards to a multiple of N and small
buffers (the optimizer's step counter).  Also SGD with momentum (K = 4) and
without (K = 0) at a few points.

usage: test_report_scaling.py --zero-opt PATH [--zero-run PATH] [-k FILTER]
"""
import json
import os
import sys
import tempfile

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zero_test_util import Runner, parse_args, run_tool  # noqa: E402

args = parse_args()
R = Runner(args)
tmp = tempfile.mkdtemp(prefix="zero-report-test-")
T = lambda *n: os.path.join(tmp, *n)  # noqa: E731


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(256, 1024)
        self.b = nn.Linear(1024, 768)
        self.c = nn.Linear(768, 10)

    def forward(self, x, y):
        return ((self.c(torch.relu(self.b(torch.relu(self.a(x))))) - y) ** 2).mean()


torch.manual_seed(0)
model = MLP()
PSI = sum(p.numel() for p in model.parameters())
# The backward pass reads the weights of every layer whose input needs a gradient:
# all but the first layer (x is data).  Biases and the first weight are never read
# in backward, so a stage-3 plan need not gather them again.  The textbook bound is
# 3*4Psi*(N-1)/N; a plan that re-gathers only what backward reads sends
# (2*Psi + PSI_BWD) * 4 * (N-1)/N.
PSI_BWD = model.b.weight.numel() + model.c.weight.numel()
MODEL = T("mlp.onnx")
torch.onnx.export(model, (torch.zeros(8, 256), torch.zeros(8, 10)), MODEL, input_names=["x", "y"],
                  opset_version=17, training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False)
print(f"Psi = {PSI}, parameters read by backward = {PSI_BWD}")

OPT = {"adamw": (["--optimizer=adamw", "--lr=1e-3"], 8),
       "sgd_momentum": (["--optimizer=sgd", "--lr=0.1", "--momentum=0.9"], 4),
       "sgd": (["--optimizer=sgd", "--lr=0.1", "--momentum=0"], 0)}
reports = {}


def compile_report(opt, stage, n):
    key = (opt, stage, n)
    if key not in reports:
        rep = T(f"{opt}-s{stage}-n{n}.json")
        run_tool([args.zero_opt, MODEL, "-o", T("p.zplan"), f"--zero-stage={stage}", f"--world-size={n}",
                  *OPT[opt][0], f"--report={rep}"])
        reports[key] = json.load(open(rep))
    return reports[key]


def approx(what, got, want, n):
    tol = 1e-3 * want + 256 * n
    assert abs(got - want) <= tol, f"{what} = {got}, expected {want:.0f} (+-{tol:.0f}; ratio {got / want if want else float('nan'):.4f})"


def check_relations(opt, stage, n):
    rep = compile_report(opt, stage, n)
    k = OPT[opt][1]
    assert rep["world_size"] == n and rep["zero_stage"] == stage, "report header"
    assert rep["parameters"] == PSI, f"report parameters {rep['parameters']} != torch's {PSI}"
    assert [r["rank"] for r in rep["ranks"]] == list(range(n)), "one entry per rank"
    frac = (n - 1) / n
    for r in rep["ranks"]:
        w = f"rank {r['rank']}: "
        approx(w + "optimizer_state_bytes", r["optimizer_state_bytes"], k * PSI / (n if stage >= 1 else 1), n)
        approx(w + "gradient_bytes", r["gradient_bytes"], 4 * PSI / (n if stage >= 2 else 1), n)
        approx(w + "parameter_bytes", r["parameter_bytes"], 4 * PSI / (n if stage >= 3 else 1), n)
        sent = 2 * 4 * PSI * frac if stage < 3 else (2 * PSI + PSI_BWD) * 4 * frac
        approx(w + "sent_bytes_per_step", r["sent_bytes_per_step"], sent, n)
        if stage == 3 and n > 1:
            assert 2 * 4 * PSI * frac < r["sent_bytes_per_step"] <= 3 * 4 * PSI * frac + 256 * n, "stage-3 traffic bound"
        persistent = r["parameter_bytes"] + r["gradient_bytes"] + r["optimizer_state_bytes"]
        assert r["peak_bytes"] >= persistent, f"{w}peak_bytes {r['peak_bytes']} < persistent state {persistent}"


def check_stage3_smaller(opt, n):
    p0 = max(r["peak_bytes"] for r in compile_report(opt, 0, n)["ranks"])
    p3 = max(r["peak_bytes"] for r in compile_report(opt, 3, n)["ranks"])
    assert p3 < p0, f"stage-3 peak {p3} not below stage-0 peak {p0} at N={n}"


def check_peak_decreases_with_n(opt, stage):
    peaks = [compile_report(opt, stage, n)["ranks"][0]["peak_bytes"] for n in (1, 2, 4, 8)]
    assert all(a > b for a, b in zip(peaks, peaks[1:])), f"stage-{stage} peak over N=1,2,4,8: {peaks}"


for stage in range(4):
    for n in (1, 2, 4, 8):
        R.case(f"adamw stage {stage} N={n}: ZeRO relations", check_relations, "adamw", stage, n)
for n in (2, 4, 8):
    R.case(f"adamw N={n}: stage-3 peak < stage-0 peak", check_stage3_smaller, "adamw", n)
for stage in (1, 2, 3):
    R.case(f"adamw stage {stage}: peak decreases with N", check_peak_decreases_with_n, "adamw", stage)
for opt in ("sgd_momentum", "sgd"):
    for stage, n in [(0, 4), (1, 4), (2, 8), (3, 2), (3, 8)]:
        R.case(f"{opt} stage {stage} N={n}: ZeRO relations", check_relations, opt, stage, n)

R.finish()
