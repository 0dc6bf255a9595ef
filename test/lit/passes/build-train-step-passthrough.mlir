// Pass-through ops (Identity, a Cast to the same type) hand the incoming
// gradient to their input.

// RUN: zero-opt %s -split-input-file --zero-build-train-step="optimizer=sgd" | FileCheck %s

// CHECK-LABEL: func.func @train_step({{.*}}"identity.x"
// CHECK:         zero.sgd_update @w, %{{.*}} : tensor<2xf32>
module {
  ml_program.global private mutable @w(dense<1.0> : tensor<2xf32>) : tensor<2xf32>
  func.func @main(%x: tensor<2xf32> {zero.input = "identity.x"}) -> tensor<f32> {
    %w = ml_program.global_load @w : tensor<2xf32>
    %0 = onnx.Identity %w : tensor<2xf32>
    %1 = onnx.Mul %x, %0 : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
    %2 = onnx.ReduceSum %1 {axes = array<i64>, keepdims = false} : tensor<2xf32> -> tensor<f32>
    return %2 : tensor<f32>
  }
}

// -----

// CHECK-LABEL: func.func @train_step({{.*}}"cast.x"
// CHECK:         zero.sgd_update @w, %{{.*}} : tensor<2xf32>
module {
  ml_program.global private mutable @w(dense<1.0> : tensor<2xf32>) : tensor<2xf32>
  func.func @main(%x: tensor<2xf32> {zero.input = "cast.x"}) -> tensor<f32> {
    %w = ml_program.global_load @w : tensor<2xf32>
    %0 = onnx.Cast %w : tensor<2xf32> -> tensor<2xf32>
    %1 = onnx.Mul %x, %0 : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
    %2 = onnx.ReduceSum %1 {axes = array<i64>, keepdims = false} : tensor<2xf32> -> tensor<f32>
    return %2 : tensor<f32>
  }
}
