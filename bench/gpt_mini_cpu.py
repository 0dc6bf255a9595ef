#!/usr/bin/python3
"""CPU train-step time of a GPT-mini: zero (zero-opt + zero-run, one rank) vs PyTorch eager.

GPT-mini: examples/export_transformers.py's GPT with vocab 4096, width 256, 8 heads, 4 layers,
sequence 128, hand-written causal attention, LM head tied to the token embedding, micro-batch 8,
AdamW (lr 3e-4, weight decay 0.01), float32, dropout 0.  Both sides train the same initial
weights on the same random token ids, with the same number of threads (default 2):
  * zero: zero-opt --zero-stage=0 --world-size=1, then zero-run --steps WARMUP+STEPS with
    OPENBLAS_NUM_THREADS = OMP_NUM_THREADS = THREADS; the per-step time is the log's "ms" field
    of the last STEPS steps;
  * PyTorch: torch.set_num_threads(THREADS); zero_grad + forward + backward + AdamW step, timed
    with time.perf_counter over the last STEPS steps.
With --rounds R (default 2) the two alternate R times (a fresh run from the same weights each
time), which evens out other load on the machine; statistics are over all timed steps.
Prints each side's median (and mean, min) ms/step and the ratio zero / PyTorch (median).

usage: /usr/bin/python3 bench/gpt_mini_cpu.py [--steps 10] [--warmup 3] [--threads 2] [--rounds 2]
                                              [--zero-opt build/bin/zero-opt] [--zero-run build/bin/zero-run]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples"))
import export_transformers as et  # noqa: E402

CFG = dict(vocab=4096, d=256, heads=8, layers=4, seq=128, mha=False, tied=True)
MICRO_BATCH = 8
LR, WD = 3e-4, 0.01


def summary(ms):
    return {"median": statistics.median(ms), "mean": statistics.fmean(ms), "min": min(ms)}


def make_model():
    torch.manual_seed(0)
    return et.GPT(**CFG)


def compile_zero(a, tmp, data):
    """Export, write the data, compile: (plan path, data dir, compile seconds)."""
    model = make_model()
    onnx_path, plan = os.path.join(tmp, "gpt_mini.onnx"), os.path.join(tmp, "gpt_mini.zplan")
    et.export(model, data, onnx_path, MICRO_BATCH)
    ddir = os.path.join(tmp, "data")
    os.makedirs(ddir, exist_ok=True)
    for k, v in data.items():
        np.save(os.path.join(ddir, k + ".npy"), v)
    t = time.perf_counter()
    subprocess.run([a.zero_opt, onnx_path, "-o", plan, "--zero-stage=0", "--world-size=1",
                    "--optimizer=adamw", f"--lr={LR}", f"--weight-decay={WD}"], check=True)
    return plan, ddir, time.perf_counter() - t


def bench_zero(a, plan, ddir, log):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(a.threads), OMP_NUM_THREADS=str(a.threads))
    subprocess.run([a.zero_run, plan, "--data", ddir, "--steps", str(a.warmup + a.steps), "--log", log],
                   check=True, env=env)
    lines = [json.loads(l) for l in open(log) if l.strip()]
    return [l["ms"] for l in lines[a.warmup:]], [l["loss"] for l in lines]


def bench_torch(a, data):
    torch.set_num_threads(a.threads)
    model = make_model()
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WD)
    tensors = [torch.from_numpy(v) for v in data.values()]
    ms, losses = [], []
    for s in range(a.warmup + a.steps):
        batch = [x[s * MICRO_BATCH:(s + 1) * MICRO_BATCH] for x in tensors]
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model(*batch)
        loss.backward()
        opt.step()
        ms.append((time.perf_counter() - t) * 1e3)
        losses.append(loss.item())
    return ms[a.warmup:], losses


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2,
                   help="alternate zero and PyTorch this many times (fairer on a busy machine)")
    p.add_argument("--zero-opt", default=os.path.join(ROOT, "build/bin/zero-opt"))
    p.add_argument("--zero-run", default=os.path.join(ROOT, "build/bin/zero-run"))
    a = p.parse_args()

    rows = MICRO_BATCH * (a.warmup + a.steps)  # every step sees new rows, both sides the same ones
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, CFG["vocab"], (rows, CFG["seq"] + 1)).astype(np.int64)
    data = {"idx": tokens[:, :-1].copy(), "tgt": tokens[:, 1:].copy()}

    zms, tms = [], []
    with tempfile.TemporaryDirectory(prefix="zero-bench-") as tmp:
        plan, ddir, compile_s = compile_zero(a, tmp, data)
        for r in range(a.rounds):
            ms, zl = bench_zero(a, plan, ddir, os.path.join(tmp, f"log{r}.jsonl"))
            zms += ms
            ms, tl = bench_torch(a, data)
            tms += ms
    z, t = summary(zms), summary(tms)

    params = sum(q.numel() for q in make_model().parameters())
    print(f"GPT-mini {CFG} micro-batch {MICRO_BATCH}, {params / 1e6:.2f} M parameters, AdamW, float32")
    print(f"{a.threads} threads, {a.rounds} rounds of {a.warmup} warm-up + {a.steps} timed steps; zero-opt compile {compile_s:.1f} s; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"first-step loss: zero {zl[0]:.6f}  torch {tl[0]:.6f}; last: zero {zl[-1]:.6f}  torch {tl[-1]:.6f}")
    for name, s in (("zero", z), ("torch", t)):
        print(f"{name:6s} ms/step: median {s['median']:8.1f}  mean {s['mean']:8.1f}  min {s['min']:8.1f}")
    print(f"ratio zero/torch (median): {z['median'] / t['median']:.2f}")


if __name__ == "__main__":
    main()
