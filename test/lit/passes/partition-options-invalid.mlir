// Option errors print the option's value as a number.

// RUN: split-file %s %t
// RUN: zero-opt %t/stage.mlir --zero-partition="stage=5 world-size=2" -verify-diagnostics
// RUN: zero-opt %t/negative-stage.mlir --zero-partition="stage=-1 world-size=2" -verify-diagnostics
// RUN: zero-opt %t/world.mlir --zero-partition="stage=1 world-size=0" -verify-diagnostics
// RUN: zero-opt %t/persist.mlir --zero-partition="stage=3 world-size=2 persist-below=-1" -verify-diagnostics

//--- stage.mlir
// expected-error @+1 {{ZeRO stage must be 0, 1, 2 or 3, got 5}}
module {
  func.func @train_step(%x: tensor<f32>) -> tensor<f32> {
    return %x : tensor<f32>
  }
}

//--- negative-stage.mlir
// expected-error @+1 {{ZeRO stage must be 0, 1, 2 or 3, got -1}}
module {
  func.func @train_step(%x: tensor<f32>) -> tensor<f32> {
    return %x : tensor<f32>
  }
}

//--- world.mlir
// expected-error @+1 {{world size must be at least 1, got 0}}
module {
  func.func @train_step(%x: tensor<f32>) -> tensor<f32> {
    return %x : tensor<f32>
  }
}

//--- persist.mlir
// expected-error @+1 {{persist-below must be at least 0 bytes, got -1}}
module {
  func.func @train_step(%x: tensor<f32>) -> tensor<f32> {
    return %x : tensor<f32>
  }
}
