#!/usr/bin/env python3
"""GPT-2 small train step on one GPU: zero (CUDA backend) vs PyTorch eager and
torch.compile, in the same run.

Runs on a machine with a GPU (scripts/gpu-check calls it). The plan is
compiled elsewhere by scripts/prepare-gpu-check.sh with --omit-weights
(124M weights would not fit what can be carried), so this script creates the
model with PyTorch (examples/export_transformers.py's GPT, seed 0), writes
its parameters for `zero-run --init-params`, and gives both sides the same
weights, tokens and AdamW settings. TF32 is allowed on both sides.

Prints ms/step, tokens/s and MFU of each, the ratio zero / PyTorch eager,
the first and last losses (the same computation: they agree to float32
rounding), and peak GPU memory: zero's as measured on the device (arena,
scratch, NCCL buffers) next to the compiler's planned arena from the report,
against PyTorch's max_memory_allocated.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(ROOT, "examples"))

# Must match scripts/prepare-gpu-check.sh.
LR, MICRO_BATCH, SEQ, VOCAB = 3e-4, 8, 1024, 50257
# Dense TF32 tensor-core peak (FLOP/s) by GPU name, for MFU.
PEAK = {"H100": 494e12, "H200": 494e12, "A100": 156e12}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--plan", default=os.path.join(ROOT, ".carry/bench/gpt2_small-cuda.zplan"))
    parser.add_argument("--zero-run", default=os.path.join(ROOT, os.environ.get("ZERO_GPU_BUILD_DIR", "build-gpu"),
                                                           "bin/zero-run"))
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()

    import torch
    if not torch.cuda.is_available():
        print("gpt2_gpu: no GPU, skipped")
        return 0
    if not os.path.exists(args.plan):
        print(f"gpt2_gpu: {args.plan} missing (run scripts/prepare-gpu-check.sh), skipped")
        return 0
    import export_transformers as ex

    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    name = torch.cuda.get_device_name()
    peak = next((v for k, v in PEAK.items() if k in name), None)
    steps = args.warmup + args.steps

    torch.manual_seed(0)
    model = ex.GPT(vocab=VOCAB, d=768, heads=12, layers=12, seq=SEQ, mha=False, tied=True)
    psi = sum(p.numel() for p in model.parameters())
    # Per token: 6 FLOPs per parameter plus attention's 12 * layers * seq * width.
    flops_per_token = 6 * psi + 12 * 12 * SEQ * 768
    rng = np.random.default_rng(0)
    ids = rng.integers(0, VOCAB, (steps * MICRO_BATCH, SEQ + 1)).astype(np.int64)
    idx, tgt = ids[:, :-1].copy(), ids[:, 1:].copy()

    def report(label, ms, losses, memory):
        tokens = MICRO_BATCH * SEQ / (ms / 1e3)
        mfu = f"{100 * tokens * flops_per_token / peak:5.1f}%" if peak else "  n/a"
        print(f"{label:16s} {ms:9.1f} ms/step  {tokens:10.0f} tok/s  MFU {mfu}  "
              f"loss {losses[0]:.5f} -> {losses[-1]:.5f}  peak {memory / 2**30:6.2f} GiB", flush=True)
        return ms

    print(f"GPT-2 small ({psi / 1e6:.1f}M), micro-batch {MICRO_BATCH}, sequence {SEQ}, AdamW, "
          f"fp32 with TF32, on {name}; {args.steps} timed steps after {args.warmup}")
    with tempfile.TemporaryDirectory() as work:
        params, data = os.path.join(work, "params"), os.path.join(work, "data")
        os.makedirs(params)
        os.makedirs(data)
        for pname, p in model.named_parameters():
            np.save(os.path.join(params, pname.replace("/", "_") + ".npy"), p.detach().numpy())
        np.save(os.path.join(data, "idx.npy"), idx)
        np.save(os.path.join(data, "tgt.npy"), tgt)
        log = os.path.join(work, "zero.jsonl")
        subprocess.run([args.zero_run, args.plan, "--init-params", params, "--data", data,
                        "--steps", str(steps), "--log", log, "--tf32"], check=True)
        rows = [json.loads(line) for line in open(log)]
        measured = max(r.get("device_bytes", 0) for r in rows)
        zero_ms = report("zero", float(np.median([r["ms"] for r in rows[args.warmup:]])),
                         [r["loss"] for r in rows], measured)
        planned = rows[-1]["peak_bytes"]
        report_path = args.plan.replace(".zplan", ".report.json")
        if os.path.exists(report_path):
            planned = json.load(open(report_path))["ranks"][0]["peak_bytes"]
        print(f"zero planned arena (compiler report) {planned / 2**30:.2f} GiB; measured / planned "
              f"{measured / max(planned, 1):.3f}", flush=True)

    def torch_run(compiled):
        torch.manual_seed(0)
        m = ex.GPT(vocab=VOCAB, d=768, heads=12, layers=12, seq=SEQ, mha=False, tied=True).cuda()
        step_fn = torch.compile(m) if compiled else m
        opt = torch.optim.AdamW(m.parameters(), lr=LR)
        torch.cuda.reset_peak_memory_stats()
        times, losses = [], []
        for s in range(steps):
            x = torch.from_numpy(idx[s * MICRO_BATCH:(s + 1) * MICRO_BATCH]).cuda()
            y = torch.from_numpy(tgt[s * MICRO_BATCH:(s + 1) * MICRO_BATCH]).cuda()
            torch.cuda.synchronize()
            start = time.perf_counter()
            loss = step_fn(x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            torch.cuda.synchronize()
            times.append((time.perf_counter() - start) * 1e3)
            losses.append(loss.item())
        return float(np.median(times[args.warmup:])), losses, torch.cuda.max_memory_allocated()

    eager_ms = report("pytorch eager", *torch_run(False))
    report("torch.compile", *torch_run(True))
    print(f"zero / PyTorch eager step time: {zero_ms / eager_ms:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
