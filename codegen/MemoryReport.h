//===- MemoryReport.h - per-rank memory and traffic of a plan -------------===//

#ifndef ZERO_CODEGEN_MEMORYREPORT_H
#define ZERO_CODEGEN_MEMORYREPORT_H

#include "dialects/Plan/PlanDialect.h"
#include "llvm/Support/raw_ostream.h"

namespace zero::codegen {

/// Writes the JSON report of a planned program: per rank, the bytes of each
/// buffer kind (persistent buffers in full, the others at their peak of
/// simultaneously live bytes), the kernel scratch (zero/kernel_scratch.h), the
/// peak (arena plus kernel scratch: what the runtime allocates), and the bytes the rank sends
/// per step under ring collectives; and per trainable parameter, whether its
/// weights, gradient and optimizer state are replicated or sharded.
void writeMemoryReport(plan::ProgramOp program, llvm::raw_ostream &os);

} // namespace zero::codegen

#endif // ZERO_CODEGEN_MEMORYREPORT_H
