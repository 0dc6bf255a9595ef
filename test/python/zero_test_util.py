"""Shared helpers for the zero-opt / zero-run Python tests."""
import argparse
import json
import os
import subprocess
import sys
import time
import traceback

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(extra=None):
    p = argparse.ArgumentParser()
    p.add_argument("--zero-opt", default=os.path.join(ROOT, "build/bin/zero-opt"))
    p.add_argument("--zero-run", default=os.path.join(ROOT, "build/bin/zero-run"))
    p.add_argument("-k", dest="filter", default="", help="run only cases whose name contains this")
    p.add_argument("-v", dest="verbose", action="store_true")
    if extra:
        extra(p)
    return p.parse_args()


class Runner:
    """A tiny test runner: each case is a callable that raises on failure."""

    def __init__(self, args):
        self.args = args
        self.passed = 0
        self.failed = []
        self.t0 = time.time()

    def case(self, name, fn, *a, **kw):
        if self.args.filter and self.args.filter not in name:
            return
        t = time.time()
        try:
            fn(*a, **kw)
        except Exception as e:  # noqa: BLE001 - every failure is reported, none aborts the run
            self.failed.append(name)
            msg = "".join(traceback.format_exception_only(type(e), e)).strip()
            if self.args.verbose or not isinstance(e, AssertionError):
                msg = traceback.format_exc().strip()
            print(f"FAIL {name} ({time.time() - t:.2f}s): {msg}", flush=True)
        else:
            self.passed += 1
            print(f"ok   {name} ({time.time() - t:.2f}s)", flush=True)

    def finish(self):
        print(f"total {time.time() - self.t0:.1f}s")
        if self.failed:
            print("failed cases:\n  " + "\n  ".join(self.failed))
        print(f"{self.passed} passed, {len(self.failed)} failed")
        sys.exit(1 if self.failed or not self.passed else 0)


def snapshot(path):
    """Every file under `path` and its bytes, to check that a failed run left them as they were."""
    files = {}
    for root, _, names in os.walk(path):
        for name in names:
            with open(os.path.join(root, name), "rb") as f:
                files[os.path.join(root, name)] = f.read()
    return files


def run_tool(cmd, timeout=120, check=True, cwd=None):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=ENV, timeout=timeout, cwd=cwd)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} -> rc {p.returncode}\n{p.stderr.strip()[-2000:]}")
    return p


def count_plan_instrs(zero_opt, model, flags, opcode):
    """How many `opcode` instructions the plan zero-opt compiles from model with flags has."""
    p = run_tool([zero_opt, model, "--emit=plan", "--mlir-elide-resource-strings-if-larger=16", *flags])
    return p.stdout.count(f'plan.instr "{opcode}"')


def expected_placement(stage, nbytes, persist_below=0):
    """(weights, grad, optimizer_state) of a parameter of nbytes at a ZeRO stage, as --report lists
    them: stage 1 shards the optimizer state, 2 also the gradient, 3 also the weights, except that
    stage 3 keeps parameters below --zero-persist-below bytes replicated (all three)."""
    if stage == 3 and nbytes < persist_below:
        stage = 0
    return tuple("sharded" if stage > i else "replicated" for i in (2, 1, 0))


def check_report_placement(report, stage, persist_below=0):
    """Every trainable parameter in a --report has the placement of its stage and size."""
    for p in report["placement"]:
        got = (p["weights"], p["grad"], p["optimizer_state"])
        want = expected_placement(stage, p["bytes"], persist_below)
        assert got == want, f"report placement of {p['name']} ({p['bytes']} bytes): {got}, expected {want}"


def read_log(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def onnx_initializers(path):
    """An ONNX model's initializers by name, as numpy arrays."""
    import onnx
    from onnx import numpy_helper
    return {i.name: numpy_helper.to_array(i) for i in onnx.load(path).graph.initializer}


def report_peak_bytes(report):
    """Rank 0's arena peak from a zero-opt --report."""
    with open(report) as f:
        return json.load(f)["ranks"][0]["peak_bytes"]


def loss_errors(lines, ref_losses, steps):
    """The losses of a zero-run --log (whose steps must be 0..steps-1) and their
    relative errors against the reference losses."""
    import numpy as np
    assert [l["step"] for l in lines] == list(range(steps)), f"log steps {[l['step'] for l in lines]}"
    losses = np.array([l["loss"] for l in lines], np.float64)
    return losses, np.abs(losses - ref_losses) / np.abs(ref_losses)


def assert_losses_close(losses, ref_losses, rel, rtol):
    """Every step's loss within rtol (relative) of the reference; rel from loss_errors."""
    import numpy as np
    if not (rel <= rtol).all():
        s = int(np.argmax(rel > rtol))
        raise AssertionError(f"loss at step {s}: zero {losses[s]!r} vs torch {ref_losses[s]!r} (rel {rel[s]:.2e}); "
                             f"max rel {rel.max():.2e}")


def assert_close(name, got, want, rtol, atol):
    import numpy as np
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    if got.shape != want.shape:
        raise AssertionError(f"{name}: shape {got.shape} != expected {want.shape}")
    bad = ~(np.abs(got - want) <= atol + rtol * np.abs(want))
    if bad.any():
        i = np.unravel_index(np.argmax(np.abs(got - want) - rtol * np.abs(want)), got.shape) if got.ndim else ()
        raise AssertionError(f"{name}: {bad.sum()}/{bad.size} elements differ; worst at {i}: "
                             f"got {got[i]!r} want {want[i]!r} (rtol {rtol}, atol {atol})")
