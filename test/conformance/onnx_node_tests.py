#!/usr/bin/env python3
"""Runs ONNX's own backend node tests (Debian's libonnx-testdata) on zero.

Every test whose operator zero supports (docs/ops.md) is compiled with
`zero-opt --forward-only`, run for one step on one rank by `zero-run`, and
its outputs are compared with the expected ones at ONNX's backend tolerances
(rtol 1e-3, atol 1e-7). A test of an older opset than zero imports (many
are of opset 1 or 6) is first converted to opset 7 by ONNX's version
converter; its expected outputs stay ONNX's. Inputs that zero requires to be
compile-time constants are made initializers for the operators listed in
CONSTANT_INPUTS (exporters write them as constants; the node tests feed them
as graph inputs). A test that cannot run counts
as failed, with its reason. Tests listed as known failures in docs/ops.md are reported apart;
the run fails if any other test fails or a listed one starts passing (the
list must stay true).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper, version_converter

DATA = "/usr/share/libonnx-testdata/data/node"
RTOL, ATOL = 1e-3, 1e-7
MIN_OPSET = 7  # zero's oldest (frontends/onnx/SupportedOps.h)
# Operator -> the input positions it reads at compile time only.
CONSTANT_INPUTS = {"Pad": {1, 2, 3}, "Resize": {1, 2, 3}, "Upsample": {1}}


def read_ops_doc(path):
    """The supported op types and the known failures (test -> reason) of docs/ops.md."""
    supported, known = set(), {}
    section = None
    for line in open(path):
        if line.startswith("## "):
            section = line[3:].strip().lower()
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or set(cells[0]) <= set("-: ") or cells[0] in ("Op", "Test"):
            continue
        name = cells[0].strip("`")
        if section == "supported operators":
            supported.add(name)
        elif section == "known conformance failures":
            known[name] = cells[1]
    return supported, known


def test_op_type(model):
    """The operator a node test exercises: its single node's op type. Tests
    of several nodes (function expansions) exercise other ops and are left
    to the tests of those ops."""
    ops = {n.op_type for n in model.graph.node}
    return ops.pop() if len(ops) == 1 else None


def run_test(name, zero_opt, zero_run, work):
    directory = os.path.join(DATA, name)
    model_path = os.path.join(directory, "model.onnx")
    model = onnx.load(model_path)
    data_dir = os.path.join(directory, "test_data_set_0")
    inits = {i.name for i in model.graph.initializer}
    graph_inputs = [i for i in model.graph.input if i.name not in inits]
    node = model.graph.node[0]
    constant = {node.input[i] for i in CONSTANT_INPUTS.get(node.op_type, ()) if i < len(node.input)}
    case = os.path.join(work, name)
    os.makedirs(os.path.join(case, "data"))
    for index, info in enumerate(graph_inputs):
        tensor = onnx.TensorProto()
        with open(os.path.join(data_dir, f"input_{index}.pb"), "rb") as f:
            tensor.ParseFromString(f.read())
        if info.name in constant:
            tensor.name = info.name
            model.graph.initializer.append(tensor)
            continue
        array = numpy_helper.to_array(tensor)
        if array.dtype == np.bool_:
            array = array.astype(np.int64)
        if array.dtype not in (np.float32, np.int64):
            return f"input '{info.name}' has dtype {array.dtype}, not float32/int64"
        np.save(os.path.join(case, "data", f"{info.name}.npy"), array)
    for k in reversed(range(len(model.graph.input))):
        if model.graph.input[k].name in constant:
            del model.graph.input[k]
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is not None and opset < MIN_OPSET:
        model = version_converter.convert_version(model, MIN_OPSET)
    if constant or (opset is not None and opset < MIN_OPSET):
        model_path = os.path.join(case, "model.onnx")
        onnx.save(model, model_path)
    plan = os.path.join(case, "model.zplan")
    result = subprocess.run([zero_opt, model_path, "--forward-only", "-o", plan],
                            capture_output=True, text=True)
    if result.returncode != 0:
        return "compile: " + (result.stderr.strip().splitlines() or ["exit %d" % result.returncode])[-1]
    out = os.path.join(case, "out")
    result = subprocess.run([zero_run, plan, "--data", os.path.join(case, "data"), "--steps", "1",
                             "--save-outputs", out], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        return "run: " + (result.stderr.strip().splitlines() or ["exit %d" % result.returncode])[-1]
    for index, info in enumerate(model.graph.output):
        tensor = onnx.TensorProto()
        with open(os.path.join(data_dir, f"output_{index}.pb"), "rb") as f:
            tensor.ParseFromString(f.read())
        expected = numpy_helper.to_array(tensor)
        path = os.path.join(out, re.sub(r"[^A-Za-z0-9_.-]", "_", info.name) + ".npy")
        if not os.path.exists(path):
            return f"output '{info.name}' was not written"
        actual = np.load(path)
        if actual.shape != expected.shape:
            return f"output '{info.name}' has shape {actual.shape}, expected {expected.shape}"
        if expected.dtype == np.bool_:
            expected = expected.astype(np.int64)
        try:
            np.testing.assert_allclose(actual, expected.astype(actual.dtype), rtol=RTOL, atol=ATOL)
        except AssertionError as e:
            worst = str(e).strip().splitlines()
            return f"output '{info.name}' differs: " + " ".join(w.strip() for w in worst[2:5])
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--zero-opt", required=True)
    parser.add_argument("--zero-run", required=True)
    parser.add_argument("--ops-doc", required=True)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()

    supported, known = read_ops_doc(args.ops_doc)
    tests = []
    for name in sorted(os.listdir(DATA)):
        try:
            op = test_op_type(onnx.load(os.path.join(DATA, name, "model.onnx")))
        except Exception:  # an unreadable model is not a test of a supported op
            continue
        if op in supported:
            tests.append((name, op))

    passed, failed, known_failed, stale = [], [], [], []
    with tempfile.TemporaryDirectory() as work:
        for name, op in tests:
            try:
                reason = run_test(name, args.zero_opt, args.zero_run, work)
            except Exception as e:  # a crash of the harness is a failure too
                reason = f"harness: {type(e).__name__}: {e}"
            if reason is None:
                (stale if name in known else passed).append(name)
            elif name in known:
                known_failed.append((name, reason))
            else:
                failed.append((name, reason))
            if args.verbose:
                print(f"{'ok  ' if reason is None else 'FAIL'} {name}" + (f": {reason}" if reason else ""))

    for name, reason in failed:
        print(f"FAILED {name}: {reason}")
    for name in stale:
        print(f"PASSED but listed as a known failure in docs/ops.md: {name}")
    print(f"{len(known_failed)} known failures (docs/ops.md)")
    print(f"{len(passed) + len(stale)} passed, {len(failed) + len(known_failed)} failed")
    return 1 if failed or stale else 0


if __name__ == "__main__":
    sys.exit(main())
