//===- Passes.h - the zero compilation pipeline ---------------------------===//

#ifndef ZERO_PASSES_PASSES_H
#define ZERO_PASSES_PASSES_H

#include "dialects/Onnx/OnnxDialect.h"
#include "dialects/Plan/PlanDialect.h"
#include "dialects/Zero/ZeroDialect.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace zero {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

} // namespace zero

#endif // ZERO_PASSES_PASSES_H
