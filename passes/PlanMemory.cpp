//===- PlanMemory.cpp - static arena layout by liveness -------------------===//
//
// Persistent buffers are laid out first, back to back. Every other buffer is
// live over the closed interval of instructions that touch it; buffers are
// placed largest first at the lowest aligned offset that no buffer with an
// overlapping lifetime occupies (greedy by size, as in TFLite's arena
// planner). Two buffers touched by one instruction always overlap in time, so
// an instruction's operands never share memory unless they share a buffer.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "llvm/Support/Debug.h"

#include "llvm/Support/MathExtras.h"

namespace zero {
#define GEN_PASS_DEF_PLANMEMORY
#include "passes/Passes.h.inc"
} // namespace zero

using namespace mlir;

#define DEBUG_TYPE "zero-plan-memory"
using namespace zero;

namespace {

struct Interval {
  plan::BufferOp buffer;
  int64_t first = std::numeric_limits<int64_t>::max();
  int64_t last = -1;
  int64_t offset = 0;
  bool placed = false;
};

struct PlanMemoryPass : public zero::impl::PlanMemoryBase<PlanMemoryPass> {
  using PlanMemoryBase::PlanMemoryBase;

  void runOnOperation() override {
    if (alignment < 1 || !llvm::isPowerOf2_64(alignment)) {
      getOperation().emitError("alignment must be a power of two, got ") << static_cast<int64_t>(alignment);
      return signalPassFailure();
    }
    for (auto program : getOperation().getOps<plan::ProgramOp>())
      planProgram(program);
  }

  void planProgram(plan::ProgramOp program) {
    llvm::MapVector<StringAttr, Interval> intervals;
    for (auto buffer : program.getOps<plan::BufferOp>())
      intervals[buffer.getSymNameAttr()].buffer = buffer;

    SymbolTable symbols(program);
    int64_t index = 0;
    for (auto instr : program.getOps<plan::InstrOp>()) {
      for (Attribute ref : llvm::concat<const Attribute>(instr.getInputs(), instr.getOutputs())) {
        auto value = symbols.lookup<plan::ValueOp>(cast<FlatSymbolRefAttr>(ref).getAttr());
        Interval &interval = intervals[value.getBufferAttr().getAttr()];
        interval.first = std::min(interval.first, index);
        interval.last = std::max(interval.last, index);
      }
      ++index;
    }

    int64_t top = 0;
    for (auto &[name, interval] : intervals)
      if (interval.buffer.getPersistent()) {
        interval.offset = top;
        interval.placed = true;
        top = llvm::alignTo(top + interval.buffer.getBytes(), alignment);
      }
    const int64_t transientBase = top;
    numPersistentBytes += transientBase;

    SmallVector<Interval *> transient;
    for (auto &[name, interval] : intervals)
      if (!interval.placed && interval.last >= 0)
        transient.push_back(&interval);
    llvm::stable_sort(transient, [](Interval *a, Interval *b) {
      return a->buffer.getBytes() > b->buffer.getBytes();
    });

    SmallVector<Interval *> placed;
    int64_t end = transientBase;
    for (Interval *interval : transient) {
      // Occupied address ranges of already placed, time-overlapping buffers.
      SmallVector<std::pair<int64_t, int64_t>> busy;
      for (Interval *other : placed)
        if (other->first <= interval->last && interval->first <= other->last)
          busy.push_back({other->offset, other->offset + other->buffer.getBytes()});
      llvm::sort(busy);
      int64_t offset = transientBase;
      for (auto [begin, finish] : busy) {
        if (offset + static_cast<int64_t>(interval->buffer.getBytes()) <= begin)
          break;
        offset = std::max<int64_t>(offset, llvm::alignTo(finish, alignment));
      }
      LLVM_DEBUG(llvm::dbgs() << "zero-plan-memory: " << interval->buffer.getSymName() << " ("
                              << interval->buffer.getBytes() << " bytes, instructions "
                              << interval->first << "-" << interval->last << ") at " << offset
                              << "\n");
      interval->offset = offset;
      interval->placed = true;
      placed.push_back(interval);
      ++numTransientBuffers;
      numTransientBytes += interval->buffer.getBytes();
      end = std::max<int64_t>(end, offset + interval->buffer.getBytes());
    }

    OpBuilder b(program);
    for (auto &[name, interval] : intervals)
      interval.buffer.setOffsetAttr(b.getI64IntegerAttr(interval.offset));
    program.setArenaBytesAttr(b.getI64IntegerAttr(llvm::alignTo(end, alignment)));
    numArenaBytes += llvm::alignTo(end, alignment);
  }
};

} // namespace
