#!/usr/bin/python3
"""Models whose tensors live in external data files (onnx.save_model(...,
save_as_external_data=True), which models over 2 GB need).

zero-opt must compile such a model to exactly the plan of the same model with
its data inline, whatever the files' layout (one file, or one per tensor,
with the small tensors and Constant attributes external too) and wherever
it runs from; zero-run then trains it. With --omit-weights it reads none of
the weights: its peak memory stays far below their size. Bad external data
is test_bad_inputs.py's.

usage: test_external_data.py --zero-opt PATH --zero-run PATH [-k FILTER] [-v]
"""
import filecmp
import os
import sys
import tempfile

import numpy as np
import onnx
import torch
from onnx import TensorProto as TP
from onnx import helper as oh
from onnx import numpy_helper as nh

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zero_test_util import ROOT, Runner, parse_args, read_log, run_tool  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "examples"))
import export_transformers as et  # noqa: E402

torch.set_num_threads(1)
args = parse_args()
R = Runner(args)
tmp = tempfile.mkdtemp(prefix="zero-external-data-")
T = lambda *n: os.path.join(tmp, *n)  # noqa: E731

# A GPT with weights large enough to stay mapped (the token embedding is
# 256 x 128 floats, 128 KiB) beside small ones and int64 shape constants.
torch.manual_seed(0)
VOCAB, SEQ = 256, 8
gpt = et.GPT(vocab=VOCAB, d=128, heads=4, layers=1, seq=SEQ)
data = et.gpt_data(VOCAB, SEQ)
os.makedirs(T("inline"))
et.export(gpt, data, T("inline", "gpt.onnx"))
os.makedirs(T("data"))
for name, value in data.items():
    np.save(T("data", name + ".npy"), value)

LAYOUTS = {
    # Every tensor, Constant attributes included, in one file.
    "one_file": dict(all_tensors_to_one_file=True, location="gpt.weights", size_threshold=0,
                     convert_attribute=True),
    # ONNX's default: one file per tensor of 1 KiB or more.
    "file_per_tensor": dict(all_tensors_to_one_file=False),
}
for layout, options in LAYOUTS.items():
    os.makedirs(T(layout))
    onnx.save_model(onnx.load(T("inline", "gpt.onnx")), T(layout, "gpt.onnx"),
                    save_as_external_data=True, **options)
    external = [t for t in onnx.load(T(layout, "gpt.onnx"), load_external_data=False).graph.initializer
                if t.data_location == TP.EXTERNAL]
    assert len(external) >= 5, f"{layout}: only {len(external)} external initializers"

FLAGS = ["--optimizer=adamw", "--lr=3e-3"]


def compile_plan(model, plan, stage, world, *extra, cwd=None):
    run_tool([args.zero_opt, model, "-o", plan, f"--zero-stage={stage}", f"--world-size={world}", *FLAGS, *extra],
             cwd=cwd)


def same_plan(layout, stage, world, *extra):
    """The external-data model compiles to the inline model's plan, byte for byte."""
    d = tempfile.mkdtemp(dir=tmp)
    inline, external = os.path.join(d, "inline.zplan"), os.path.join(d, "external.zplan")
    compile_plan(T("inline", "gpt.onnx"), inline, stage, world, *extra)
    # From another directory: locations are relative to the model's.
    compile_plan(T(layout, "gpt.onnx"), external, stage, world, *extra, cwd="/")
    assert filecmp.cmp(inline, external, shallow=False), "the plans differ"


def trains(layout):
    """zero-run trains the external-data model as it trains the inline one."""
    d = tempfile.mkdtemp(dir=tmp)
    logs = []
    for source in ("inline", layout):
        plan, log = os.path.join(d, source + ".zplan"), os.path.join(d, source + ".jsonl")
        compile_plan(T(source, "gpt.onnx"), plan, 3, 2)
        run_tool([args.zero_run, plan, "--nproc", 2, "--data", T("data"), "--steps", 3, "--log", log])
        logs.append([row["loss"] for row in read_log(log)])
    assert logs[0] == logs[1], f"losses differ: {logs[0]} vs {logs[1]}"
    assert logs[1][-1] < logs[1][0], f"the loss did not fall: {logs[1]}"


# Measures a command's peak resident memory from a small process: a child forked
# from this one (which holds torch) would count this one's pages.
_MEASURE = ("import os, subprocess, sys\n"
            "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
            "_, status, usage = os.wait4(p.pid, 0)\n"
            "sys.exit(p.stderr.read().decode()[-800:] if status else print(usage.ru_maxrss))")


def peak_rss_bytes(cmd):
    """The peak resident memory of one run of cmd."""
    p = run_tool([sys.executable, "-S", "-c", _MEASURE, *cmd])
    return int(p.stdout) * 1024  # kilobytes on Linux


def omitted_weights_are_not_read():
    """With --omit-weights zero-opt reads only the shapes of 96 MiB of mapped weights."""
    d = tempfile.mkdtemp(dir=tmp)
    w = nh.from_array(np.full((4096, 6144), 0.5, np.float32), "W")
    graph = oh.make_graph([oh.make_node("MatMul", ["x", "W"], ["h"]),
                           oh.make_node("ReduceMean", ["h"], ["loss"], keepdims=0)], "g",
                          [oh.make_tensor_value_info("x", TP.FLOAT, [2, 4096])],
                          [oh.make_tensor_value_info("loss", TP.FLOAT, [])], initializer=[w])
    model = os.path.join(d, "big.onnx")
    onnx.save_model(oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)]), model,
                    save_as_external_data=True, location="big.weights")
    small = os.path.join(ROOT, "examples", "mlp_digits.onnx")
    base = peak_rss_bytes([args.zero_opt, small, "-o", os.path.join(d, "small.zplan"), "--omit-weights", *FLAGS])
    peak = peak_rss_bytes([args.zero_opt, model, "-o", os.path.join(d, "big.zplan"), "--omit-weights",
                           "--zero-stage=3", "--world-size=2", *FLAGS])
    weights = w.ByteSize()
    assert peak < base + weights // 4, \
        f"peak {peak >> 20} MiB with {weights >> 20} MiB of omitted weights (baseline {base >> 20} MiB)"


for layout in LAYOUTS:
    for stage, world in [(0, 1), (3, 2)]:
        R.case(f"{layout}: same plan, stage {stage} N={world}", same_plan, layout, stage, world)
    R.case(f"{layout}: same plan with --omit-weights", same_plan, layout, 3, 2, "--omit-weights")
R.case("one_file: trains at stage 3 N=2 as the inline model does", trains, "one_file")
R.case("--omit-weights reads no external weights", omitted_weights_are_not_read)
R.finish()
