// RUN: zero-opt %s -split-input-file --zero-build-train-step="optimizer=sgd lr=0.1" | FileCheck %s
// RUN: zero-opt %s -split-input-file --zero-build-train-step="optimizer=sgd lr=0.5 momentum=0.9 weight-decay=0.25" | FileCheck %s --check-prefix=MOMENTUM
// RUN: zero-opt %s -split-input-file --zero-build-train-step="optimizer=adamw lr=0.01 beta1=0.8 beta2=0.99 eps=1e-6" | FileCheck %s --check-prefix=ADAMW
// RUN: zero-opt %s -split-input-file --zero-build-train-step="optimizer=adam" | FileCheck %s --check-prefix=ADAM

// A two-layer MLP: Gemm gradients are Gemms with transposed operands, Relu's
// is zero.elementwise_grad "Relu" of the saved input, the bias gradient is unbroadcast
// (ReduceSum + Reshape), and parameters the backward pass reads are read
// again there. Updates come in reverse order of first use.

// CHECK-LABEL: func.func @train_step(
// CHECK-SAME:      %[[X:.*]]: tensor<2x4xf32> {zero.input = "mlp.x"}, %[[Y:.*]]: tensor<2xi64> {zero.input = "mlp.y"}) -> tensor<f32>
// CHECK:         %[[W1:.*]] = ml_program.global_load @w1 : tensor<3x4xf32>
// CHECK:         %[[H:.*]] = onnx.Gemm %[[X]], %[[W1]] {transB = true}
// CHECK:         %[[HB:.*]] = onnx.Add %[[H]], %{{.*}} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
// CHECK:         %[[R:.*]] = onnx.Relu %[[HB]]
// CHECK:         %[[W2:.*]] = ml_program.global_load @w2 : tensor<5x3xf32>
// CHECK:         %[[LOGITS:.*]] = onnx.Gemm %[[R]], %[[W2]] {transB = true}
// CHECK:         %[[LOSS:.*]] = onnx.SoftmaxCrossEntropyLoss %[[LOGITS]], %[[Y]] {reduction = "sum"}
// CHECK:         %[[SEED:.*]] = onnx.Constant dense<1.000000e+00> : tensor<f32>
// CHECK:         %[[DLOGITS:.*]] = zero.softmax_cross_entropy_loss_grad %[[SEED]], %[[LOGITS]], %[[Y]] {reduction = "sum"} : (tensor<f32>, tensor<2x5xf32>, tensor<2xi64>) -> tensor<2x5xf32>
// The backward pass reads w2 again instead of reusing the forward read.
// CHECK:         %[[W2B:.*]] = ml_program.global_load @w2 : tensor<5x3xf32>
// CHECK:         %[[DR:.*]] = onnx.Gemm %[[DLOGITS]], %[[W2B]] {beta = 0.000000e+00 : f32} : (tensor<2x5xf32>, tensor<5x3xf32>) -> tensor<2x3xf32>
// CHECK:         %[[DW2:.*]] = onnx.Gemm %[[DLOGITS]], %[[R]] {beta = 0.000000e+00 : f32, transA = true} : (tensor<2x5xf32>, tensor<2x3xf32>) -> tensor<5x3xf32>
// CHECK:         %[[DH:.*]] = zero.elementwise_grad "Relu" %[[DR]], %[[HB]] : tensor<2x3xf32>
// CHECK:         %[[SUM:.*]] = onnx.ReduceSum %[[DH]] {axes = array<i64: 0>} : tensor<2x3xf32> -> tensor<1x3xf32>
// CHECK-NEXT:    %[[DB:.*]] = onnx.Reshape %[[SUM]] : tensor<1x3xf32> -> tensor<3xf32>
// CHECK:         %[[DW1:.*]] = onnx.Gemm %[[DH]], %[[X]] {beta = 0.000000e+00 : f32, transA = true} : (tensor<2x3xf32>, tensor<2x4xf32>) -> tensor<3x4xf32>
// The input x needs no gradient, so w1 is not read again.
// CHECK-NOT:     ml_program.global_load @w1
// CHECK:         zero.sgd_update @w2, %[[DW2]] {lr = 1.000000e-01 : f32, momentum = 0.000000e+00 : f32, weight_decay = 0.000000e+00 : f32} : tensor<5x3xf32>
// CHECK-NEXT:    zero.sgd_update @b1, %[[DB]] {lr = 1.000000e-01 : f32, momentum = 0.000000e+00 : f32, weight_decay = 0.000000e+00 : f32} : tensor<3xf32>
// CHECK-NEXT:    zero.sgd_update @w1, %[[DW1]] {lr = 1.000000e-01 : f32, momentum = 0.000000e+00 : f32, weight_decay = 0.000000e+00 : f32} : tensor<3x4xf32>
// CHECK-NEXT:    return %[[LOSS]] : tensor<f32>

// MOMENTUM-LABEL: func.func @train_step({{.*}}"mlp.x"
// MOMENTUM-COUNT-3: zero.sgd_update {{.*}} {lr = 5.000000e-01 : f32, momentum = 0.899999976 : f32, weight_decay = 2.500000e-01 : f32}
// MOMENTUM-NEXT: return

// AdamW's weight decay defaults to 0.01.
// ADAMW-LABEL: func.func @train_step({{.*}}"mlp.x"
// ADAMW-COUNT-3: zero.adamw_update {{.*}} {beta1 = 8.000000e-01 : f32, beta2 = 9.900000e-01 : f32, eps = 9.99999997E-7 : f32, lr = 0.00999999977 : f32, weight_decay = 0.00999999977 : f32}
// ADAMW-NEXT:    return

// Adam is AdamW without weight decay.
// ADAM-LABEL: func.func @train_step({{.*}}"mlp.x"
// ADAM-COUNT-3: zero.adamw_update {{.*}} {beta1 = 0.899999976 : f32, beta2 = 9.990000e-01 : f32, eps = 9.99999993E-9 : f32, lr = 1.000000e-03 : f32, weight_decay = 0.000000e+00 : f32}
// ADAM-NEXT:    return
module {
  ml_program.global private mutable @w1(dense<1.0> : tensor<3x4xf32>) : tensor<3x4xf32>
  ml_program.global private mutable @b1(dense<0.0> : tensor<3xf32>) : tensor<3xf32>
  ml_program.global private mutable @w2(dense<1.0> : tensor<5x3xf32>) : tensor<5x3xf32>
  func.func @main(%x: tensor<2x4xf32> {zero.input = "mlp.x"}, %y: tensor<2xi64> {zero.input = "mlp.y"}) -> tensor<f32> {
    %w1 = ml_program.global_load @w1 : tensor<3x4xf32>
    %0 = onnx.Gemm %x, %w1 {transB = true} : (tensor<2x4xf32>, tensor<3x4xf32>) -> tensor<2x3xf32>
    %b1 = ml_program.global_load @b1 : tensor<3xf32>
    %1 = onnx.Add %0, %b1 : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
    %2 = onnx.Relu %1 : tensor<2x3xf32>
    %w2 = ml_program.global_load @w2 : tensor<5x3xf32>
    %3 = onnx.Gemm %2, %w2 {transB = true} : (tensor<2x3xf32>, tensor<5x3xf32>) -> tensor<2x5xf32>
    %loss = onnx.SoftmaxCrossEntropyLoss %3, %y {reduction = "sum"} : (tensor<2x5xf32>, tensor<2xi64>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// ReduceMean's gradient is scaled by 1/count and expanded back; ReduceSum's
// over all axes reshapes the scalar and expands it. A parameter the loss
// does not depend on gets no update.

// CHECK-LABEL: func.func @train_step({{.*}}"reduce.x"
// CHECK:         %[[W:.*]] = ml_program.global_load @w : tensor<2x3xf32>
// CHECK:         %[[P:.*]] = onnx.Mul %[[X:.*]], %[[W]]
// CHECK:         %[[SEED:.*]] = onnx.Constant dense<1.000000e+00> : tensor<f32>
// CHECK-NEXT:    %[[S1:.*]] = onnx.Reshape %[[SEED]] : tensor<f32> -> tensor<1xf32>
// CHECK-NEXT:    %[[S2:.*]] = onnx.Expand %[[S1]] : tensor<1xf32> -> tensor<2xf32>
// CHECK-NEXT:    %[[M1:.*]] = onnx.Reshape %[[S2]] : tensor<2xf32> -> tensor<2x1xf32>
// CHECK-NEXT:    %[[THIRD:.*]] = onnx.Constant dense<0.333333343> : tensor<f32>
// CHECK-NEXT:    %[[M2:.*]] = onnx.Mul %[[M1]], %[[THIRD]] : (tensor<2x1xf32>, tensor<f32>) -> tensor<2x1xf32>
// CHECK-NEXT:    %[[M3:.*]] = onnx.Expand %[[M2]] : tensor<2x1xf32> -> tensor<2x3xf32>
// CHECK-NEXT:    %[[DW:.*]] = onnx.Mul %[[M3]], %[[X]] : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    zero.sgd_update @w, %[[DW]]
// CHECK-NOT:     zero.sgd_update @unused
// CHECK:         return
module {
  ml_program.global private mutable @w(dense<1.0> : tensor<2x3xf32>) : tensor<2x3xf32>
  ml_program.global private mutable @unused(dense<1.0> : tensor<7xf32>) : tensor<7xf32>
  func.func @main(%x: tensor<2x3xf32> {zero.input = "reduce.x"}) -> tensor<f32> {
    %w = ml_program.global_load @w : tensor<2x3xf32>
    %u = ml_program.global_load @unused : tensor<7xf32>
    %0 = onnx.Mul %x, %w : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
    %1 = onnx.ReduceMean %0 {axes = array<i64: 1>, keepdims = false} : tensor<2x3xf32> -> tensor<2xf32>
    %2 = onnx.ReduceSum %1 {axes = array<i64>, keepdims = false} : tensor<2xf32> -> tensor<f32>
    return %2 : tensor<f32>
  }
}

// -----

// A parameter used twice gets its gradients summed and one update; the
// broadcast operand of Add is reduced over the broadcast axes.

// CHECK-LABEL: func.func @train_step({{.*}}"twice.x"
// CHECK:         %[[G:.*]] = onnx.Add
// CHECK:         %[[R:.*]] = onnx.ReduceSum %{{.*}} {axes = array<i64: 0>} : tensor<4x3xf32> -> tensor<1x3xf32>
// CHECK-NOT:     onnx.Reshape
// CHECK:         %[[SUM:.*]] = onnx.Add %{{.*}}, %{{.*}} : (tensor<1x3xf32>, tensor<1x3xf32>) -> tensor<1x3xf32>
// CHECK-NEXT:    zero.sgd_update @v, %[[SUM]] {{.*}} : tensor<1x3xf32>
// CHECK-NOT:     zero.sgd_update
// CHECK:         return
module {
  ml_program.global private mutable @v(dense<1.0> : tensor<1x3xf32>) : tensor<1x3xf32>
  func.func @main(%x: tensor<4x3xf32> {zero.input = "twice.x"}) -> tensor<f32> {
    %v = ml_program.global_load @v : tensor<1x3xf32>
    %0 = onnx.Add %x, %v : (tensor<4x3xf32>, tensor<1x3xf32>) -> tensor<4x3xf32>
    %1 = onnx.Mul %0, %v : (tensor<4x3xf32>, tensor<1x3xf32>) -> tensor<4x3xf32>
    %2 = onnx.ReduceSum %1 {axes = array<i64>, keepdims = false} : tensor<4x3xf32> -> tensor<f32>
    return %2 : tensor<f32>
  }
}
