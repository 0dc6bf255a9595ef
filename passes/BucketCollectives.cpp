//===- BucketCollectives.cpp - issue gradient all-reduces in buckets ------===//
//
// Data parallelism (stage 0) all-reduces each gradient as soon as it is
// complete: one collective per parameter, most of them small, each paying a
// launch and a latency. As DDP does, this pass holds all-reduces back until
// `bytes` of them are pending and then issues them together, where the
// bucket fills; zero-overlap-collectives makes the consecutive run one NCCL
// group. An all-reduce is issued earlier, in a smaller bucket, when an
// instruction touches its bytes first. Only the issue point moves: memory
// and results stay the same (stage-0 gradients live until their update).
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"
#include "passes/PlanTouches.h"

namespace zero {
#define GEN_PASS_DEF_BUCKETCOLLECTIVES
#include "passes/Passes.h.inc"
} // namespace zero

using namespace mlir;
using namespace zero;

namespace {

struct BucketCollectivesPass
    : public zero::impl::BucketCollectivesBase<BucketCollectivesPass> {
  using BucketCollectivesBase::BucketCollectivesBase;

  void runOnOperation() override {
    if (bytes < 0) {
      getOperation().emitError("bytes must not be negative, got ") << static_cast<int64_t>(bytes);
      return signalPassFailure();
    }
    if (bytes == 0)
      return;
    for (auto program : getOperation().getOps<plan::ProgramOp>()) {
      if (failed(checkSchedulable(program, "zero-bucket-collectives")))
        return signalPassFailure();
      plan::InstructionStreams streams = plan::getInstructionStreams(program);
      for (ArrayRef<plan::InstrOp> stream : {streams.step, streams.evaluation})
        if (!stream.empty())
          bucket(program, stream);
    }
  }

  /// Buckets within one stream: each completes its own collectives.
  void bucket(plan::ProgramOp program, ArrayRef<plan::InstrOp> stream) {
    PlanTouches access(program, stream);
    SmallVector<plan::InstrOp> &instrs = access.instrs;
    SmallVector<size_t> pending; // held-back all-reduces, in program order
    int64_t pendingBytes = 0;
    // Issues the pending all-reduces, in their order, right before `anchor`.
    auto issueBefore = [&](Operation *anchor) {
      if (pending.size() > 1)
        ++numBuckets;
      for (size_t index : pending)
        if (instrs[index] != anchor) {
          instrs[index]->moveBefore(anchor);
          ++numHeldBack;
        }
      pending.clear();
      pendingBytes = 0;
    };
    for (auto [index, instr] : llvm::enumerate(instrs)) {
      if (llvm::any_of(pending, [&](size_t p) { return access.conflict(p, index); }))
        issueBefore(instr);
      if (instr.getOpcode() != "AllReduce")
        continue;
      pending.push_back(index);
      const Touch &input = access.touches[index].front();
      pendingBytes += input.end - input.begin;
      if (pendingBytes >= bytes)
        issueBefore(instr); // the bucket is full: it ends with this one
    }
    if (!pending.empty()) {
      Operation *last = instrs.back();
      for (size_t index : pending)
        if (instrs[index] != last) {
          instrs[index]->moveAfter(last);
          last = instrs[index];
        }
    }
  }
};

} // namespace
