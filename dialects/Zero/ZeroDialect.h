//===- ZeroDialect.h - training steps and ZeRO collectives ----------------===//

#ifndef ZERO_DIALECTS_ZERO_ZERODIALECT_H
#define ZERO_DIALECTS_ZERO_ZERODIALECT_H

#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/Zero/ZeroDialect.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/Zero/ZeroAttrs.h.inc"

#define GET_OP_CLASSES
#include "dialects/Zero/ZeroOps.h.inc"

namespace zero {

/// Module attributes set by the partitioning pass.
inline constexpr llvm::StringLiteral kStageAttr = "zero.stage";
inline constexpr llvm::StringLiteral kWorldSizeAttr = "zero.world_size";
/// Gradient accumulation: the micro-step (i64) an @train_step argument feeds.
inline constexpr llvm::StringLiteral kMicroStepAttr = "zero.micro_step";
/// Marks an ml_program.global that is model state (BatchNorm running
/// statistics): not trained, never sharded, exported with the weights.
inline constexpr llvm::StringLiteral kModelStateAttr = "zero.model_state";
/// Marks a parameter global the user froze (zero-build-train-step's `freeze`
/// and `trainable`: a float buffer such as a causal mask): a weight, placed
/// and exported as one, that gets no gradient, no update and no optimizer
/// state.
inline constexpr llvm::StringLiteral kFrozenAttr = "zero.frozen";

/// A parameter's #zero.placement: a discardable attribute that zero-partition
/// sets on each trainable ml_program.global (keeping one a policy pass set
/// before it) and zero-lower-to-plan copies onto the plan.parameter.
inline constexpr llvm::StringLiteral kPlacementAttr = "zero.placement";

/// The optional scalar operands that both optimizer updates (zero.sgd_update,
/// zero.adamw_update) have: the scheduled rate and the gradient's scale.
inline mlir::MutableOperandRange getScheduledLrMutable(mlir::Operation *update) {
  if (auto sgd = llvm::dyn_cast<SgdUpdateOp>(update))
    return sgd.getScheduledLrMutable();
  return llvm::cast<AdamWUpdateOp>(update).getScheduledLrMutable();
}
inline mlir::MutableOperandRange getGradScaleMutable(mlir::Operation *update) {
  if (auto sgd = llvm::dyn_cast<SgdUpdateOp>(update))
    return sgd.getGradScaleMutable();
  return llvm::cast<AdamWUpdateOp>(update).getGradScaleMutable();
}

/// The optimizer updates of `root` (zero.sgd_update, zero.adamw_update) in
/// program order.
inline llvm::SmallVector<mlir::Operation *> getOptimizerUpdates(mlir::Operation *root) {
  llvm::SmallVector<mlir::Operation *> updates;
  root->walk([&](mlir::Operation *op) {
    if (llvm::isa<SgdUpdateOp, AdamWUpdateOp>(op))
      updates.push_back(op);
  });
  return updates;
}

/// True for parameter globals that are weights rather than model state: the
/// optimizer trains them unless they are frozen.
inline bool isTrainable(mlir::ml_program::GlobalOp global) {
  return !global->hasAttr(kModelStateAttr);
}

/// True for the weights the loss is differentiated for.
inline bool receivesGradient(mlir::ml_program::GlobalOp global) {
  return isTrainable(global) && !global->hasAttr(kFrozenAttr);
}

/// The placement recorded on `op` (a parameter's global or plan.parameter);
/// replicated everywhere where none is (an unpartitioned parameter).
PlacementAttr getPlacement(mlir::Operation *op);

/// The placement of `global` for `worldSize` ranks, or failure (reported on
/// the global) where it cannot be lowered: model state placed, or sharded over
/// another number of ranks.
mlir::FailureOr<PlacementAttr> getParameterPlacement(mlir::ml_program::GlobalOp global,
                                                     int64_t worldSize);

/// The 1-D shard type of `type` over `worldSize` ranks.
mlir::RankedTensorType getShardType(mlir::RankedTensorType type, int64_t worldSize);

/// The parameter global that `symbol` names from `from`, or null with an error.
mlir::ml_program::GlobalOp lookupParameter(mlir::Operation *from, mlir::FlatSymbolRefAttr symbol);

} // namespace zero

#endif // ZERO_DIALECTS_ZERO_ZERODIALECT_H
