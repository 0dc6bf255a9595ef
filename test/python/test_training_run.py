#!/usr/bin/python3
"""A real training run's schedule, clipping, accumulation, evaluation, shuffled epochs and dropout vs PyTorch.

zero-opt --lr-schedule/--warmup-steps/--total-steps/--min-lr-ratio and
--clip-grad-norm, trained by zero-run, against a float64 PyTorch reference
that the test builds the way recipes do: torch.optim.lr_scheduler.LambdaLR
with HuggingFace's warmup + decay factors (scheduler.step() after every
optimizer step) and torch.nn.utils.clip_grad_norm_ before optimizer.step().
For the MLP at ZeRO stages 0-3 and N = 1, 2, 3 (both features together),
each feature alone, stage 3 with some parameters persistent (replicated and
sharded gradients in one norm), gradient accumulation (micro-step a of step s reading global
batch s*K + a, each loss / K backward, as PyTorch accumulates) and a GPT at every stage, compare per
step
  * the loss (relative 1e-4),
  * the log's "lr" with the reference's rate (relative 1e-5),
  * the log's "grad_norm" with clip_grad_norm_'s return value (relative 1e-4),
and the exported weights after the run. zero-opt --eval with zero-run --eval-data/--eval-every is
compared the same way: each evaluation's step, rows and loss against model.eval() on the held-out
rows (the reversed data minus 5 rows, so a partial batch is left out), including a BatchNorm model
(running statistics) and the dropout model (no dropout). Everything together (cosine with warmup,
clipping, K = 4, evaluation and shuffling) runs at every stage and N = 1, 2, 3, as do the GPT and
dropout cases. zero-run --shuffle --seed S is checked the same way, the
reference reading rows in the order of examples/zero_random.py (the generator data_order.h defines).
Dropout: SGD on a model with two training-mode Dropouts against PyTorch applying the masks of
zero's documented generator (the same Python module), and that generator's statistics.

usage: test_training_run.py --zero-opt PATH --zero-run PATH [-k FILTER] [-v]
"""
import json
import math
import os
import re
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zero_test_util import (ROOT, Runner, assert_close, assert_losses_close, loss_errors,  # noqa: E402
                            onnx_initializers, parse_args, read_log, run_tool)

sys.path.insert(0, os.path.join(ROOT, "examples"))
import zero_random  # noqa: E402
import export_examples as ex  # noqa: E402
import export_transformers as et  # noqa: E402

torch.set_num_threads(1)
args = parse_args()
R = Runner(args)
tmp = tempfile.mkdtemp(prefix="zero-training-run-test-")
T = lambda *n: os.path.join(tmp, *n)  # noqa: E731

ex.main(T("ex"))
GPT = "gpt_tied"
et.write(GPT, T("ex"))


def schedule_factor(kind, warmup, total, min_ratio, s):
    """The multiplier of lr at optimizer step s (from 0), as the issue and docs/guide.md define it:
    HuggingFace's get_{linear,cosine}_schedule_with_warmup, floored at min_ratio after warmup and
    held at its step-`total` value from then on."""
    if kind != "constant":
        s = min(s, total)
    if s < warmup:
        return s / max(1, warmup)
    if kind == "constant":
        f = 1.0
    elif kind == "linear":
        f = max(0.0, (total - s) / max(1, total - warmup))
    else:
        f = max(0.0, 0.5 * (1.0 + math.cos(math.pi * (s - warmup) / max(1, total - warmup))))
    return min_ratio + (1.0 - min_ratio) * f


class Recipe:
    """Flags of one training run and the matching PyTorch objects."""

    def __init__(self, optimizer, lr, schedule=None, warmup=0, total=0, min_ratio=0.0, clip=0.0, accum=1,
                 eval_every=0, freeze=None, trainable=None):
        self.optimizer, self.lr, self.accum, self.eval_every = optimizer, lr, accum, eval_every
        self.freeze, self.trainable = freeze, trainable
        self.schedule, self.warmup, self.total, self.min_ratio, self.clip = schedule, warmup, total, min_ratio, clip

    def flags(self):
        f = ([f"--optimizer=adamw", f"--lr={self.lr}", "--weight-decay=0.01"] if self.optimizer == "adamw"
             else ["--optimizer=sgd", f"--lr={self.lr}", "--momentum=0.9"])
        if self.schedule:
            f.append(f"--lr-schedule={self.schedule}")
            if self.schedule != "constant":
                f += [f"--total-steps={self.total}", f"--min-lr-ratio={self.min_ratio}"]
        if self.warmup:
            f.append(f"--warmup-steps={self.warmup}")
        if self.clip:
            f.append(f"--clip-grad-norm={self.clip}")
        if self.accum > 1:
            f.append(f"--grad-accum={self.accum}")
        if self.eval_every:
            f.append("--eval")
        if self.freeze:
            f.append(f"--freeze={self.freeze}")
        if self.trainable:
            f.append(f"--trainable={self.trainable}")
        return f

    def trains(self, name):
        """Whether zero-opt --freeze/--trainable leave parameter `name` trained (re.fullmatch, as zero)."""
        return not (self.freeze and re.fullmatch(self.freeze, name)) and \
            not (self.trainable and not re.fullmatch(self.trainable, name))

    def torch_optimizer(self, params):
        if self.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=self.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
        return torch.optim.SGD(params, lr=self.lr, momentum=0.9)

    def factor(self, s):
        if not self.schedule and not self.warmup:
            return 1.0
        return schedule_factor(self.schedule or "constant", self.warmup, self.total, self.min_ratio, s)


def eval_data(data):
    """The evaluation set: the training rows reversed, minus a few, so that the evaluation reads
    other batches than training and its last partial batch is left out."""
    return {k: np.ascontiguousarray(v[::-1][:len(v) - 5]) for k, v in data.items()}


def evaluate(model, tensors, n, b):
    """zero-run --eval-data's loss: model.eval() on global batches i of n*b rows (rank r's part
    rows (i*n + r)*b + j), the mean of their losses, over the E rows of the whole batches."""
    batches = len(tensors[0]) // (n * b)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        losses = [model(*(t[i * n * b:(i + 1) * n * b] for t in tensors)).item() for i in range(batches)]
    model.train(was_training)
    return sum(losses) / batches, batches * n * b


def evaluations(eval_every, steps):
    """The steps after which zero-run --eval-every evaluates: every eval_every-th and the last."""
    return [s for s in range(steps) if (s + 1) % eval_every == 0 or s == steps - 1] if eval_every else []


def reference(model, data, recipe, n, b, steps, order=None):
    """float64 PyTorch on the global batch of n*b rows per step (rows in `order`, a
    zero_random.Order; default the stored order): losses, rates, norms, parameters, and the
    evaluations (step, eval loss, eval rows) of recipe.eval_every."""
    model = model.double()
    tensors = [torch.from_numpy(v) for v in data.values()]
    tensors = [t.double() if t.is_floating_point() else t for t in tensors]
    d = len(tensors[0])
    order = order or zero_random.Order(d)
    # A frozen parameter is a buffer to PyTorch: no gradient, so no update and no weight decay.
    for name, p in model.named_parameters():
        p.requires_grad_(recipe.trains(name))
    opt = recipe.torch_optimizer([p for p in model.parameters() if p.requires_grad])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, recipe.factor)
    losses, rates, norms, evals = [], [], [], []
    held_out = [torch.from_numpy(v) for v in eval_data(data).values()]
    held_out = [t.double() if t.is_floating_point() else t for t in held_out]
    k = recipe.accum
    for s in range(steps):
        # Accumulation: micro-step a of step s reads global batch s*k + a; each loss / k backward.
        opt.zero_grad()
        total = 0.0
        for a in range(k):
            rows = torch.tensor(order.global_batch(s * k + a, n, b))
            loss = model(*(t[rows] for t in tensors))
            (loss / k).backward()
            total += loss.item() / k
        losses.append(total)
        if recipe.clip:
            norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.clip).item())
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
        if s in evaluations(recipe.eval_every, steps):
            evals.append((s, *evaluate(model, held_out, n, b)))
    params = {k: v.detach().numpy() for k, v in model.named_parameters()}
    return np.array(losses), np.array(rates), np.array(norms), params, evals


def check_evaluations(lines, ref_evals):
    """The log's evaluation lines against the reference's: steps, rows, losses (relative 1e-4)."""
    got = [l for l in lines if "eval_loss" in l]
    assert [(l["step"], l["eval_rows"]) for l in got] == [(s, rows) for s, _, rows in ref_evals], \
        f"evaluations {[(l['step'], l['eval_rows']) for l in got]} vs {[(s, r) for s, _, r in ref_evals]}"
    assert_close("eval_loss", [l["eval_loss"] for l in got], [v for _, v, _ in ref_evals], rtol=1e-4, atol=0)
    return [l for l in lines if "eval_loss" not in l]


def write_eval_data(model_name, data):
    directory = T("ex", model_name + "_eval")
    os.makedirs(directory, exist_ok=True)
    for k, v in eval_data(data).items():
        np.save(os.path.join(directory, k + ".npy"), v)
    return directory


def train_case(model_name, recipe, stage, n, steps, make, b, persist_below=0, w_rtol=1e-4, w_atol=1e-6,
               shuffle_seed=None):
    tag = f"{model_name}-{abs(hash(tuple(recipe.flags())))}-s{stage}-n{n}-p{persist_below}"
    plan, log, out = T(tag + ".zplan"), T(tag + ".jsonl"), T(tag + ".onnx")
    persist = [f"--zero-persist-below={persist_below}"] if persist_below else []
    run_tool([args.zero_opt, T("ex", model_name + ".onnx"), "-o", plan, f"--zero-stage={stage}",
              f"--world-size={n}", *recipe.flags(), *persist])
    shuffle = [] if shuffle_seed is None else ["--shuffle", "--seed", shuffle_seed]
    model, data = make()
    evaluation = []
    if recipe.eval_every:
        evaluation = ["--eval-data", write_eval_data(model_name, data), "--eval-every", recipe.eval_every]
    run_tool([args.zero_run, plan, "--nproc", n, "--data", T("ex", model_name + "_data"), "--steps", steps,
              "--log", log, "--export-onnx", out, *shuffle, *evaluation], timeout=180)
    order = None
    if shuffle_seed is not None:
        order = zero_random.Order(len(next(iter(data.values()))), shuffle=True, seed=shuffle_seed)
    ref_losses, ref_rates, ref_norms, ref_params, ref_evals = reference(model, data, recipe, n, b, steps, order)
    lines = check_evaluations(read_log(log), ref_evals)
    losses, rel = loss_errors(lines, ref_losses, steps)
    assert_losses_close(losses, ref_losses, rel, 1e-4)
    scheduled = bool(recipe.schedule or recipe.warmup)
    assert all(("lr" in l) == scheduled for l in lines), f"log 'lr' present: {['lr' in l for l in lines]}"
    if scheduled:
        assert_close("lr", [l["lr"] for l in lines], ref_rates, rtol=1e-5, atol=1e-12)
    assert all(("grad_norm" in l) == bool(recipe.clip) for l in lines), "log 'grad_norm' presence"
    if recipe.clip:
        assert_close("grad_norm", [l["grad_norm"] for l in lines], ref_norms, rtol=1e-4, atol=0)
        # The test is only as good as its clipping: some steps must clip, some not.
        assert (ref_norms > recipe.clip).any(), f"no step clipped (norms {ref_norms.min():.3g}..{ref_norms.max():.3g})"
    trained = onnx_initializers(out)
    for k, v in ref_params.items():
        assert_close(f"trained {k}", trained[k], v, rtol=w_rtol, atol=w_atol)


def mlp():
    return ex.EXAMPLES["mlp_digits"]()


def linear():
    return ex.EXAMPLES["linear_regression"]()


def gpt():
    return et.make(GPT)


STEPS = 30
BOTH = Recipe("adamw", 3e-3, "cosine", warmup=5, total=24, min_ratio=0.1, clip=0.35, eval_every=5)
for stage in range(4):
    for n in (1, 2, 3):
        R.case(f"mlp_digits cosine+warmup+clip+eval stage {stage} N={n}", train_case, "mlp_digits", BOTH, stage, n,
               STEPS, mlp, ex.MICRO_BATCH)

ALONE = {
    "linear schedule": Recipe("sgd", 0.05, "linear", total=20),
    "warmup to a constant rate": Recipe("adamw", 3e-3, warmup=10),
    "clipping": Recipe("sgd", 0.05, clip=0.3),
}
for (label, recipe), (stage, n) in zip(ALONE.items(), [(2, 3), (1, 2), (3, 2)]):
    R.case(f"mlp_digits {label} stage {stage} N={n}", train_case, "mlp_digits", recipe, stage, n, STEPS, mlp,
           ex.MICRO_BATCH)

# Gradient accumulation: K micro-steps per optimizer step, alone and with everything else.
ACCUM = Recipe("adamw", 3e-3, accum=4)
for stage in range(4):
    for n in (1, 2):
        R.case(f"mlp_digits --grad-accum=4 stage {stage} N={n}", train_case, "mlp_digits", ACCUM, stage, n, 10, mlp,
               ex.MICRO_BATCH)
# Everything together: cosine with warmup, clipping, K = 4, an evaluation every 5 steps and shuffled
# epochs (30 steps of K*N*b rows cross an epoch of the 1797 rows at every N).
ALL = Recipe("adamw", 3e-3, "cosine", warmup=3, total=24, min_ratio=0.1, clip=0.27, accum=4, eval_every=5)
for stage in range(4):
    for n in (1, 2, 3):
        R.case(f"mlp_digits cosine+warmup+clip+accum=4+eval+shuffle stage {stage} N={n}", train_case, "mlp_digits",
               ALL, stage, n, STEPS, mlp, ex.MICRO_BATCH, shuffle_seed=3)
for stage, n in [(3, 2), (1, 3)]:
    R.case(f"{GPT} cosine+warmup+clip+accum=2+eval stage {stage} N={n}", train_case, GPT,
           Recipe("adamw", 3e-3, "cosine", warmup=2, total=8, clip=1.0, accum=2, eval_every=3), stage, n, 8, gpt,
           et.MICRO_BATCH, w_rtol=1e-3, w_atol=3e-4)

# Stage 3 with the bias persistent: one replicated and one sharded gradient in the norm.
# --freeze and --trainable: the frozen parameters keep their values (checked with the trained ones)
# and the others train as PyTorch trains them with those parameters' requires_grad off.
FROZEN = Recipe("adamw", 0.01, clip=0.2, freeze=r"fc1\.weight")
for stage in range(4):
    R.case(f"mlp_digits --freeze stage {stage} N=2", train_case, "mlp_digits", FROZEN, stage, 2, 10, mlp, ex.MICRO_BATCH)
R.case("mlp_digits --trainable stage 3 N=3", train_case, "mlp_digits",
       Recipe("sgd", 0.05, trainable=r"fc2\..*"), 3, 3, 10, mlp, ex.MICRO_BATCH)


def check_frozen_report():
    """A frozen parameter has no gradient or optimizer state in the report or the plan."""
    report = T("frozen-report.json")
    run_tool([args.zero_opt, T("ex", "mlp_digits.onnx"), "-o", T("frozen.zplan"), "--zero-stage=3",
              "--world-size=2", "--freeze=fc1\\..*", "--report", report])
    with open(report) as f:
        placement = {p["name"]: p for p in json.load(f)["placement"]}
    for name in ("fc1.weight", "fc1.bias"):
        assert placement[name]["grad"] == placement[name]["optimizer_state"] == "none", placement[name]
        assert placement[name]["weights"] == "sharded", placement[name]
    assert placement["fc2.weight"]["optimizer_state"] == "sharded", placement["fc2.weight"]


R.case("--freeze: the report shows no gradient or optimizer state", check_frozen_report)
R.case("linear_regression clip + cosine stage 3 N=3 --zero-persist-below=16", train_case, "linear_regression",
       Recipe("sgd", 0.05, "cosine", warmup=3, total=30, clip=0.2), 3, 3, STEPS, linear, ex.MICRO_BATCH,
       persist_below=16)

# A transformer: weights as test_models.py compares them (float32 vs float64 Adam trajectories).
GPT_RECIPE = Recipe("adamw", 3e-3, "cosine", warmup=4, total=20, min_ratio=0.0, clip=1.0, eval_every=5)
for stage, n in [(s, n) for s in range(4) for n in (1, 2, 3)]:
    R.case(f"{GPT} cosine+warmup+clip+eval stage {stage} N={n}", train_case, GPT, GPT_RECIPE, stage, n, 20, gpt,
           et.MICRO_BATCH, w_rtol=1e-3, w_atol=3e-4)

# Evaluation mode: BatchNorm normalizes with its running statistics (N = 1: each rank keeps its own).
class BatchNormMLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.bn, self.fc2 = torch.nn.Linear(64, 32), torch.nn.BatchNorm1d(32), torch.nn.Linear(32, 10)

    def forward(self, x, y):
        return torch.nn.functional.cross_entropy(self.fc2(torch.relu(self.bn(self.fc1(x)))), y)


def export_batchnorm_model():
    torch.manual_seed(0)
    model, data = BatchNormMLP(), mlp()[1]
    ex.export(model, data, T("ex", "bn_mlp.onnx"))
    os.makedirs(T("ex", "bn_mlp_data"), exist_ok=True)
    for k, v in data.items():
        np.save(T("ex", "bn_mlp_data", k + ".npy"), v)


def batchnorm_model():
    """The model as exported: exporting in training mode ran a forward pass that moved the running
    statistics, so the reference starts from the ONNX initializers."""
    torch.manual_seed(0)
    model = BatchNormMLP()
    init = onnx_initializers(T("ex", "bn_mlp.onnx"))
    state = model.state_dict()
    for k in ("bn.running_mean", "bn.running_var", "fc1.weight", "bn.weight"):
        assert k in init, f"the export has no initializer {k}: {sorted(init)}"
    model.load_state_dict({k: torch.from_numpy(init[k].copy()) if k in init else v for k, v in state.items()})
    return model, mlp()[1]


def check_batchnorm_eval_differs():
    """The evaluation loss with running statistics is not the training-mode loss (so the
    BatchNorm cases can fail)."""
    model, data = batchnorm_model()
    tensors = [torch.from_numpy(v) for v in eval_data(data).values()]
    train_mode = model(*(t[:2 * ex.MICRO_BATCH] for t in tensors)).item()
    eval_mode = evaluate(model, [t[:2 * ex.MICRO_BATCH] for t in tensors], 2, ex.MICRO_BATCH)[0]
    assert abs(train_mode - eval_mode) > 1e-3 * abs(eval_mode), f"{train_mode} vs {eval_mode}"


R.case("eval: a BatchNorm model exports in training mode", export_batchnorm_model)
R.case("eval: BatchNorm's evaluation mode changes the loss", check_batchnorm_eval_differs)
for stage in (0, 3):
    R.case(f"eval: BatchNorm with running statistics, SGD stage {stage} N=1", train_case, "bn_mlp",
           Recipe("sgd", 0.05, eval_every=4), stage, 1, 12, batchnorm_model, ex.MICRO_BATCH)

# Shuffled epochs: linear_regression has few rows, so 30 steps cross several epochs.
def check_shuffle_reference():
    """The Python generator (which the C++ one must follow): a permutation per epoch, different
    epochs and seeds differ, and the global batches cover every row once per epoch."""
    d = len(next(iter(linear()[1].values())))
    order = zero_random.Order(d, shuffle=True, seed=7)
    for epoch in range(3):
        perm = zero_random.permutation(d, 7, epoch)
        assert sorted(perm) == list(range(d)), f"epoch {epoch} is not a permutation"
        assert [order.row(epoch * d + q) for q in range(d)] == perm
    assert zero_random.permutation(d, 7, 0) != zero_random.permutation(d, 7, 1)
    assert zero_random.permutation(d, 7, 0) != zero_random.permutation(d, 8, 0)
    assert zero_random.permutation(d, 7, 0) != list(range(d))


R.case("shuffle: the reference generator draws a permutation per epoch", check_shuffle_reference)
SHUFFLED = Recipe("sgd", 0.05)
for stage, n in [(0, 1), (1, 2), (3, 3)]:
    R.case(f"linear_regression --shuffle --seed 7 stage {stage} N={n}", train_case, "linear_regression", SHUFFLED,
           stage, n, STEPS, linear, ex.MICRO_BATCH, shuffle_seed=7)


def check_shuffle_changes_the_run():
    """A shuffled run is not the stored order's run (else the cases above test nothing)."""
    model, data = linear()
    d = len(next(iter(data.values())))
    plain = reference(model, data, SHUFFLED, 2, ex.MICRO_BATCH, STEPS)[0]
    model, data = linear()
    shuffled = reference(model, data, SHUFFLED, 2, ex.MICRO_BATCH, STEPS,
                         zero_random.Order(d, shuffle=True, seed=7))[0]
    assert not np.allclose(plain, shuffled, rtol=1e-3), "shuffling did not change the losses"


R.case("shuffle: a shuffled run differs from the stored order's", check_shuffle_changes_the_run)


# --- dropout ------------------------------------------------------------------------------------------
# zero's masks come from the documented generator (examples/zero_random.py), so the reference
# applies exactly those masks: the training math is compared exactly, the generator statistically.
DROP_RATIOS = (0.2, 0.5)
DROP_SEED = 11


class DropoutMLP(torch.nn.Module):
    """Linear-ReLU-Dropout twice, then a linear regression head; `masks` (set by the reference)
    replaces nn.functional.dropout's random masks with zero's."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = torch.nn.Linear(8, 32), torch.nn.Linear(32, 32), torch.nn.Linear(32, 1)
        self.masks = None

    def drop(self, h, stream):
        p = DROP_RATIOS[stream]
        if self.masks is None:
            return torch.nn.functional.dropout(h, p, training=self.training)
        return h * self.masks[stream] / (1 - p)

    def forward(self, x, y):
        h = self.drop(torch.relu(self.fc1(x)), 0)
        h = self.drop(torch.relu(self.fc2(h)), 1)
        return ((self.fc3(h) - y) ** 2).mean()  # torch 1.13 cannot export F.mse_loss


def dropout_model():
    torch.manual_seed(0)
    return DropoutMLP(), linear()[1]


def export_dropout_model():
    model, data = dropout_model()
    ex.export(model, data, T("ex", "dropout_mlp.onnx"))
    os.makedirs(T("ex", "dropout_mlp_data"), exist_ok=True)
    for k, v in data.items():
        np.save(T("ex", "dropout_mlp_data", k + ".npy"), v)
    import onnx
    ops = [n.op_type for n in onnx.load(T("ex", "dropout_mlp.onnx")).graph.node]
    assert ops.count("Dropout") == 2, f"export has {ops.count('Dropout')} Dropout nodes: {ops}"


def dropout_reference(n, b, steps, lr, accum=1, eval_every=0):
    """float64 SGD on the global batch with zero's masks: rank r's rows in micro-step a get the
    masks of rank r and micro-step a; evaluations without dropout."""
    model, data = dropout_model()
    model = model.double()
    x, y = (torch.from_numpy(data[k]).double() for k in ("x", "y"))
    order = zero_random.Order(len(x))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    held_out = [torch.from_numpy(v).double() for v in eval_data(data).values()]
    losses, evals = [], []
    for s in range(steps):
        opt.zero_grad()
        total = 0.0
        for a in range(accum):
            rows = torch.tensor(order.global_batch(s * accum + a, n, b))
            model.masks = [torch.cat([torch.from_numpy(zero_random.dropout_keep(DROP_SEED, s, a, r, stream, b * 32, p)
                                                       .reshape(b, 32)).double() for r in range(n)])
                           for stream, p in enumerate(DROP_RATIOS)]
            loss = model(x[rows], y[rows])
            (loss / accum).backward()
            total += loss.item() / accum
        losses.append(total)
        opt.step()
        if s in evaluations(eval_every, steps):
            model.masks = None
            evals.append((s, *evaluate(model, held_out, n, b)))
    return np.array(losses), {k: v.detach().numpy() for k, v in model.named_parameters()}, evals


def dropout_case(stage, n, steps=20, lr=0.05, accum=1, eval_every=0):
    tag = f"dropout-s{stage}-n{n}-k{accum}-e{eval_every}"
    plan, log, out = T(tag + ".zplan"), T(tag + ".jsonl"), T(tag + ".onnx")
    evaluation = ["--eval-data", write_eval_data("dropout_mlp", dropout_model()[1]), "--eval-every", eval_every]
    run_tool([args.zero_opt, T("ex", "dropout_mlp.onnx"), "-o", plan, f"--zero-stage={stage}", f"--world-size={n}",
              "--optimizer=sgd", f"--lr={lr}", f"--grad-accum={accum}", *(["--eval"] if eval_every else [])])
    run_tool([args.zero_run, plan, "--nproc", n, "--data", T("ex", "dropout_mlp_data"), "--steps", steps,
              "--seed", DROP_SEED, "--log", log, "--export-onnx", out, *(evaluation if eval_every else [])],
             timeout=180)
    ref_losses, ref_params, ref_evals = dropout_reference(n, ex.MICRO_BATCH, steps, lr, accum, eval_every)
    losses, rel = loss_errors(check_evaluations(read_log(log), ref_evals), ref_losses, steps)
    assert_losses_close(losses, ref_losses, rel, 1e-4)
    trained = onnx_initializers(out)
    for k, v in ref_params.items():
        assert_close(f"trained {k}", trained[k], v, rtol=1e-4, atol=1e-6)


def check_dropout_masks_are_random():
    """The generator's masks: drop fraction within 5 sigma of the ratio, the kept elements'
    scaled mean unbiased, and masks of other steps, ranks, streams and seeds uncorrelated."""
    count = 200000
    for p in (0.1, 0.5, 0.9):
        keep = zero_random.dropout_keep(DROP_SEED, 3, 0, 1, 0, count, p)
        dropped = 1 - keep.mean()
        sigma = (p * (1 - p) / count) ** 0.5
        assert abs(dropped - p) < 5 * sigma, f"ratio {p}: dropped {dropped:.5f} (sigma {sigma:.5f})"
        assert abs((keep / (1 - p)).mean() - 1) < 5 * sigma / (1 - p), "scaled mask is biased"
    base = zero_random.dropout_keep(DROP_SEED, 3, 0, 1, 0, count, 0.5).astype(np.float64)
    for label, other in (("step", (DROP_SEED, 4, 0, 1, 0)), ("micro-step", (DROP_SEED, 3, 1, 1, 0)),
                         ("rank", (DROP_SEED, 3, 0, 2, 0)), ("stream", (DROP_SEED, 3, 0, 1, 1)),
                         ("seed", (DROP_SEED + 1, 3, 0, 1, 0))):
        o = zero_random.dropout_keep(*other, count, 0.5).astype(np.float64)
        corr = np.corrcoef(base, o)[0, 1]
        assert abs(corr) < 5 / count ** 0.5, f"masks of another {label} correlate: {corr:.4f}"
    # Neighbouring elements are independent too.
    corr = np.corrcoef(base[:-1], base[1:])[0, 1]
    assert abs(corr) < 5 / count ** 0.5, f"neighbouring elements correlate: {corr:.4f}"


def check_dropout_drops():
    """Training with dropout differs from training without (so the cases above can fail)."""
    model, data = dropout_model()
    with_masks = dropout_reference(2, ex.MICRO_BATCH, 5, 0.05)[0]
    model = model.double()
    x, y = (torch.from_numpy(data[k]).double() for k in ("x", "y"))
    order = zero_random.Order(len(x))
    model.eval()  # no dropout
    plain = np.array([model(x[torch.tensor(order.global_batch(0, 2, ex.MICRO_BATCH))],
                            y[torch.tensor(order.global_batch(0, 2, ex.MICRO_BATCH))]).item()])
    assert abs(with_masks[0] - plain[0]) > 1e-6 * abs(plain[0]), "the masks change nothing"


def check_dropout_forward_only_is_identity():
    """An evaluation (--forward-only) plan has no dropout: its loss is the model's in eval mode."""
    plan, outdir = T("dropout-eval.zplan"), T("dropout-eval-out")
    run_tool([args.zero_opt, T("ex", "dropout_mlp.onnx"), "-o", plan, "--forward-only"])
    run_tool([args.zero_run, plan, "--data", T("ex", "dropout_mlp_data"), "--steps", 1, "--save-outputs", outdir])
    got = np.load(os.path.join(outdir, os.listdir(outdir)[0]))
    model, data = dropout_model()
    model.eval()
    rows = torch.arange(ex.MICRO_BATCH)
    want = model(torch.from_numpy(data["x"])[rows], torch.from_numpy(data["y"])[rows]).item()
    assert_close("eval loss", got, np.float32(want), rtol=1e-5, atol=0)


R.case("dropout: the model exports two training-mode Dropouts", export_dropout_model)
R.case("dropout: masks are random (fraction, bias, independence)", check_dropout_masks_are_random)
R.case("dropout: the masks change the loss", check_dropout_drops)
for stage, n in [(s, n) for s in range(4) for n in (1, 2, 3)]:
    R.case(f"dropout: SGD with zero's masks stage {stage} N={n}", dropout_case, stage, n)
# With accumulation each micro-step draws its own masks.
for stage, n in [(0, 2), (3, 2)]:
    R.case(f"dropout: SGD with zero's masks and --grad-accum=3 stage {stage} N={n}", dropout_case, stage, n,
           steps=8, accum=3)
# The evaluation program does not drop.
for stage, n in [(0, 1), (2, 2), (3, 3)]:
    R.case(f"dropout: evaluation without dropout every 4 steps stage {stage} N={n}", dropout_case, stage, n,
           steps=10, eval_every=4)
R.case("dropout: a --forward-only plan does not drop", check_dropout_forward_only_is_identity)

R.finish()
