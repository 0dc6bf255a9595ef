//===- Passes.h - zero's code generation passes -----------------*- C++ -*-===//

#ifndef ZERO_CODEGEN_PASSES_H
#define ZERO_CODEGEN_PASSES_H

#include "mlir/Pass/Pass.h"

namespace zero::codegen {

#define GEN_PASS_DECL
#define GEN_PASS_REGISTRATION
#include "codegen/Passes.h.inc"

} // namespace zero::codegen

#endif // ZERO_CODEGEN_PASSES_H
