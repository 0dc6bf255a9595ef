//===- GradientOpInterface.td - an op's reverse-mode rule ---*- tablegen -*-===//

#ifndef ZERO_PASSES_GRADIENTOPINTERFACE
#define ZERO_PASSES_GRADIENTOPINTERFACE

include "mlir/IR/OpBase.td"

def GradientOpInterface : OpInterface<"GradientOpInterface"> {
  let description = [{
    The gradient rule of an op: given the gradients that reach its results,
    builds the backward ops that give its operands theirs. zero-build-train-step
    calls it on each op between the parameters and the loss, in reverse
    program order. The onnx dialect knows nothing of autodiff: the rules are
    external models (passes/GradientRules.cpp), attached by
    registerGradientRules.
  }];
  let cppNamespace = "::zero";
  let methods = [
    InterfaceMethod<
      [{Builds the op's backward ops through `ctx`, which has its results'
        gradients and takes its operands'. Fails (with an error on the op)
        for a case the rule does not differentiate.}],
      "::llvm::LogicalResult", "buildGradient", (ins "::zero::GradientContext &":$ctx)>,
  ];
}

#endif // ZERO_PASSES_GRADIENTOPINTERFACE
