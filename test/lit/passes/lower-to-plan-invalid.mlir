// RUN: split-file %s %t
// RUN: zero-opt %t/backend.mlir --zero-lower-to-plan="backend=tpu" -verify-diagnostics
// RUN: zero-opt %t/unpartitioned.mlir --zero-lower-to-plan -verify-diagnostics
// RUN: zero-opt %t/no-step.mlir --zero-lower-to-plan -verify-diagnostics

//--- backend.mlir
// expected-error @+1 {{unknown backend 'tpu' (expected cpu or cuda)}}
module attributes {zero.stage = 0 : i64, zero.world_size = 1 : i64} {
}

//--- unpartitioned.mlir
// expected-error @+1 {{expected a partitioned @train_step (run zero-partition) or an unpartitioned @main}}
module {
  func.func @train_step(%x: tensor<f32> {zero.input = "x"}) -> tensor<f32> {
    return %x : tensor<f32>
  }
}

//--- no-step.mlir
// expected-error @+1 {{expected a partitioned @train_step (run zero-partition) or an unpartitioned @main}}
module attributes {zero.stage = 0 : i64, zero.world_size = 1 : i64} {
  func.func @main(%x: tensor<f32>) -> tensor<f32> {
    return %x : tensor<f32>
  }
}
