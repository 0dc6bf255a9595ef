#!/usr/bin/python3
"""Checkpoint write and restore time per GB: zero-run --checkpoint-dir / --resume vs torch.save /
torch.load of the same state (model and AdamW state_dict) in the same run.

The model is bench/gpt_mini_cpu.py's GPT-mini widened to `--width` (default 512: ~17 M
parameters, ~200 MB of weights and AdamW moments). zero trains one step at ZeRO stage 3 on
`--nproc` ranks (default 2) and writes a checkpoint; then a run of 0 steps resumes from it. The
times are zero-run's own (the log's checkpoint_ms and restore_ms: manifest, every rank's file,
fsyncs and renames; re-cut and copied into the arena), from a warm page cache; PyTorch's are
torch.save (to a file, fsynced) and torch.load of the state_dicts after one AdamW step.

    ninja -C build zero-opt zero-run
    /usr/bin/python3 bench/checkpoint_io.py [--width 512] [--nproc 2] [--rounds 3]
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

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--zero-opt", default=os.path.join(ROOT, "build/bin/zero-opt"))
    p.add_argument("--zero-run", default=os.path.join(ROOT, "build/bin/zero-run"))
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="zero-bench-checkpoint-")
    torch.manual_seed(0)
    model = et.GPT(vocab=4096, d=a.width, heads=8, layers=4, seq=64, mha=False, tied=True)
    rng = np.random.default_rng(0)
    b = 2
    data = {"tokens": rng.integers(0, 4096, (64, 64), dtype=np.int64),
            "targets": rng.integers(0, 4096, (64, 64), dtype=np.int64)}
    onnx_path, plan = os.path.join(tmp, "gpt.onnx"), os.path.join(tmp, "gpt.zplan")
    et.export(model, data, onnx_path, b)
    ddir = os.path.join(tmp, "data")
    os.makedirs(ddir)
    for k, v in data.items():
        np.save(os.path.join(ddir, k + ".npy"), v)
    subprocess.run([a.zero_opt, onnx_path, "-o", plan, "--zero-stage=3", f"--world-size={a.nproc}",
                    "--optimizer=adamw", "--omit-weights"], check=True, env=ENV)
    params = os.path.join(tmp, "params")
    os.makedirs(params)
    for name, t in model.named_parameters():
        np.save(os.path.join(params, name + ".npy"), t.detach().numpy())

    zero_write, zero_read, nbytes = [], [], 0
    for r in range(a.rounds):
        ckpt, log = os.path.join(tmp, f"ckpt{r}"), os.path.join(tmp, f"write{r}.jsonl")
        subprocess.run([a.zero_run, plan, "--nproc", str(a.nproc), "--data", ddir, "--init-params", params,
                        "--steps", "1", "--checkpoint-dir", ckpt, "--log", log], check=True, env=ENV)
        line = [json.loads(l) for l in open(log) if "checkpoint" in l][0]
        nbytes = sum(os.path.getsize(os.path.join(ckpt, "step-1", f)) for f in os.listdir(os.path.join(ckpt, "step-1")))
        zero_write.append(line["checkpoint_ms"])
        log = os.path.join(tmp, f"read{r}.jsonl")
        subprocess.run([a.zero_run, plan, "--nproc", str(a.nproc), "--resume", ckpt, "--steps", "0", "--log", log],
                       check=True, env=ENV)
        zero_read.append([json.loads(l) for l in open(log) if "resumed" in l][0]["restore_ms"])

    opt = torch.optim.AdamW(model.parameters())
    model(*(torch.from_numpy(v[:b]) for v in data.values())).backward()
    opt.step()
    torch_write, torch_read = [], []
    for r in range(a.rounds):
        path = os.path.join(tmp, f"torch{r}.pt")
        t = time.perf_counter()
        with open(path, "wb") as f:
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, f)
            f.flush()
            os.fsync(f.fileno())
        torch_write.append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        torch.load(path)
        torch_read.append((time.perf_counter() - t) * 1e3)
    torch_bytes = os.path.getsize(os.path.join(tmp, "torch0.pt"))

    def per_gb(ms, size):
        return statistics.median(ms) / (size / 2 ** 30)

    print(f"state: zero {nbytes / 2 ** 20:.1f} MiB in {a.nproc} rank files, torch.save {torch_bytes / 2 ** 20:.1f} MiB;"
          f" load average {os.getloadavg()[0]:.2f}")
    for what, z, t in (("write", zero_write, torch_write), ("restore", zero_read, torch_read)):
        zg, tg = per_gb(z, nbytes), per_gb(t, torch_bytes)
        print(f"{what:8s} zero {statistics.median(z):8.1f} ms ({zg:7.1f} ms/GB)   torch {statistics.median(t):8.1f} ms"
              f" ({tg:7.1f} ms/GB)   zero/torch per GB {zg / tg:.2f}")


if __name__ == "__main__":
    main()
