// RUN: split-file %s %t
// RUN: zero-opt %t/twice.mlir --zero-partition="stage=1 world-size=2" -verify-diagnostics
// RUN: zero-opt %t/no-step.mlir --zero-partition="stage=1 world-size=2" -verify-diagnostics
// Out-of-range options: see partition-options-invalid.mlir.

//--- twice.mlir
// expected-error @+1 {{the module is already partitioned}}
module attributes {zero.stage = 0 : i64, zero.world_size = 2 : i64} {
  func.func @train_step(%x: tensor<f32>) -> tensor<f32> {
    %0 = zero.all_reduce %x "mean" : tensor<f32>
    return %0 : tensor<f32>
  }
}

//--- no-step.mlir
// expected-error @+1 {{expected @train_step; run zero-build-train-step first}}
module {
  func.func @main(%x: tensor<f32>) -> tensor<f32> {
    return %x : tensor<f32>
  }
}
