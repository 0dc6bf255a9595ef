//===- BuildEvalStep.cpp - the forward pass in evaluation mode ------------===//
//
// Copies @main into @eval_step as `model.eval()` runs it, so one plan can
// both train and report a validation loss over the same parameters.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/IR/Builders.h"

namespace zero {
#define GEN_PASS_DEF_BUILDEVALSTEP
#include "passes/Passes.h.inc"
} // namespace zero

using namespace mlir;
using namespace zero;
namespace ox = zero::onnx;

namespace {

struct BuildEvalStepPass : public zero::impl::BuildEvalStepBase<BuildEvalStepPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto main = module.lookupSymbol<func::FuncOp>("main");
    if (!main || main.getBody().getBlocks().size() != 1) {
      module.emitError("expected a single-block function @main returning the loss");
      return signalPassFailure();
    }
    if (module.lookupSymbol("eval_step")) {
      module.emitError("the module already has an @eval_step");
      return signalPassFailure();
    }
    auto eval = main.clone();
    eval.setName("eval_step");
    SymbolTable(module).insert(eval, std::next(Block::iterator(main)));

    OpBuilder builder(module.getContext());
    SmallVector<Operation *> replaced;
    eval.walk([&](Operation *op) {
      if (auto dropout = dyn_cast<ox::DropoutOp>(op)) {
        dropout.getResult().replaceAllUsesWith(dropout.getInput());
        replaced.push_back(op);
      } else if (auto norm = dyn_cast<ox::BatchNormalizationOp>(op)) {
        // Running statistics instead of the batch's, and no update of them.
        builder.setInsertionPoint(norm);
        norm.getResult().replaceAllUsesWith(ox::buildBatchNormalizationInference(
            builder, norm.getLoc(), cast<RankedTensorType>(norm.getResult().getType()),
            norm.getInput(), norm.getScale(), norm.getBias(), norm.getRunningMean(),
            norm.getRunningVar(), norm.getEpsilon().convertToFloat()));
        replaced.push_back(op);
      } else if (isa<ml_program::GlobalStoreOp>(op)) {
        replaced.push_back(op);
      }
    });
    // Stores first: they read the statistics the normalizations return.
    for (Operation *op : llvm::reverse(replaced)) {
      if (!op->use_empty()) {
        op->emitOpError("has uses left in evaluation mode");
        return signalPassFailure();
      }
      op->erase();
    }
  }
};

} // namespace
