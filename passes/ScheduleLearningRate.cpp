//===- ScheduleLearningRate.cpp - a learning-rate schedule per step -------===//
//
// One zero.learning_rate before the first optimizer update of @train_step,
// read by every update: the plan computes the rate from its step counter, so
// a whole run is one plan (no recompilation per step) and every rank uses the
// same rate.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace zero {
#define GEN_PASS_DEF_SCHEDULELEARNINGRATE
#include "passes/Passes.h.inc"
} // namespace zero

using namespace mlir;
using namespace zero;

namespace {

struct ScheduleLearningRatePass
    : public zero::impl::ScheduleLearningRateBase<ScheduleLearningRatePass> {
  using ScheduleLearningRateBase::ScheduleLearningRateBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto func = module.lookupSymbol<func::FuncOp>("train_step");
    if (!func) {
      module.emitError("expected @train_step; run zero-build-train-step first");
      return signalPassFailure();
    }
    SmallVector<Operation *> updates = getOptimizerUpdates(func);
    if (updates.empty())
      return; // nothing trains
    // One schedule scales one base rate: PyTorch's LambdaLR multiplies each
    // parameter group's own rate, and zero has one group.
    FloatAttr lr = updates.front()->getAttrOfType<FloatAttr>("lr");
    for (Operation *update : updates) {
      if (update->getAttrOfType<FloatAttr>("lr") != lr) {
        update->emitOpError("has another learning rate than the first update; a schedule "
                            "needs one");
        return signalPassFailure();
      }
      if (!getScheduledLrMutable(update).empty()) {
        update->emitOpError("already has a scheduled learning rate");
        return signalPassFailure();
      }
    }
    OpBuilder builder(updates.front());
    Location loc = updates.front()->getLoc();
    auto rate = LearningRateOp::create(
        builder, loc, RankedTensorType::get({}, builder.getF32Type()), lr,
        builder.getStringAttr(schedule), builder.getI64IntegerAttr(warmupSteps),
        builder.getI64IntegerAttr(totalSteps), builder.getF32FloatAttr(minLrRatio));
    if (failed(rate.verify()))
      return signalPassFailure();
    MetricOp::create(builder, loc, builder.getStringAttr("lr"), rate);
    for (Operation *update : updates)
      getScheduledLrMutable(update).assign(rate);
  }
};

} // namespace
