//===- PlanDialect.h - executable plans -----------------------------------===//

#ifndef ZERO_DIALECTS_PLAN_PLANDIALECT_H
#define ZERO_DIALECTS_PLAN_PLANDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/RegionKindInterface.h"
#include "mlir/IR/SymbolTable.h"
#include "zero/plan_generated.h"

#include <optional>

#include "dialects/Plan/PlanDialect.h.inc"

#define GET_OP_CLASSES
#include "dialects/Plan/PlanOps.h.inc"

namespace zero::plan {

/// Bytes of a dense tensor of `type` (f32 and i64 elements).
int64_t getTensorBytes(mlir::RankedTensorType type);

/// The schema opcode (runtime/schema/plan.fbs) of that name, if there is one.
std::optional<Opcode> parseOpcode(llvm::StringRef opcode);

/// A program's instruction streams in order: the training step (or a
/// forward-only plan's whole program) and the evaluation program, the
/// instructions after plan.evaluation (empty without one).
struct InstructionStreams {
  llvm::SmallVector<InstrOp> step, evaluation;
};
InstructionStreams getInstructionStreams(ProgramOp program);

} // namespace zero::plan

#endif // ZERO_DIALECTS_PLAN_PLANDIALECT_H
