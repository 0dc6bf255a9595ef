//===- PlanTouches.cpp - which bytes each plan instruction touches --------===//

#include "passes/PlanTouches.h"

#include "llvm/ADT/StringMap.h"

using namespace mlir;

namespace zero {

PlanTouches::PlanTouches(plan::ProgramOp program, ArrayRef<plan::InstrOp> stream) {
  llvm::StringMap<Operation *> buffers;
  for (auto buffer : program.getOps<plan::BufferOp>())
    buffers[buffer.getSymName()] = buffer;
  const int64_t lastRank = program.getWorldSize() - 1;
  llvm::StringMap<Touch> touchOfValue;
  for (auto value : program.getOps<plan::ValueOp>()) {
    int64_t begin = value.getByteOffset();
    int64_t end = begin + value.getRankStride() * lastRank +
                  plan::getTensorBytes(cast<RankedTensorType>(value.getType()));
    touchOfValue[value.getSymName()] = {buffers.lookup(value.getBuffer()), begin, end};
  }
  for (plan::InstrOp instr : stream) {
    instrs.push_back(instr);
    auto &list = touches.emplace_back();
    for (Attribute ref : llvm::concat<const Attribute>(instr.getInputs(), instr.getOutputs()))
      list.push_back(touchOfValue.lookup(cast<FlatSymbolRefAttr>(ref).getValue()));
  }
}

bool PlanTouches::conflict(size_t a, size_t b) const {
  return llvm::any_of(touches[a], [&](const Touch &t) {
    return llvm::any_of(touches[b], [&](const Touch &u) { return t.conflicts(u); });
  });
}

LogicalResult checkSchedulable(plan::ProgramOp program, StringRef pass) {
  // Conflicts are found per buffer, which holds only while buffers do not
  // share memory yet; and a schedule is placed once.
  if (program.getArenaBytes())
    return program.emitOpError("is memory planned already; run ")
           << pass << " before zero-plan-memory";
  for (auto instr : program.getOps<plan::InstrOp>())
    if (instr.getOpcode() == "Wait" || instr.getAttrs().get("slot"))
      return instr.emitOpError("collectives are asynchronous already; run ")
             << pass << " once, before zero-overlap-collectives";
  return success();
}

} // namespace zero
