//===- PlanSerializer.h - plan.program to the FlatBuffer plan -------------===//

#ifndef ZERO_CODEGEN_PLANSERIALIZER_H
#define ZERO_CODEGEN_PLANSERIALIZER_H

#include "dialects/Plan/PlanDialect.h"
#include "llvm/Support/raw_ostream.h"

namespace zero::codegen {

/// Writes `program` (after zero-plan-memory) as a FlatBuffer plan, the format
/// of runtime/schema/plan.fbs. Emits a diagnostic and fails on anything the
/// schema cannot express.
mlir::LogicalResult serializePlan(plan::ProgramOp program, llvm::raw_ostream &os);

} // namespace zero::codegen

#endif // ZERO_CODEGEN_PLANSERIALIZER_H
