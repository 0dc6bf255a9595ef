//===- ClipGradNorm.cpp - global gradient-norm clipping -------------------===//
//
// torch.nn.utils.clip_grad_norm_ on the partitioned step: the norm is over
// the gradients of the global mean loss, which after zero-partition are what
// the updates read. A replicated gradient (all-reduced) is whole and equal on
// every rank, so its squares count once; a sharded one (reduce-scattered) is
// this rank's shard, zero-padded, so its squares are summed over ranks. The
// scale reaches each update as an operand: no scaled copy of any gradient.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/Support/Debug.h"

#include <cmath>

#define DEBUG_TYPE "zero-clip-grad-norm"

namespace zero {
#define GEN_PASS_DEF_CLIPGRADNORM
#include "passes/Passes.h.inc"
} // namespace zero

using namespace mlir;
using namespace zero;
namespace ox = zero::onnx;

namespace {

struct ClipGradNormPass : public zero::impl::ClipGradNormBase<ClipGradNormPass> {
  using ClipGradNormBase::ClipGradNormBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (!(maxNorm > 0) || std::isinf(maxNorm)) {
      module.emitError("max-norm must be positive and finite, got ") << maxNorm;
      return signalPassFailure();
    }
    auto func = module.lookupSymbol<func::FuncOp>("train_step");
    if (!func || !module->hasAttr(kStageAttr)) {
      module.emitError("expected a partitioned @train_step; run zero-partition first");
      return signalPassFailure();
    }
    SmallVector<Operation *> updates = getOptimizerUpdates(func);
    if (updates.empty())
      return;
    Operation *first = updates.front();
    if (failed(completeGradientsBefore(first, updates)))
      return signalPassFailure();

    OpBuilder b(first);
    Location loc = first->getLoc();
    auto scalar = RankedTensorType::get({}, b.getF32Type());
    Value replicated, sharded;
    int64_t shardedCount = 0;
    auto accumulate = [&](Value &sum, Value term) {
      sum = sum ? ox::AddOp::create(b, loc, scalar, sum, term) : term;
    };
    for (Operation *update : updates) {
      if (!getGradScaleMutable(update).empty()) {
        update->emitOpError("already scales its gradient");
        return signalPassFailure();
      }
      Value squares = SumSquaresOp::create(b, update->getLoc(), scalar, update->getOperand(0));
      if (update->hasAttr("sharded")) {
        accumulate(sharded, squares);
        ++shardedCount;
      } else {
        accumulate(replicated, squares);
      }
    }
    if (sharded)
      accumulate(replicated, AllReduceOp::create(b, loc, sharded, "sum"));
    auto clip = ClipCoefficientOp::create(b, loc, scalar, scalar, replicated,
                                          b.getF32FloatAttr(maxNorm));
    MetricOp::create(b, loc, b.getStringAttr("grad_norm"), clip.getNorm());
    for (Operation *update : updates)
      getGradScaleMutable(update).assign(clip.getCoefficient());
    numShardedGradients += shardedCount;
    LLVM_DEBUG(llvm::dbgs() << updates.size() << " gradients, " << shardedCount << " sharded\n");
  }

  /// Every gradient the updates read is computed before the first update:
  /// stage 1 reduce-scatters each gradient right before its own update, so
  /// those move up (their inputs, the backward pass's gradients, are ready).
  LogicalResult completeGradientsBefore(Operation *first, ArrayRef<Operation *> updates) {
    for (Operation *update : updates) {
      Operation *def = update->getOperand(0).getDefiningOp();
      if (!def || def->isBeforeInBlock(first))
        continue;
      auto scatter = dyn_cast<ReduceScatterOp>(def);
      Operation *input = scatter ? scatter.getInput().getDefiningOp() : nullptr;
      if (!scatter || (input && !input->isBeforeInBlock(first)))
        return update->emitOpError("reads a gradient computed after the first update; the "
                                   "global norm needs every gradient first");
      def->moveBefore(first);
      ++numMovedCollectives;
    }
    return success();
  }
};

} // namespace
