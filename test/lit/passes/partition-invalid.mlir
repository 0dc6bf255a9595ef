// RUN: split-file %s %t
// RUN: zero-opt %t/twice.mlir --zero-partition="stage=1 world-size=2" -verify-diagnostics
// RUN: zero-opt %t/no-step.mlir --zero-partition="stage=1 world-size=2" -verify-diagnostics
// RUN: zero-opt %t/placement-world.mlir --zero-partition="stage=3 world-size=2" -verify-diagnostics
// RUN: zero-opt %t/placement-model-state.mlir --zero-partition="stage=0 world-size=2" -verify-diagnostics
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

//--- placement-world.mlir
// A placement set before partitioning must shard over the world size.
module {
  // expected-error @+1 {{'ml_program.global' op is sharded over 3 ranks, but the world size is 2}}
  ml_program.global private mutable @w(dense<1.0> : tensor<4xf32>) : tensor<4xf32> {zero.placement = #zero.placement<weights = replicated, grad = replicated, optimizer_state = sharded<3>>}
  func.func @train_step(%x: tensor<f32>) -> tensor<f32> {
    return %x : tensor<f32>
  }
}

//--- placement-model-state.mlir
module {
  // expected-error @+1 {{'ml_program.global' op is model state, which stays whole on every rank; it cannot be placed #zero.placement<weights = replicated, grad = replicated, optimizer_state = sharded<2>>}}
  ml_program.global private mutable @mean(dense<0.0> : tensor<4xf32>) : tensor<4xf32> {zero.model_state, zero.placement = #zero.placement<weights = replicated, grad = replicated, optimizer_state = sharded<2>>}
  func.func @train_step(%x: tensor<f32>) -> tensor<f32> {
    return %x : tensor<f32>
  }
}
