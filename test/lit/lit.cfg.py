# -*- Python -*- lit configuration for zero-opt's FileCheck tests.

import os

import lit.formats
import lit.util

config.name = "zero"
config.test_format = lit.formats.ShTest(execute_external=False)

# .onnxtxt is ONNX's textual syntax; its '#' comments carry RUN/CHECK lines.
config.suffixes = [".mlir", ".onnxtxt", ".test"]
config.excludes = ["Inputs", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py"]

config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = getattr(config, "zero_obj_root", None) or config.test_source_root

# zero-opt first, then FileCheck, not, count and split-file of the LLVM
# that zero is built against.
for tools_dir in [getattr(config, "llvm_tools_dir", None), getattr(config, "zero_tools_dir", None)]:
    if tools_dir:
        config.environment["PATH"] = os.path.pathsep.join(
            [tools_dir, config.environment.get("PATH", os.environ.get("PATH", ""))])

config.substitutions.append(("%python", getattr(config, "python_executable", "python3")))

# Keep diagnostics stable.
config.environment["LC_ALL"] = "C"
