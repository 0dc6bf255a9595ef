#!/usr/bin/env python3
"""GPT-2 small (124M) through zero-opt: compile time and per-rank memory.

Exports a GPT-2 small configuration (12 layers, width 768, 12 heads,
vocabulary 50257, sequence 1024, tied LM head) from
examples/export_transformers.py's GPT, compiles it for ZeRO stages 0-3 at a
world size (default 8) with AdamW, and prints each stage's compile time and
report next to the ZeRO paper's model-state formula: with K = 12 bytes of
optimizer state per fp32 parameter (Adam's two moments, plus the fp32
master copy the paper counts for mixed precision; zero trains in fp32, so
its optimizer state is 8 bytes per parameter and the parameters themselves
are the "master" copy):

    stage 0: (4 + 4 + 8) Ψ          stage 2: 4Ψ + (4 + 8) Ψ / N
    stage 1: (4 + 4) Ψ + 8Ψ / N      stage 3: (4 + 4 + 8) Ψ / N

Usage: bench/gpt2_small_report.py [--world-size N] [--micro-batch B] [--build DIR]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--world-size", type=int, default=8)
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    args = parser.parse_args()

    import torch
    import export_transformers as ex

    zero_opt = os.path.join(args.build, "bin", "zero-opt")
    n = args.world_size
    with tempfile.TemporaryDirectory() as work:
        torch.manual_seed(0)
        model = ex.GPT(vocab=50257, d=768, heads=12, layers=12, seq=1024, mha=False, tied=True)
        psi = sum(p.numel() for p in model.parameters())
        ids = torch.zeros(args.micro_batch, 1024, dtype=torch.long)
        path = os.path.join(work, "gpt2.onnx")
        start = time.perf_counter()
        torch.onnx.export(model, (ids, ids), path, input_names=["idx", "tgt"], opset_version=17,
                          training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False)
        print(f"GPT-2 small: {psi / 1e6:.1f}M parameters, micro-batch {args.micro_batch}, "
              f"sequence 1024; export {time.perf_counter() - start:.1f} s", flush=True)

        formula = {0: 16 * psi, 1: 8 * psi + 8 * psi / n, 2: 4 * psi + 12 * psi / n,
                   3: 16 * psi / n}
        mib = 1 << 20
        print(f"\nper-rank bytes at N = {n} (MiB)")
        print("stage  compile_s  params  grads  optim  model_states  formula  activations  "
              "comm  peak  sent/step")
        for stage in range(4):
            report = os.path.join(work, f"report{stage}.json")
            start = time.perf_counter()
            subprocess.run([zero_opt, path, "-o", os.path.join(work, "gpt2.zplan"),
                            f"--zero-stage={stage}", f"--world-size={n}", "--optimizer=adamw",
                            f"--report={report}"], check=True)
            seconds = time.perf_counter() - start
            rank = json.load(open(report))["ranks"][0]
            states = (rank["parameter_bytes"] + rank["gradient_bytes"] +
                      rank["optimizer_state_bytes"])
            print(f"{stage:5d}  {seconds:9.1f}  {rank['parameter_bytes'] / mib:6.0f}  "
                  f"{rank['gradient_bytes'] / mib:5.0f}  {rank['optimizer_state_bytes'] / mib:5.0f}  "
                  f"{states / mib:12.0f}  {formula[stage] / mib:7.0f}  "
                  f"{rank['activation_bytes'] / mib:11.0f}  {rank['communication_bytes'] / mib:4.0f}  "
                  f"{rank['peak_bytes'] / mib:4.0f}  {rank['sent_bytes_per_step'] / mib:9.0f}",
                  flush=True)


if __name__ == "__main__":
    main()
