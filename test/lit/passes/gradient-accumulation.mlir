// RUN: zero-opt %s --zero-build-train-step="optimizer=sgd lr=0.1 micro-steps=2" | FileCheck %s
// RUN: zero-opt %s --zero-build-train-step="optimizer=sgd lr=0.1 micro-steps=2" \
// RUN:   --zero-partition="stage=2 world-size=2" | FileCheck %s --check-prefix=STAGE2
// RUN: zero-opt %s --zero-build-train-step="optimizer=sgd lr=0.1 micro-steps=2" \
// RUN:   --zero-partition="stage=0 world-size=2" | FileCheck %s --check-prefix=STAGE0
// RUN: not zero-opt %s --zero-build-train-step="micro-steps=0" 2>&1 | FileCheck %s --check-prefix=ZERO
// ZERO: error: micro-steps must be at least 1, got 0

// Two micro-steps: each forward pass (the second on its own copy of the
// inputs) is followed by its backward pass, seeded with 1/2; the gradients
// are summed by zero.accumulate and the loss is the mean of the two.
// CHECK-LABEL: func.func @train_step(
// CHECK-SAME:      %[[X0:.*]]: tensor<2x4xf32> {zero.input = "x", zero.micro_step = 0 : i64}, %[[Y0:.*]]: tensor<2xi64> {zero.input = "y", zero.micro_step = 0 : i64}
// CHECK-SAME:      %[[X1:.*]]: tensor<2x4xf32> {zero.input = "x", zero.micro_step = 1 : i64}, %[[Y1:.*]]: tensor<2xi64> {zero.input = "y", zero.micro_step = 1 : i64}
// CHECK:         %[[L0:.*]] = onnx.SoftmaxCrossEntropyLoss %{{.*}}, %[[Y0]]
// CHECK:         %[[HALF:.*]] = onnx.Constant dense<5.000000e-01> : tensor<f32>
// CHECK:         zero.softmax_cross_entropy_loss_grad %[[HALF]]
// CHECK:         %[[G0:.*]] = onnx.Gemm %{{.*}}, %[[X0]] {beta = 0.000000e+00 : f32, transA = true}
// CHECK:         onnx.Gemm %[[X1]]
// CHECK:         %[[L1:.*]] = onnx.SoftmaxCrossEntropyLoss %{{.*}}, %[[Y1]]
// CHECK:         %[[G1:.*]] = onnx.Gemm %{{.*}}, %[[X1]] {beta = 0.000000e+00 : f32, transA = true}
// CHECK-NEXT:    %[[G:.*]] = zero.accumulate %[[G0]], %[[G1]] : tensor<3x4xf32>
// CHECK:         %[[SUM:.*]] = onnx.Add %[[L0]], %[[L1]]
// CHECK:         %[[MEAN:.*]] = onnx.Mul %[[SUM]], %{{.*}}
// CHECK:         zero.sgd_update @w, %[[G]]
// CHECK:         return %[[MEAN]]

// Stage 2: each micro-step's gradient is reduce-scattered as it completes and
// only the shards are summed.
// STAGE2-LABEL: func.func @train_step(
// STAGE2:         %[[G0:.*]] = onnx.Gemm %{{.*}}, %{{.*}} {beta = 0.000000e+00 : f32, transA = true}
// STAGE2-NEXT:    %[[S0:.*]] = zero.reduce_scatter %[[G0]] "mean" {world_size = 2 : i64} : tensor<3x4xf32> -> tensor<6xf32>
// STAGE2:         %[[G1:.*]] = onnx.Gemm %{{.*}}, %{{.*}} {beta = 0.000000e+00 : f32, transA = true}
// STAGE2-NEXT:    %[[S1:.*]] = zero.reduce_scatter %[[G1]] "mean" {world_size = 2 : i64} : tensor<3x4xf32> -> tensor<6xf32>
// STAGE2-NEXT:    %[[S:.*]] = onnx.Add %[[S0]], %[[S1]] : (tensor<6xf32>, tensor<6xf32>) -> tensor<6xf32>
// STAGE2-NOT:     zero.accumulate
// STAGE2:         zero.sgd_update @w, %[[S]] {{.*}}sharded

// Stage 0: whole gradients are summed and all-reduced once.
// STAGE0-LABEL: func.func @train_step(
// STAGE0:         %[[G:.*]] = zero.accumulate
// STAGE0-NEXT:    %[[R:.*]] = zero.all_reduce %[[G]] "mean" : tensor<3x4xf32>
// STAGE0-NOT:     zero.reduce_scatter
// STAGE0:         zero.sgd_update @w, %[[R]]
module {
  ml_program.global private mutable @w(dense<0.5> : tensor<3x4xf32>) : tensor<3x4xf32>
  func.func @main(%x: tensor<2x4xf32> {zero.input = "x"}, %y: tensor<2xi64> {zero.input = "y"}) -> tensor<f32> {
    %w = ml_program.global_load @w : tensor<3x4xf32>
    %0 = onnx.Gemm %x, %w {transB = true} : (tensor<2x4xf32>, tensor<3x4xf32>) -> tensor<2x3xf32>
    %loss = onnx.SoftmaxCrossEntropyLoss %0, %y : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}
