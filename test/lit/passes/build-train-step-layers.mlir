// RUN: zero-opt %s -split-input-file --zero-build-train-step="optimizer=sgd lr=0.1" | FileCheck %s

// Embedding lookups scatter-add their gradient; a weight used transposed is
// re-read and re-transposed in backward rather than kept from forward.

// CHECK-LABEL: func.func @train_step({{.*}}"emb.ids"
// CHECK:         %[[W:.*]] = ml_program.global_load @table : tensor<10x4xf32>
// CHECK:         onnx.Gather %[[W]]
// CHECK:         %[[WB:.*]] = ml_program.global_load @table : tensor<10x4xf32>
// CHECK-NEXT:    onnx.Transpose %[[WB]] {perm = array<i64: 1, 0>}
// CHECK:         zero.gather_grad %{{.*}}, %{{.*}} {axis = 0 : i64} : (tensor<2x3x4xf32>, tensor<2x3xi64>) -> tensor<10x4xf32>
// CHECK:         zero.sgd_update @table
module {
  ml_program.global private mutable @table(dense<1.0> : tensor<10x4xf32>) : tensor<10x4xf32>
  func.func @main(%ids: tensor<2x3xi64> {zero.input = "emb.ids"}) -> tensor<f32> {
    %w = ml_program.global_load @table : tensor<10x4xf32>
    %e = onnx.Gather %w, %ids : (tensor<10x4xf32>, tensor<2x3xi64>) -> tensor<2x3x4xf32>
    %wt = onnx.Transpose %w {perm = array<i64: 1, 0>} : tensor<10x4xf32> -> tensor<4x10xf32>
    %logits = onnx.MatMul %e, %wt : (tensor<2x3x4xf32>, tensor<4x10xf32>) -> tensor<2x3x10xf32>
    %loss = onnx.ReduceSum %logits {axes = array<i64>, keepdims = false} : tensor<2x3x10xf32> -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// LayerNormalization has a fused gradient for input, scale and bias; Slice's
// gradient writes into zeros; Where routes the gradient to the selected side.

// CHECK-LABEL: func.func @train_step({{.*}}"ln.x"
// CHECK:         %[[DS:.*]] = zero.slice_grad %{{.*}} {starts = array<i64: 0, 1>, steps = array<i64: 1, 2>} : tensor<2x2xf32> -> tensor<2x4xf32>
// CHECK:         %[[DW:.*]] = onnx.Where %{{.*}}, %[[DS]], %{{.*}} : (tensor<2x4xi64>, tensor<2x4xf32>, tensor<f32>) -> tensor<2x4xf32>
// CHECK:         zero.layer_normalization_grad %[[DW]], %{{.*}} {axis = 1 : i64}
// CHECK-DAG:     zero.sgd_update @scale
// CHECK-DAG:     zero.sgd_update @bias
module {
  ml_program.global private mutable @scale(dense<1.0> : tensor<4xf32>) : tensor<4xf32>
  ml_program.global private mutable @bias(dense<0.0> : tensor<4xf32>) : tensor<4xf32>
  func.func @main(%x: tensor<2x4xf32> {zero.input = "ln.x"}, %mask: tensor<2x4xi64> {zero.input = "ln.mask"}) -> tensor<f32> {
    %s = ml_program.global_load @scale : tensor<4xf32>
    %b = ml_program.global_load @bias : tensor<4xf32>
    %y, %mean, %rstd = onnx.LayerNormalization %x, %s, %b {axis = 1 : i64} : (tensor<2x4xf32>, tensor<4xf32>, tensor<4xf32>) -> (tensor<2x4xf32>, tensor<2x1xf32>, tensor<2x1xf32>)
    %zero = onnx.Constant dense<0.0> : tensor<f32>
    %m = onnx.Where %mask, %y, %zero : (tensor<2x4xi64>, tensor<2x4xf32>, tensor<f32>) -> tensor<2x4xf32>
    %sl = onnx.Slice %m {starts = array<i64: 0, 1>, steps = array<i64: 1, 2>} : tensor<2x4xf32> -> tensor<2x2xf32>
    %loss = onnx.ReduceSum %sl {axes = array<i64>, keepdims = false} : tensor<2x2xf32> -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// Conv's input and weight gradients are their own ops (the input's here is
// not needed: it is a model input); BatchNormalization in training mode has
// a fused gradient. Its running statistics, which @main writes, are model
// state: the pass marks them and gives them no update.

// CHECK-LABEL: ml_program.global private mutable @gamma(
// CHECK:         ml_program.global private mutable @mean({{.*}}) : tensor<3xf32> {zero.model_state}
// CHECK:         ml_program.global private mutable @var({{.*}}) : tensor<3xf32> {zero.model_state}
// CHECK-LABEL: func.func @train_step({{.*}}"cnn.x"
// CHECK:         onnx.BatchNormalization
// CHECK:         ml_program.global_store @mean
// CHECK:         zero.batch_normalization_grad
// CHECK-NOT:     zero.conv_grad_input
// CHECK:         zero.conv_grad_weight %{{.*}}, %{{.*}} {dilations = array<i64: 1, 1>, group = 1 : i64, pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 1, 1>} : (tensor<2x3x4x4xf32>, tensor<2x1x4x4xf32>) -> tensor<3x1x3x3xf32>
// CHECK-NOT:     zero.sgd_update @mean
// CHECK-NOT:     zero.sgd_update @var
// CHECK:         zero.sgd_update @gamma
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
    %loss = onnx.ReduceMean %y {axes = array<i64>, keepdims = false} : tensor<2x3x4x4xf32> -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// Running statistics an inference-mode BatchNormalization reads (imported as
// elementwise ops, nothing writes them) are model state too: no gradient
// reaches them and they get no update; the scale trains.

// CHECK-LABEL: ml_program.global private mutable @frozen_mean(
// CHECK-SAME:    {onnx.running_statistics, zero.model_state}
// CHECK:         ml_program.global private mutable @bn_scale(
// CHECK-NOT:     zero.model_state
// CHECK-LABEL: func.func @train_step({{.*}}"frozen.x"
// CHECK-NOT:     zero.sgd_update @frozen_mean
// CHECK:         zero.sgd_update @bn_scale
// CHECK-NOT:     zero.sgd_update @frozen_mean
module {
  ml_program.global private mutable @frozen_mean(dense<0.5> : tensor<3xf32>) : tensor<3xf32> {onnx.running_statistics}
  ml_program.global private mutable @bn_scale(dense<2.0> : tensor<3xf32>) : tensor<3xf32>
  func.func @main(%x: tensor<2x3xf32> {zero.input = "frozen.x"}) -> tensor<f32> {
    %m = ml_program.global_load @frozen_mean : tensor<3xf32>
    %s = ml_program.global_load @bn_scale : tensor<3xf32>
    %c = onnx.Sub %x, %m : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
    %y = onnx.Mul %c, %s : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
    %loss = onnx.ReduceMean %y {axes = array<i64>, keepdims = false} : tensor<2x3xf32> -> tensor<f32>
    return %loss : tensor<f32>
  }
}
