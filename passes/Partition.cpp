//===- Partition.cpp - ZeRO stages as explicit collectives ----------------===//
//
// Rewrites @train_step for one ZeRO stage and world size. First it records
// each trainable parameter's placement (#zero.placement on its global: where
// its weights, gradient and optimizer state live), then it inserts the
// collectives that placement needs, parameter by parameter; zero-lower-to-plan
// reads the same placements, never the stage. An @eval_step reads the same
// weights: it is gathered and averaged like the step's forward pass. A placement already on a global
// (from a policy pass run before this one) is kept.
//
// Every rank runs the same program, so the collectives below appear in the
// same order on every rank. Gradients are averaged ("mean") because each
// rank's loss is the mean over its micro-batch and the step must reproduce
// the mean over the global batch.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/IR/Builders.h"
#include "llvm/Support/Debug.h"

#define DEBUG_TYPE "zero-partition"

namespace zero {
#define GEN_PASS_DEF_PARTITION
#include "passes/Passes.h.inc"
} // namespace zero

using namespace mlir;
using namespace zero;

namespace {

/// Inserts `op`'s collective for its gradient right after the gradient is
/// complete, so reduction can start while backward continues and, from stage
/// 2 on, the full gradient dies as early as possible.
void setInsertionPointAfterValue(OpBuilder &builder, Value v) {
  if (Operation *def = v.getDefiningOp())
    builder.setInsertionPointAfter(def);
  else
    builder.setInsertionPointToStart(cast<BlockArgument>(v).getOwner());
}

struct PartitionPass : public zero::impl::PartitionBase<PartitionPass> {
  using PartitionBase::PartitionBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (stage < 0 || stage > 3) {
      module.emitError("ZeRO stage must be 0, 1, 2 or 3, got ") << static_cast<int64_t>(stage);
      return signalPassFailure();
    }
    if (worldSize < 1) {
      module.emitError("world size must be at least 1, got ") << static_cast<int64_t>(worldSize);
      return signalPassFailure();
    }
    if (persistBelow < 0) {
      module.emitError("persist-below must be at least 0 bytes, got ")
          << static_cast<int64_t>(persistBelow);
      return signalPassFailure();
    }
    if (module->hasAttr(kStageAttr)) {
      module.emitError("the module is already partitioned");
      return signalPassFailure();
    }
    auto func = module.lookupSymbol<func::FuncOp>("train_step");
    if (!func) {
      module.emitError("expected @train_step; run zero-build-train-step first");
      return signalPassFailure();
    }
    OpBuilder builder(module.getContext());
    module->setAttr(kStageAttr, builder.getI64IntegerAttr(stage));
    module->setAttr(kWorldSizeAttr, builder.getI64IntegerAttr(worldSize));

    for (auto global : module.getOps<ml_program::GlobalOp>()) {
      if (isTrainable(global) && !global->hasAttr(kPlacementAttr))
        global->setAttr(kPlacementAttr, choosePlacement(global));
      FailureOr<PlacementAttr> placement = getParameterPlacement(global, worldSize);
      if (failed(placement))
        return signalPassFailure();
      if (placement->hasShardedWeights())
        ++numShardedWeights;
      LLVM_DEBUG(llvm::dbgs() << "@" << global.getSymName() << ": " << *placement << "\n");
    }

    averageLoss(builder, func);
    SmallVector<Operation *> updates = getOptimizerUpdates(func);
    for (Operation *update : updates)
      partitionUpdate(builder, update);
    gatherParameterReads(builder, func);

    // The evaluation program (zero-build-eval-step) reads the same weights.
    if (auto eval = module.lookupSymbol<func::FuncOp>("eval_step")) {
      averageLoss(builder, eval);
      gatherParameterReads(builder, eval);
    }
  }

  /// The reported loss is the global mean, taken as soon as the loss exists:
  /// before any update can change what it reads (a loss that is a view of a
  /// parameter).
  void averageLoss(OpBuilder &builder, func::FuncOp func) {
    auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
    Value loss = ret.getOperand(0);
    setInsertionPointAfterValue(builder, loss);
    ret.setOperand(0, AllReduceOp::create(builder, loss.getLoc(), loss, "mean"));
  }

  /// The placement `stage` gives `global`: ZeRO's partitioning of optimizer
  /// state (1), gradients too (2) and weights too (3).
  PlacementAttr choosePlacement(ml_program::GlobalOp global) {
    const int64_t whole = PlacementAttr::kReplicated, split = worldSize;
    MLIRContext *context = global.getContext();
    // A frozen weight has no gradient or optimizer state to shard: below
    // stage 3 it stays whole, padded to no shards.
    if (global->hasAttr(kFrozenAttr) && stage < 3)
      return PlacementAttr::get(context, whole, whole, whole);
    switch (stage) {
    case 0:
      return PlacementAttr::get(context, whole, whole, whole);
    case 1:
      return PlacementAttr::get(context, whole, whole, split);
    case 2:
      return PlacementAttr::get(context, whole, split, split);
    default:
      break;
    }
    // Stage 3's persistence threshold (DeepSpeed's
    // stage3_param_persistence_threshold): gathering a tiny parameter costs a
    // collective's latency for a few bytes saved, so it stays whole. Its
    // gradient and optimizer state stay whole too, as at stage 0: one
    // all-reduce and no gather per step, for at most `persistBelow` bytes
    // per tensor. (DeepSpeed still shards those and gathers the updated
    // shard back after the step.)
    auto type = dyn_cast<RankedTensorType>(global.getType());
    if (type && type.hasStaticShape() &&
        type.getNumElements() * type.getElementTypeBitWidth() / 8 < persistBelow) {
      ++numPersistent;
      return PlacementAttr::get(context, whole, whole, whole);
    }
    return PlacementAttr::get(context, split, split, split);
  }

  void partitionUpdate(OpBuilder &builder, Operation *update) {
    Value grad = update->getOperand(0);
    Location loc = update->getLoc();
    auto param = update->getAttrOfType<FlatSymbolRefAttr>("param");
    ml_program::GlobalOp global = lookupParameter(update, param);
    PlacementAttr placement = getPlacement(global);

    if (!placement.hasShardedOptimizerState()) {
      setInsertionPointAfterValue(builder, grad);
      update->setOperand(0, AllReduceOp::create(builder, loc, grad, "mean"));
      ++numAllReduces;
      return;
    }

    // A replicated gradient (stage 1) stays whole until the step's end and is
    // reduced there; a sharded one (stages 2 and 3) as soon as it is complete.
    auto gradType = cast<RankedTensorType>(grad.getType());
    Value shard;
    if (!placement.hasShardedGrad()) {
      builder.setInsertionPoint(update);
      shard = ReduceScatterOp::create(builder, loc, getShardType(gradType, worldSize), grad,
                                      "mean", worldSize);
      ++numReduceScatters;
    } else {
      shard = reduceScatterAsCompleted(builder, loc, grad);
    }
    update->setOperand(0, shard);
    update->setAttr("sharded", builder.getUnitAttr());
    eraseDeadAccumulation(grad);

    if (placement.hasShardedWeights())
      return; // the shard is the parameter's only storage

    // Replicated weights (stages 1 and 2): every rank needs the whole updated
    // parameter.
    builder.setInsertionPointAfter(update);
    Value updated = LoadShardOp::create(builder, loc, shard.getType(), param);
    Value full = AllGatherOp::create(builder, loc, gradType, updated, worldSize);
    ml_program::GlobalStoreOp::create(builder, loc, param, full);
    ++numAllGathers;
  }

  /// This rank's shard of `grad`, reduced as soon as it is complete. A sum
  /// over micro-steps (zero.accumulate) is reduced term by term as each
  /// micro-step's gradient completes and the shards are summed, so no whole
  /// gradient outlives its micro-step.
  Value reduceScatterAsCompleted(OpBuilder &builder, Location loc, Value grad) {
    auto gradType = cast<RankedTensorType>(grad.getType());
    auto accumulate = grad.getDefiningOp<AccumulateOp>();
    if (!accumulate) {
      setInsertionPointAfterValue(builder, grad);
      ++numReduceScatters;
      return ReduceScatterOp::create(builder, loc, getShardType(gradType, worldSize), grad, "mean",
                                     worldSize);
    }
    Value sum = reduceScatterAsCompleted(builder, loc, accumulate.getSum());
    Value term = reduceScatterAsCompleted(builder, loc, accumulate.getTerm());
    builder.setInsertionPointAfterValue(term);
    return onnx::AddOp::create(builder, accumulate.getLoc(), term.getType(), sum, term);
  }

  /// The whole-gradient sums left without users once their terms were
  /// reduced one by one.
  void eraseDeadAccumulation(Value grad) {
    while (auto accumulate = grad.getDefiningOp<AccumulateOp>()) {
      if (!accumulate->use_empty())
        return;
      grad = accumulate.getSum();
      accumulate.erase();
    }
  }

  /// Sharded weights (stage 3): each read becomes an all-gather of the
  /// shards, placed just before its first use so the gathered copy lives only
  /// while needed.
  void gatherParameterReads(OpBuilder &builder, func::FuncOp func) {
    SmallVector<ml_program::GlobalLoadOp> loads;
    func.walk([&](ml_program::GlobalLoadOp load) { loads.push_back(load); });
    for (ml_program::GlobalLoadOp load : loads) {
      auto global = SymbolTable::lookupNearestSymbolFrom<ml_program::GlobalOp>(
          load, load.getGlobalAttr());
      if (!getPlacement(global).hasShardedWeights())
        continue; // whole on every rank: model state, persistent parameters

      Operation *firstUser = nullptr;
      for (Operation *user : load->getUsers())
        if (!firstUser || user->isBeforeInBlock(firstUser))
          firstUser = user;
      builder.setInsertionPoint(firstUser ? firstUser : load.getOperation());
      auto type = cast<RankedTensorType>(load.getType());
      auto symbol = FlatSymbolRefAttr::get(load.getGlobalAttr().getRootReference());
      Value shard = LoadShardOp::create(builder, load.getLoc(), getShardType(type, worldSize),
                                        symbol);
      Value full = AllGatherOp::create(builder, load.getLoc(), type, shard, worldSize);
      load.replaceAllUsesWith(full);
      load.erase();
      ++numAllGathers;
    }
  }
};

} // namespace
