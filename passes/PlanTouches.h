//===- PlanTouches.h - which bytes each plan instruction touches ----------===//
//
// Scheduling passes on a lowered plan (before zero-plan-memory, while
// distinct buffers never share memory) move or split instructions; two
// instructions may be reordered when they touch no common bytes.
//
//===----------------------------------------------------------------------===//

#ifndef ZERO_PASSES_PLANTOUCHES_H
#define ZERO_PASSES_PLANTOUCHES_H

#include "dialects/Plan/PlanDialect.h"

#include "llvm/ADT/SmallVector.h"

namespace zero {

/// The bytes of a buffer an operand may cover on some rank.
struct Touch {
  mlir::Operation *buffer;
  int64_t begin, end;
  bool conflicts(const Touch &other) const {
    return buffer == other.buffer && begin < other.end && other.begin < end;
  }
};

/// One instruction stream of a program (plan::getInstructionStreams) in
/// order, with the touches of its instructions' operands.
struct PlanTouches {
  llvm::SmallVector<plan::InstrOp> instrs;
  llvm::SmallVector<llvm::SmallVector<Touch, 4>> touches; // per instruction

  PlanTouches(plan::ProgramOp program, llvm::ArrayRef<plan::InstrOp> stream);
  /// Whether instructions a and b touch common bytes.
  bool conflict(size_t a, size_t b) const;
};

/// Fails (with an error naming `pass`) on a program whose buffers were laid
/// out already or whose collectives were made asynchronous already.
mlir::LogicalResult checkSchedulable(plan::ProgramOp program, llvm::StringRef pass);

} // namespace zero

#endif // ZERO_PASSES_PLANTOUCHES_H
