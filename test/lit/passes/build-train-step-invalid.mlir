// Errors of zero-build-train-step. Option errors are reported on the module.

// RUN: split-file %s %t
// RUN: zero-opt %t/optimizer.mlir --zero-build-train-step="optimizer=lamb" -verify-diagnostics
// RUN: zero-opt %t/adam-decay.mlir --zero-build-train-step="optimizer=adam weight-decay=0.1" -verify-diagnostics
// RUN: zero-opt %t/sgd-betas.mlir --zero-build-train-step="optimizer=sgd beta1=0.5" -verify-diagnostics
// RUN: zero-opt %t/adam-momentum.mlir --zero-build-train-step="optimizer=adamw momentum=0.9" -verify-diagnostics
// RUN: zero-opt %t/bodies.mlir -split-input-file --zero-build-train-step -verify-diagnostics

//--- optimizer.mlir
// expected-error @+1 {{unknown optimizer 'lamb' (expected sgd, adam or adamw)}}
module {
  func.func @main(%x: tensor<f32>) -> tensor<f32> {
    return %x : tensor<f32>
  }
}

//--- adam-decay.mlir
// expected-error @+1 {{adam with weight decay is L2-coupled in PyTorch; use adamw, or adam with weight-decay 0}}
module {
  func.func @main(%x: tensor<f32>) -> tensor<f32> {
    return %x : tensor<f32>
  }
}

//--- sgd-betas.mlir
// expected-error @+1 {{beta1, beta2 and eps apply to adam and adamw, not sgd}}
module {
  func.func @main(%x: tensor<f32>) -> tensor<f32> {
    return %x : tensor<f32>
  }
}

//--- adam-momentum.mlir
// expected-error @+1 {{momentum applies to sgd; use beta1 for adam and adamw}}
module {
  func.func @main(%x: tensor<f32>) -> tensor<f32> {
    return %x : tensor<f32>
  }
}

//--- bodies.mlir
// expected-error @+1 {{expected a single-block function @main returning the loss}}
module {
  func.func @forward(%x: tensor<f32>) -> tensor<f32> {
    return %x : tensor<f32>
  }
}

// -----

module {
  ml_program.global private mutable @w(dense<1.0> : tensor<2xf32>) : tensor<2xf32>
  // expected-error @+1 {{the loss must be a scalar f32 tensor, got 'tensor<2xf32>'}}
  func.func @main(%x: tensor<2xf32>) -> tensor<2xf32> {
    %w = ml_program.global_load @w : tensor<2xf32>
    %0 = onnx.Mul %x, %w : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
    return %0 : tensor<2xf32>
  }
}

// -----

module {
  // expected-error @+1 {{@main must return the loss}}
  func.func @main(%x: tensor<2xf32>) {
    return
  }
}

// -----

module {
  func.func @main(%x: tensor<2xf32>) -> tensor<f32> {
    // expected-error @+1 {{the loss does not depend on any trainable parameter}}
    %0 = onnx.ReduceSum %x {axes = array<i64>, keepdims = false} : tensor<2xf32> -> tensor<f32>
    return %0 : tensor<f32>
  }
}

// -----

// An op with no gradient rule on the path from a parameter to the loss.
module {
  ml_program.global private mutable @w(dense<1.0> : tensor<2xf32>) : tensor<2xf32>
  func.func @main(%x: tensor<2xf32>) -> tensor<f32> {
    %w = ml_program.global_load @w : tensor<2xf32>
    // expected-error @+1 {{'zero.elementwise_grad' op has no gradient rule}}
    %0 = zero.elementwise_grad "Relu" %x, %w : tensor<2xf32>
    %1 = onnx.ReduceSum %0 {axes = array<i64>, keepdims = false} : tensor<2xf32> -> tensor<f32>
    return %1 : tensor<f32>
  }
}

// -----

module {
  ml_program.global private mutable @w(dense<1.0> : tensor<2x3xf32>) : tensor<2x3xf32>
  func.func @main(%x: tensor<2x3xf32>, %y: tensor<2xi64>) -> tensor<f32> {
    %w = ml_program.global_load @w : tensor<2x3xf32>
    %0 = onnx.Add %x, %w : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
    // expected-error @+1 {{'onnx.SoftmaxCrossEntropyLoss' op gradients through the log_prob output are not supported}}
    %loss, %log_prob = onnx.SoftmaxCrossEntropyLoss %0, %y : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<f32>, tensor<2x3xf32>
    %1 = onnx.ReduceSum %log_prob {axes = array<i64>, keepdims = false} : tensor<2x3xf32> -> tensor<f32>
    %2 = onnx.Add %loss, %1 : (tensor<f32>, tensor<f32>) -> tensor<f32>
    return %2 : tensor<f32>
  }
}
