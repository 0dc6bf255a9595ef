// RUN: zero-opt %s -split-input-file -verify-diagnostics --zero-build-eval-step | FileCheck %s

// @eval_step is @main as model.eval() runs it: Dropout is the identity, and
// BatchNormalization normalizes with its running statistics,
// (x - mean) / sqrt(var + eps) * scale + bias, and writes them back nowhere.
// @main is left as it was, for zero-build-train-step.

// CHECK-LABEL: func.func @main(
// CHECK:         onnx.BatchNormalization
// CHECK:         ml_program.global_store @mean
// CHECK:         onnx.Dropout
// CHECK-LABEL: func.func @eval_step(
// CHECK-SAME:      {zero.input = "cnn.x"}
// CHECK:         %[[C:.*]] = onnx.Conv
// CHECK:         %[[G:.*]] = ml_program.global_load @gamma
// CHECK:         %[[B:.*]] = ml_program.global_load @beta
// CHECK:         %[[M:.*]] = ml_program.global_load @mean
// CHECK:         %[[V:.*]] = ml_program.global_load @var
// CHECK:         %[[EPS:.*]] = onnx.Constant dense<9.99999974E-6> : tensor<f32>
// CHECK:         %[[VC:.*]] = onnx.Reshape %[[V]] : tensor<3xf32> -> tensor<1x3x1x1xf32>
// CHECK:         %[[VE:.*]] = onnx.Add %[[VC]], %[[EPS]]
// CHECK:         %[[STD:.*]] = onnx.Sqrt %[[VE]]
// CHECK:         %[[MC:.*]] = onnx.Reshape %[[M]]
// CHECK:         %[[CENTERED:.*]] = onnx.Sub %[[C]], %[[MC]]
// CHECK:         %[[NORM:.*]] = onnx.Div %[[CENTERED]], %[[STD]]
// CHECK:         %[[GC:.*]] = onnx.Reshape %[[G]]
// CHECK:         %[[SCALED:.*]] = onnx.Mul %[[NORM]], %[[GC]]
// CHECK:         %[[BC:.*]] = onnx.Reshape %[[B]]
// CHECK:         %[[Y:.*]] = onnx.Add %[[SCALED]], %[[BC]]
// CHECK-NOT:     onnx.BatchNormalization
// CHECK-NOT:     onnx.Dropout
// CHECK-NOT:     ml_program.global_store
// CHECK:         onnx.ReduceMean %[[Y]]
module {
  ml_program.global private mutable @w(dense<1.0> : tensor<3x1x3x3xf32>) : tensor<3x1x3x3xf32>
  ml_program.global private mutable @gamma(dense<1.0> : tensor<3xf32>) : tensor<3xf32>
  ml_program.global private mutable @beta(dense<0.0> : tensor<3xf32>) : tensor<3xf32>
  ml_program.global private mutable @mean(dense<0.0> : tensor<3xf32>) : tensor<3xf32>
  ml_program.global private mutable @var(dense<1.0> : tensor<3xf32>) : tensor<3xf32>
  func.func @main(%x: tensor<2x1x4x4xf32> {zero.input = "cnn.x"}) -> tensor<f32> {
    %w = ml_program.global_load @w : tensor<3x1x3x3xf32>
    %c = onnx.Conv %x, %w {dilations = array<i64: 1, 1>, group = 1 : i64, pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 1, 1>} : (tensor<2x1x4x4xf32>, tensor<3x1x3x3xf32>) -> tensor<2x3x4x4xf32>
    %g = ml_program.global_load @gamma : tensor<3xf32>
    %b = ml_program.global_load @beta : tensor<3xf32>
    %m = ml_program.global_load @mean : tensor<3xf32>
    %v = ml_program.global_load @var : tensor<3xf32>
    %y, %sm, %si, %nm, %nv = onnx.BatchNormalization %c, %g, %b, %m, %v {epsilon = 1.0e-5 : f32, momentum = 0.1 : f32} : (tensor<2x3x4x4xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>) -> (tensor<2x3x4x4xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>)
    ml_program.global_store @mean = %nm : tensor<3xf32>
    ml_program.global_store @var = %nv : tensor<3xf32>
    %d = onnx.Dropout %y {ratio = 0.5 : f32, stream = 0 : i64} : tensor<2x3x4x4xf32>
    %loss = onnx.ReduceMean %d {axes = array<i64>, keepdims = false} : tensor<2x3x4x4xf32> -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// expected-error @+1 {{expected a single-block function @main returning the loss}}
module {
}

// -----

// expected-error @+1 {{the module already has an @eval_step}}
module {
  func.func @main(%x: tensor<f32> {zero.input = "x"}) -> tensor<f32> {
    return %x : tensor<f32>
  }
  func.func @eval_step(%x: tensor<f32> {zero.input = "x"}) -> tensor<f32> {
    return %x : tensor<f32>
  }
}
