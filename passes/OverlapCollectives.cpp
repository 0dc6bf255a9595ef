//===- OverlapCollectives.cpp - asynchronous collectives with waits -------===//
//
// A collective starts where the plan issues it and completes at a Wait
// placed before the first later instruction that touches one of its buffers,
// so the runtime can run it on a communication stream while the compute in
// between proceeds (stage 0-2 gradient reductions under the rest of the
// backward pass, stage 3 all-gathers that zero-prefetch-gathers issued early
// under the previous layer). The Wait lists the collective's operands, so
// zero-plan-memory keeps their buffers out of reuse until then and the
// runtime can check that nothing touches them in between.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"
#include "passes/PlanTouches.h"

#include "mlir/IR/Builders.h"

namespace zero {
#define GEN_PASS_DEF_OVERLAPCOLLECTIVES
#include "passes/Passes.h.inc"
} // namespace zero

using namespace mlir;
using namespace zero;

namespace {

bool isCollective(plan::InstrOp instr) {
  StringRef opcode = instr.getOpcode();
  return opcode == "AllReduce" || opcode == "ReduceScatter" || opcode == "AllGather";
}

struct AsyncCollective {
  plan::InstrOp instr;
  size_t start;      // instruction index
  size_t waitBefore; // instruction index, or the instruction count: at the end
  int64_t slot = 0;
};

struct OverlapCollectivesPass
    : public zero::impl::OverlapCollectivesBase<OverlapCollectivesPass> {
  using OverlapCollectivesBase::OverlapCollectivesBase;

  void runOnOperation() override {
    if (window < 0) {
      getOperation().emitError("window must not be negative, got ")
          << static_cast<int64_t>(window);
      return signalPassFailure();
    }
    if (window == 0)
      return;
    for (auto program : getOperation().getOps<plan::ProgramOp>()) {
      if (failed(checkSchedulable(program, "zero-overlap-collectives")))
        return signalPassFailure();
      // Each stream waits for its own collectives.
      plan::InstructionStreams streams = plan::getInstructionStreams(program);
      for (ArrayRef<plan::InstrOp> stream : {streams.step, streams.evaluation})
        if (!stream.empty())
          overlap(program, stream);
      groupCollectives(program);
    }
  }

  void overlap(plan::ProgramOp program, ArrayRef<plan::InstrOp> stream) {
    PlanTouches access(program, stream);
    SmallVector<plan::InstrOp> &instrs = access.instrs;
    llvm::DenseMap<Operation *, size_t> lastTouch; // liveness is per buffer
    for (auto [index, touches] : llvm::enumerate(access.touches))
      for (const Touch &touch : touches)
        lastTouch[touch.buffer] = index;

    // Each collective waits before the next instruction touching its buffers.
    SmallVector<AsyncCollective> async;
    SmallVector<size_t> holding; // indices into `async`
    for (auto [index, instr] : llvm::enumerate(instrs)) {
      if (!isCollective(instr))
        continue;
      size_t next = index + 1;
      while (next < instrs.size() && !access.conflict(index, next))
        ++next;
      // A buffer this collective touches last would be free from here on;
      // waiting later keeps it alive, which the window bounds.
      bool holds = llvm::any_of(access.touches[index], [&](const Touch &t) {
        return !cast<plan::BufferOp>(t.buffer).getPersistent() && lastTouch[t.buffer] == index;
      });
      if (holds)
        holding.push_back(async.size());
      async.push_back({instr, index, next});
    }
    for (size_t i = 0; i + window < holding.size(); ++i) {
      AsyncCollective &early = async[holding[i]];
      early.waitBefore = std::min(early.waitBefore, async[holding[i + window]].start);
    }

    // Slots are reused once waited, so their number is the peak in flight.
    SmallVector<SmallVector<size_t>> waitsBefore(instrs.size() + 1);
    for (auto [i, collective] : llvm::enumerate(async))
      waitsBefore[collective.waitBefore].push_back(i);
    SmallVector<int64_t> freeSlots;
    int64_t slots = 0;
    size_t nextStart = 0;
    OpBuilder b(program.getContext());
    auto emitWaits = [&](size_t index) {
      for (size_t i : waitsBefore[index]) {
        AsyncCollective &c = async[i];
        auto operands = b.getArrayAttr({c.instr.getInputs()[0], c.instr.getOutputs()[0]});
        plan::InstrOp::create(b, c.instr.getLoc(), b.getStringAttr("Wait"), operands,
                              b.getArrayAttr({}),
                              b.getDictionaryAttr(b.getNamedAttr("slot", b.getI64IntegerAttr(c.slot))));
        freeSlots.push_back(c.slot);
        ++numWaits;
      }
    };
    for (auto [index, instr] : llvm::enumerate(instrs)) {
      b.setInsertionPoint(instr);
      emitWaits(index);
      if (nextStart < async.size() && async[nextStart].start == index) {
        int64_t slot;
        if (freeSlots.empty()) {
          slot = ++slots;
        } else { // the lowest free one, for a readable plan
          auto lowest = llvm::min_element(freeSlots);
          slot = *lowest;
          freeSlots.erase(lowest);
        }
        async[nextStart++].slot = slot;
        setAttr(instr, "slot", b.getI64IntegerAttr(slot));
        ++numAsync;
      }
    }
    if (!instrs.empty()) {
      b.setInsertionPointAfter(instrs.back());
      emitWaits(instrs.size());
    }
    if (static_cast<uint64_t>(slots) > numSlots.getValue())
      numSlots = slots;
  }

  /// Runs of consecutive collectives (no instruction, Wait or stream's end
  /// between them) are issued as one group.
  void groupCollectives(plan::ProgramOp program) {
    OpBuilder b(program.getContext());
    int64_t group = 0;
    SmallVector<plan::InstrOp> run;
    auto closeRun = [&] {
      if (run.size() > 1) {
        ++group;
        ++numGroups;
        for (plan::InstrOp instr : run)
          setAttr(instr, "group", b.getI64IntegerAttr(group));
      }
      run.clear();
    };
    for (Operation &op : program.getBody().front()) {
      auto instr = dyn_cast<plan::InstrOp>(op);
      if (instr && isCollective(instr))
        run.push_back(instr);
      else if (instr || isa<plan::EvaluationOp>(op))
        closeRun();
    }
    closeRun();
  }

  static void setAttr(plan::InstrOp instr, StringRef name, Attribute value) {
    NamedAttrList attrs(instr.getAttrs());
    attrs.set(name, value);
    instr.setAttrsAttr(attrs.getDictionary(instr.getContext()));
  }
};

} // namespace
