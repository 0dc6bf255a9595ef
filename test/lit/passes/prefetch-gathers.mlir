// RUN: zero-opt %s -split-input-file --zero-prefetch-gathers="distance=1" | FileCheck %s
// RUN: zero-opt %s -split-input-file --zero-prefetch-gathers="distance=0" | FileCheck %s --check-prefix=NONE

// Each stage-3 gather moves to the first use of the gather before it, so @w2
// is fetched while the first layer computes; the gathers keep their order.
// CHECK-LABEL: func.func @train_step
// CHECK:         %[[S1:.*]] = zero.load_shard @w1
// CHECK-NEXT:    %[[W1:.*]] = zero.all_gather %[[S1]]
// CHECK-NEXT:    %[[S2:.*]] = zero.load_shard @w2
// CHECK-NEXT:    %[[W2:.*]] = zero.all_gather %[[S2]]
// CHECK-NEXT:    %[[H:.*]] = onnx.Mul %{{.*}}, %[[W1]]
// CHECK-NEXT:    %[[S3:.*]] = zero.load_shard @w3
// CHECK-NEXT:    %[[W3:.*]] = zero.all_gather %[[S3]]
// CHECK-NEXT:    %[[H2:.*]] = onnx.Mul %[[H]], %[[W2]]
// CHECK-NEXT:    onnx.Mul %[[H2]], %[[W3]]

// NONE-LABEL: func.func @train_step
// NONE:         zero.all_gather
// NONE-NEXT:    onnx.Mul
// NONE-NEXT:    zero.load_shard @w2
module attributes {zero.stage = 3 : i64, zero.world_size = 2 : i64} {
  ml_program.global private mutable @w1(dense<1.0> : tensor<4xf32>) : tensor<4xf32>
  ml_program.global private mutable @w2(dense<1.0> : tensor<4xf32>) : tensor<4xf32>
  ml_program.global private mutable @w3(dense<1.0> : tensor<4xf32>) : tensor<4xf32>
  func.func @train_step(%x: tensor<4xf32> {zero.input = "x"}) -> tensor<4xf32> {
    %s1 = zero.load_shard @w1 : tensor<2xf32>
    %w1 = zero.all_gather %s1 {world_size = 2 : i64} : tensor<2xf32> -> tensor<4xf32>
    %h = onnx.Mul %x, %w1 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    %s2 = zero.load_shard @w2 : tensor<2xf32>
    %w2 = zero.all_gather %s2 {world_size = 2 : i64} : tensor<2xf32> -> tensor<4xf32>
    %h2 = onnx.Mul %h, %w2 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    %s3 = zero.load_shard @w3 : tensor<2xf32>
    %w3 = zero.all_gather %s3 {world_size = 2 : i64} : tensor<2xf32> -> tensor<4xf32>
    %h3 = onnx.Mul %h2, %w3 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    return %h3 : tensor<4xf32>
  }
}
