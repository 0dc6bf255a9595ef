#!/usr/bin/python3
"""Checkpoints: zero-run --checkpoint-dir/--checkpoint-every/--keep-checkpoints and --resume.

  * Same world size and stage: the resumed run equals the uninterrupted one bit for bit (losses as
    logged, exported weights), for the MLP at stages 0-3 and N = 1-4, a GPT and a BatchNorm CNN
    (per-rank running statistics), with a schedule, clipping, accumulation and shuffling in use.
  * Another stage at the same global batch (written at N = 2 stage 3, resumed at stages 0-2):
    within 1e-5 of the uninterrupted run (other reduction orders only).
  * Another world size (written at N = 2 stage 3, resumed at N = 1, 3, 4 and other stages): the
    data position continues, so the run is a float64 PyTorch run whose global batch changes at the
    checkpoint (losses relative 1e-4, weights checked). BatchNorm state from rank 0 seeds new ranks.
  * A run killed (SIGKILL, zero-run's test hook) while writing a checkpoint resumes from the
    previous complete one (`latest`) and then matches the uninterrupted run.
  * --keep-checkpoints, --resume DIR --steps 0 --export-onnx, the Python reader
    (examples/zero_checkpoint.py) against --save-params, files sized to each rank's share, and
    refusals (another model, other hyper-parameters unless --resume-override, a corrupt or missing
    file, an incomplete directory, an unknown version, a step past --steps): one line, exit 1,
    nothing modified.

usage: test_checkpoints.py --zero-opt PATH --zero-run PATH [-k FILTER] [-v]
"""
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zero_test_util import (ENV, ROOT, Runner, assert_close, onnx_initializers, parse_args, read_log,  # noqa: E402
                            run_tool, snapshot)

sys.path.insert(0, os.path.join(ROOT, "examples"))
import export_examples as ex  # noqa: E402
import export_transformers as et  # noqa: E402
import zero_checkpoint  # noqa: E402
import zero_random  # noqa: E402

torch.set_num_threads(1)
args = parse_args()
R = Runner(args)
tmp = tempfile.mkdtemp(prefix="zero-checkpoint-test-")
T = lambda *n: os.path.join(tmp, *n)  # noqa: E731

ex.main(T("ex"))
GPT = "gpt_tied"
et.write(GPT, T("ex"))
STEPS, AT = 12, 6
# Cosine with warmup, clipping, K = 2: the schedule's position and the moments must survive.
RECIPE = ["--optimizer=adamw", "--lr=3e-3", "--weight-decay=0.01", "--lr-schedule=cosine", "--warmup-steps=2",
          "--total-steps=12", "--min-lr-ratio=0.1", "--clip-grad-norm=0.3", "--grad-accum=2"]
SEED = 5


class BatchNormCNN(torch.nn.Module):
    """Conv-BatchNorm-ReLU on the 8x8 digits, then a linear classifier."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4 * 8 * 8, 10)

    def forward(self, x, y):
        h = torch.relu(self.bn(self.conv(x.reshape(-1, 1, 8, 8))))
        return torch.nn.functional.cross_entropy(self.fc(h.flatten(1)), y)


def export_cnn():
    torch.manual_seed(0)
    data = ex.EXAMPLES["mlp_digits"]()[1]
    ex.export(BatchNormCNN(), data, T("ex", "bn_cnn.onnx"), micro_batch=8)
    os.makedirs(T("ex", "bn_cnn_data"), exist_ok=True)
    for k, v in data.items():
        np.save(T("ex", "bn_cnn_data", k + ".npy"), v)


export_cnn()


def compile_plan(model, stage, n, *extra):
    plan = T(f"{model}-s{stage}-n{n}-{abs(hash(extra))}.zplan")
    if not os.path.exists(plan):
        run_tool([args.zero_opt, T("ex", model + ".onnx"), "-o", plan, f"--zero-stage={stage}", f"--world-size={n}",
                  *RECIPE, *extra])
    return plan


def train(model, stage, n, tag, steps=STEPS, extra_run=(), extra_opt=(), check=True):
    """zero-run over `steps` (the run's total); returns the log lines, the export and the result."""
    log, out = T(tag + ".jsonl"), T(tag + ".onnx")
    p = run_tool([args.zero_run, compile_plan(model, stage, n, *extra_opt), "--nproc", n,
                  "--data", T("ex", model + "_data"), "--steps", steps, "--shuffle", "--seed", SEED,
                  "--log", log, "--export-onnx", out, *extra_run], timeout=300, check=check)
    return (read_log(log) if os.path.exists(log) else []), out, p


def losses(lines):
    return [(l["step"], l["loss"]) for l in lines if "loss" in l]


def same_run_case(model, stage, n):
    """Stop after AT steps, resume to STEPS: the log and the export equal the uninterrupted run's."""
    tag = f"{model}-s{stage}-n{n}"
    ckpt = T(tag + "-ckpt")
    full, full_out, _ = train(model, stage, n, tag + "-full", extra_run=["--checkpoint-dir", ckpt,
                                                                        "--checkpoint-every", AT])
    assert os.path.exists(os.path.join(ckpt, f"step-{AT}", "manifest.json")), os.listdir(ckpt)
    resumed, out, _ = train(model, stage, n, tag + "-resumed", extra_run=["--resume", os.path.join(ckpt, f"step-{AT}")])
    assert resumed[0]["resumed"] == f"step-{AT}" and resumed[0]["step"] == AT - 1, resumed[0]
    assert losses(resumed) == losses(full)[AT:], f"resumed {losses(resumed)[:3]} vs {losses(full)[AT:AT + 3]}"
    want, got = onnx_initializers(full_out), onnx_initializers(out)
    for k, v in want.items():
        assert np.array_equal(got[k], v), f"exported {k} differs after resuming"


for stage in range(4):
    R.case(f"mlp_digits: resumed at the same N=2 stage {stage} is the same run", same_run_case, "mlp_digits",
           stage, 2)
for stage, n in [(1, 1), (2, 3), (3, 4), (0, 4)]:
    R.case(f"mlp_digits: resumed at the same N={n} stage {stage} is the same run", same_run_case, "mlp_digits",
           stage, n)
R.case(f"{GPT}: resumed at the same N=2 stage 3 is the same run", same_run_case, GPT, 3, 2)
R.case("bn_cnn: resumed at the same N=2 stage 0 (per-rank running statistics) is the same run", same_run_case,
       "bn_cnn", 0, 2)
R.case("bn_cnn: resumed at the same N=3 stage 3 is the same run", same_run_case, "bn_cnn", 3, 3)


def written_at_n2_stage3(model):
    ckpt = T(f"{model}-written-ckpt")
    if not os.path.exists(ckpt):
        train(model, 3, 2, f"{model}-written", steps=AT, extra_run=["--checkpoint-dir", ckpt])
    return ckpt


def other_stage_case(stage):
    """The same global batch: only the reduction order differs from the uninterrupted run."""
    ckpt = written_at_n2_stage3("mlp_digits")
    full, full_out, _ = train("mlp_digits", 3, 2, "mlp-full-s3-n2")
    resumed, out, _ = train("mlp_digits", stage, 2, f"mlp-resumed-s{stage}-n2", extra_run=["--resume", ckpt])
    got, want = np.array([l for _, l in losses(resumed)]), np.array([l for _, l in losses(full)[AT:]])
    assert [s for s, _ in losses(resumed)] == list(range(AT, STEPS))
    assert_close("resumed losses", got, want, rtol=1e-5, atol=0)
    trained, ref = onnx_initializers(out), onnx_initializers(full_out)
    for k, v in ref.items():
        assert_close(f"exported {k}", trained[k], v, rtol=1e-5, atol=1e-7)


for stage in (0, 1, 2):
    R.case(f"mlp_digits: written at N=2 stage 3, resumed at N=2 stage {stage}", other_stage_case, stage)


def reference(model, data, segments, b, k=2):
    """float64 PyTorch AdamW + LambdaLR(cosine, warmup 2, total 12, floor 0.1) + clip 0.3 + K = 2 on
    shuffled rows read in order; `segments` are (world size, steps): the global batch changes at
    the checkpoint and the rows continue where they stopped."""
    import math
    model = model.double()
    x, y = (torch.from_numpy(data[key]) for key in ("x", "y"))
    x = x.double()
    order = zero_random.Order(len(x), shuffle=True, seed=SEED)

    def factor(s):
        s = min(s, 12)
        if s < 2:
            return s / 2
        return 0.1 + 0.9 * max(0.0, 0.5 * (1 + math.cos(math.pi * (s - 2) / 10)))

    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    out, pos = [], 0
    for n, steps in segments:
        for _ in range(steps):
            opt.zero_grad()
            total = 0.0
            for _ in range(k):
                rows = torch.tensor([order.row(pos + i) for i in range(n * b)])
                pos += n * b
                loss = model(x[rows], y[rows])
                (loss / k).backward()
                total += loss.item() / k
            out.append(total)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.3)
            opt.step()
            sched.step()
    return np.array(out), {name: p.detach().numpy() for name, p in model.named_parameters()}


def other_world_case(stage, n):
    ckpt = written_at_n2_stage3("mlp_digits")
    first = read_log(T("mlp_digits-written.jsonl"))
    resumed, out, _ = train("mlp_digits", stage, n, f"mlp-resumed-s{stage}-n{n}", extra_run=["--resume", ckpt])
    model, data = ex.EXAMPLES["mlp_digits"]()
    ref, params = reference(model, data, [(2, AT), (n, STEPS - AT)], ex.MICRO_BATCH)
    got = np.array([l for _, l in losses(first) + losses(resumed)])
    assert_close("losses (written at N=2, then resumed)", got, ref, rtol=1e-4, atol=0)
    trained = onnx_initializers(out)
    for k, v in params.items():
        assert_close(f"trained {k}", trained[k], v, rtol=1e-4, atol=1e-6)


for stage, n in [(1, 3), (0, 1), (2, 4), (3, 3)]:
    R.case(f"mlp_digits: written at N=2 stage 3, resumed at N={n} stage {stage} (vs PyTorch)", other_world_case,
           stage, n)


def batchnorm_seeds_new_ranks():
    """Written at N=2: resumed at N=3 every rank starts from rank 0's running statistics."""
    ckpt = T("bn-cnn-n2-ckpt")
    train("bn_cnn", 0, 2, "bn-cnn-n2", steps=3, extra_run=["--checkpoint-dir", ckpt])
    reader = zero_checkpoint.load(ckpt)
    assert not np.array_equal(reader.tensor("bn.running_mean", rank=0), reader.tensor("bn.running_mean", rank=1)), \
        "ranks trained the same statistics (the case cannot tell them apart)"
    saved = T("bn-cnn-n3-params")
    run_tool([args.zero_run, compile_plan("bn_cnn", 1, 3), "--nproc", 3, "--resume", ckpt, "--steps", 0,
              "--save-params", saved])
    for name in ("bn.running_mean", "bn.running_var"):
        assert np.array_equal(np.load(os.path.join(saved, name + ".npy")), reader.tensor(name, rank=0)), name


R.case("bn_cnn: BatchNorm state from rank 0 seeds new ranks", batchnorm_seeds_new_ranks)


def killed_while_writing():
    """SIGKILL in the middle of the step-9 checkpoint: step-3 and step-6 stay whole, latest names
    step-6, and resuming from the root continues as the uninterrupted run."""
    ckpt = T("killed-ckpt")
    env = dict(ENV, ZERO_RUN_TEST_KILL_IN_CHECKPOINT="9")
    import subprocess
    p = subprocess.run([args.zero_run, compile_plan("mlp_digits", 2, 2), "--nproc", "2", "--data",
                        T("ex", "mlp_digits_data"), "--steps", str(STEPS), "--shuffle", "--seed", str(SEED),
                        "--checkpoint-dir", ckpt, "--checkpoint-every", "3"], capture_output=True, text=True,
                       env=env, timeout=300)
    assert p.returncode != 0, "the hook did not kill the run"
    assert open(os.path.join(ckpt, "latest")).read().strip() == "step-6"
    assert sorted(os.listdir(ckpt)) == [".step-9.partial", "latest", "step-3", "step-6"], sorted(os.listdir(ckpt))
    assert not os.path.exists(os.path.join(ckpt, ".step-9.partial", "manifest.json"))
    full, full_out, _ = train("mlp_digits", 2, 2, "killed-full")
    resumed, out, _ = train("mlp_digits", 2, 2, "killed-resumed", extra_run=["--resume", ckpt])
    assert losses(resumed) == losses(full)[6:]
    for k, v in onnx_initializers(full_out).items():
        assert np.array_equal(onnx_initializers(out)[k], v), k


R.case("a run killed while writing a checkpoint resumes from the previous one", killed_while_writing)


def keep_and_export():
    """--keep-checkpoints 2 keeps the newest two; --resume --steps 0 --export-onnx writes the
    checkpoint's weights, which the Python reader reads too; each file is its rank's share."""
    ckpt = T("keep-ckpt")
    lines, out, _ = train("mlp_digits", 3, 3, "keep", extra_run=["--checkpoint-dir", ckpt, "--checkpoint-every", 3,
                                                                "--keep-checkpoints", 2])
    assert sorted(os.listdir(ckpt)) == ["latest", "step-12", "step-9"], sorted(os.listdir(ckpt))
    logged = [l for l in lines if "checkpoint" in l]
    assert [l["checkpoint"] for l in logged] == ["step-3", "step-6", "step-9", "step-12"], logged
    reader = zero_checkpoint.load(ckpt)
    assert reader.step == STEPS and reader.tensor("step") == STEPS
    exported = T("keep-export.onnx")
    run_tool([args.zero_run, compile_plan("mlp_digits", 0, 1), "--resume", ckpt, "--steps", 0,
              "--export-onnx", exported])
    final, again = onnx_initializers(out), onnx_initializers(exported)
    for name in reader.names("parameter"):
        assert np.array_equal(reader.tensor(name), final[name]), f"reader: {name}"
        assert np.array_equal(again[name], final[name]), f"--steps 0 export: {name}"
    # Files: each rank's share of every tensor (the step counter is rank 0's).
    manifest = reader.manifest
    total = sum(int(np.prod(t["shape"])) * (4 if t["dtype"] == "float32" else 8) for t in manifest["tensors"])
    sizes = [os.path.getsize(os.path.join(ckpt, "step-12", f["name"])) for f in manifest["files"]]
    # Slices of ceil(numel / N) elements: the last ranks' are short by less than N elements a tensor.
    assert sum(sizes) == total and max(sizes) - min(sizes) <= 8 + 4 * 2 * len(manifest["tensors"]), sizes
    assert logged[-1]["checkpoint_bytes"] == sizes[0]
    # --report states each rank's checkpoint size before the run.
    report = T("keep-report.json")
    run_tool([args.zero_opt, T("ex", "mlp_digits.onnx"), "-o", T("keep-report.zplan"), "--zero-stage=3",
              "--world-size=3", *RECIPE, "--report", report])
    assert [r["checkpoint_bytes"] for r in json.load(open(report))["ranks"]] == sizes


R.case("--keep-checkpoints, --steps 0 export, the Python reader, files per rank", keep_and_export)


def refused(run_args, keywords, ckpt):
    before = snapshot(ckpt)
    p = run_tool([args.zero_run, *run_args], check=False, timeout=120)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert p.returncode == 1, f"exit {p.returncode}: {p.stderr[-600:]!r}"
    assert len(lines) == 1, f"expected one line: {p.stderr[-600:]!r}"
    for k in keywords:
        assert k in lines[0], f"{k!r} not in {lines[0]!r}"
    assert snapshot(ckpt) == before, "the checkpoint was modified"


def refusals():
    ckpt = written_at_n2_stage3("mlp_digits")
    step = os.path.join(ckpt, f"step-{AT}")
    data = ["--data", T("ex", "mlp_digits_data")]
    plan = compile_plan("mlp_digits", 3, 2)
    linear = T("linear.zplan")
    run_tool([args.zero_opt, T("ex", "linear_regression.onnx"), "-o", linear, "--world-size=2", *RECIPE])
    refused([linear, "--nproc", 2, "--data", T("ex", "linear_regression_data"), "--steps", STEPS, "--resume", ckpt],
            ["another model"], ckpt)
    other_lr = compile_plan("mlp_digits", 3, 2, "--lr=0.01")
    refused([other_lr, "--nproc", 2, *data, "--steps", STEPS, "--resume", ckpt], ["--resume-override", "lr="], ckpt)
    run_tool([args.zero_run, other_lr, "--nproc", 2, *data, "--steps", AT + 1, "--resume", ckpt, "--resume-override"])
    refused([plan, "--nproc", 2, *data, "--steps", AT - 1, "--resume", ckpt], ["past --steps"], ckpt)
    refused([plan, "--nproc", 2, *data, "--steps", STEPS, "--resume", ckpt, "--seed", SEED + 1], ["--seed"], ckpt)
    # Damaged copies: a flipped byte, a missing file, no manifest, an unknown version.
    for label, damage, keywords in (
            ("flipped", lambda d: flip(os.path.join(d, "rank-00001.bin")), ["rank-00001.bin", "checksum"]),
            ("missing", lambda d: os.remove(os.path.join(d, "rank-00000.bin")), ["rank-00000.bin", "missing"]),
            ("incomplete", lambda d: os.remove(os.path.join(d, "manifest.json")), ["not a complete checkpoint"]),
            ("version", lambda d: set_version(d, 99), ["format version 99"])):
        copy = T("damaged-" + label)
        shutil.copytree(step, copy)
        damage(copy)
        refused([plan, "--nproc", 2, *data, "--steps", STEPS, "--resume", copy], keywords, copy)


def flip(path):
    with open(path, "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0x40]))


def set_version(directory, version):
    path = os.path.join(directory, "manifest.json")
    manifest = json.load(open(path))
    manifest["version"] = version
    json.dump(manifest, open(path, "w"))


R.case("refusals: another model, other hyper-parameters, damaged checkpoints", refusals)

R.finish()
