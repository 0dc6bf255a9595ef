//===- GradientOpInterface.h - an op's reverse-mode rule ------------------===//
//
// GradientOpInterface (GradientOpInterface.td) is how zero-build-train-step
// finds an op's gradient rule; GradientContext is what a rule sees of the
// pass. The rules themselves are external models (GradientRules.cpp), so an
// op's gradient lives apart from its dialect, as upstream's bufferization
// models do.
//
//===----------------------------------------------------------------------===//

#ifndef ZERO_PASSES_GRADIENTOPINTERFACE_H
#define ZERO_PASSES_GRADIENTOPINTERFACE_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/OpDefinition.h"

namespace zero {

/// The reverse-mode driver (BuildTrainStep.cpp) as seen by the rule of the
/// op it is differentiating.
class GradientContext {
public:
  virtual ~GradientContext() = default;

  /// Builds the backward ops, after the forward ones.
  mlir::OpBuilder &getBuilder() const { return builder; }
  /// The gradient that reaches `result`, one of the op's results (or null:
  /// an absent optional result); null where none does.
  virtual mlir::Value grad(mlir::Value result) const = 0;
  /// The gradient of the op's first result.
  mlir::Value grad() const { return grad(current->getResult(0)); }
  /// Whether the loss depends on `v` through a trainable parameter: only
  /// then has it a gradient to give.
  virtual bool needsGrad(mlir::Value v) const = 0;
  /// Adds `grad` to the gradient of `operand` (nothing if it needs none),
  /// summed over the dimensions the op broadcast it along.
  virtual void give(mlir::Value operand, mlir::Value grad) = 0;
  /// The forward value `v` as a backward op should read it: a parameter, or
  /// a layout change of one, is read again rather than kept alive from the
  /// forward pass, which ZeRO-3 needs to gather it only where it is used.
  virtual mlir::Value saved(mlir::Value v) = 0;
  /// A scalar f32 constant (it broadcasts against any f32 tensor).
  mlir::Value constant(mlir::Location loc, float value) const;

protected:
  explicit GradientContext(mlir::OpBuilder &builder) : builder(builder) {}

  mlir::OpBuilder &builder;
  mlir::Operation *current = nullptr; // the op being differentiated
};

/// Attaches every op's gradient rule (GradientRules.cpp) when its dialect
/// loads. zero-opt adds it to its registry in both modes.
void registerGradientRules(mlir::DialectRegistry &registry);

} // namespace zero

#include "passes/GradientOpInterface.h.inc"

#endif // ZERO_PASSES_GRADIENTOPINTERFACE_H
