//===- PrefetchGathers.cpp - issue stage-3 all-gathers ahead of use -------===//

#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace zero {
#define GEN_PASS_DEF_PREFETCHGATHERS
#include "passes/Passes.h.inc"
} // namespace zero

using namespace mlir;
using namespace zero;

namespace {

struct PrefetchGathersPass : public zero::impl::PrefetchGathersBase<PrefetchGathersPass> {
  using PrefetchGathersBase::PrefetchGathersBase;

  void runOnOperation() override {
    if (distance < 0) {
      getOperation().emitError("distance must not be negative, got ")
          << static_cast<int64_t>(distance);
      return signalPassFailure();
    }
    if (distance == 0)
      return;
    for (StringRef name : {"train_step", "eval_step"})
      if (auto func = getOperation().lookupSymbol<func::FuncOp>(name))
        prefetch(func);
  }

  void prefetch(func::FuncOp func) {
    // Parameter gathers in program order: all_gather(load_shard @p).
    SmallVector<AllGatherOp> gathers;
    func.walk([&](AllGatherOp gather) {
      if (gather.getShard().getDefiningOp<LoadShardOp>())
        gathers.push_back(gather);
    });
    // Gather i is issued where gather i - distance's parameter starts being
    // used: it then runs while that earlier layer computes. Anchors are
    // compute ops, which never move, so the gathers keep their order.
    SmallVector<Operation *> firstUse;
    for (AllGatherOp gather : gathers) {
      Operation *first = nullptr;
      for (Operation *user : gather->getUsers())
        if (!first || user->isBeforeInBlock(first))
          first = user;
      firstUse.push_back(first);
    }
    for (size_t i = distance; i < gathers.size(); ++i) {
      Operation *anchor = firstUse[i - distance];
      if (!anchor)
        continue;
      Operation *load = gathers[i].getShard().getDefiningOp();
      load->moveBefore(anchor);
      gathers[i]->moveBefore(anchor);
      ++numMoved;
    }
  }
};

} // namespace
