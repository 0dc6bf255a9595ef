// RUN: zero-opt %s -split-input-file --zero-partition="stage=0 world-size=2" \
// RUN:   --zero-clip-grad-norm="max-norm=0.5" | FileCheck %s --check-prefix=STAGE0
// RUN: zero-opt %s -split-input-file --zero-partition="stage=1 world-size=2" \
// RUN:   --zero-clip-grad-norm="max-norm=0.5" | FileCheck %s --check-prefix=STAGE1
// RUN: zero-opt %s -split-input-file --zero-partition="stage=3 world-size=2 persist-below=16" \
// RUN:   --zero-clip-grad-norm="max-norm=0.5" | FileCheck %s --check-prefix=PERSIST

// Stage 0: the gradients are all-reduced, whole and equal on every rank:
// their squares are summed locally, no collective is added.
// STAGE0-LABEL: func.func @train_step
// STAGE0-DAG:     %[[RB:.*]] = zero.all_reduce %{{.*}} "mean" : tensor<2xf32>
// STAGE0-DAG:     %[[RW:.*]] = zero.all_reduce %{{.*}} "mean" : tensor<2x5xf32>
// STAGE0:         %[[SB:.*]] = zero.sum_squares %[[RB]] : tensor<2xf32>
// STAGE0-NEXT:    %[[SW:.*]] = zero.sum_squares %[[RW]] : tensor<2x5xf32>
// STAGE0-NEXT:    %[[S:.*]] = onnx.Add %[[SB]], %[[SW]]
// STAGE0-NEXT:    %[[C:.*]], %[[N:.*]] = zero.clip_coefficient %[[S]] {max_norm = 5.000000e-01 : f32}
// STAGE0-NEXT:    zero.metric "grad_norm" %[[N]]
// STAGE0-NEXT:    zero.sgd_update @b, %[[RB]] scale(%[[C]])
// STAGE0-NEXT:    zero.sgd_update @w, %[[RW]] scale(%[[C]])
// STAGE0-NOT:     zero.all_reduce

// Stage 1 reduce-scatters each gradient just before its update; the second
// one moves before the first update, so the norm is complete before any
// update. Shards' squares are summed over ranks by one scalar all-reduce.
// STAGE1-LABEL: func.func @train_step
// STAGE1:         %[[RB:.*]] = zero.reduce_scatter %{{.*}} "mean" {world_size = 2 : i64} : tensor<2xf32> -> tensor<1xf32>
// STAGE1-NEXT:    %[[RW:.*]] = zero.reduce_scatter %{{.*}} "mean" {world_size = 2 : i64} : tensor<2x5xf32> -> tensor<5xf32>
// STAGE1-NEXT:    %[[SB:.*]] = zero.sum_squares %[[RB]] : tensor<1xf32>
// STAGE1-NEXT:    %[[SW:.*]] = zero.sum_squares %[[RW]] : tensor<5xf32>
// STAGE1-NEXT:    %[[SUM:.*]] = onnx.Add %[[SB]], %[[SW]]
// STAGE1-NEXT:    %[[S:.*]] = zero.all_reduce %[[SUM]] "sum" : tensor<f32>
// STAGE1-NEXT:    %[[C:.*]], %[[N:.*]] = zero.clip_coefficient %[[S]]
// STAGE1-NEXT:    zero.metric "grad_norm" %[[N]]
// STAGE1-NEXT:    zero.sgd_update @b, %[[RB]] scale(%[[C]]) {{.*}}sharded
// STAGE1:         zero.sgd_update @w, %[[RW]] scale(%[[C]]) {{.*}}sharded

// Stage 3 with @b kept whole: its all-reduced gradient counts once, @w's
// shard is summed over ranks.
// PERSIST-LABEL: func.func @train_step
// PERSIST:         %[[SB:.*]] = zero.sum_squares %{{.*}} : tensor<2xf32>
// PERSIST-NEXT:    %[[SW:.*]] = zero.sum_squares %{{.*}} : tensor<5xf32>
// PERSIST-NEXT:    %[[SHARDS:.*]] = zero.all_reduce %[[SW]] "sum" : tensor<f32>
// PERSIST-NEXT:    %[[S:.*]] = onnx.Add %[[SB]], %[[SHARDS]]
// PERSIST-NEXT:    %[[C:.*]], %{{.*}} = zero.clip_coefficient %[[S]]
module {
  ml_program.global private mutable @w(dense<1.0> : tensor<2x5xf32>) : tensor<2x5xf32>
  ml_program.global private mutable @b(dense<0.0> : tensor<2xf32>) : tensor<2xf32>
  func.func @train_step(%x: tensor<3x5xf32> {zero.input = "x"}, %y: tensor<3xi64> {zero.input = "y"}) -> tensor<f32> {
    %w = ml_program.global_load @w : tensor<2x5xf32>
    %b = ml_program.global_load @b : tensor<2xf32>
    %0 = onnx.Gemm %x, %w, %b {transB = true} : (tensor<3x5xf32>, tensor<2x5xf32>, tensor<2xf32>) -> tensor<3x2xf32>
    %loss = onnx.SoftmaxCrossEntropyLoss %0, %y : (tensor<3x2xf32>, tensor<3xi64>) -> tensor<f32>
    %seed = onnx.Constant dense<1.0> : tensor<f32>
    %1 = zero.softmax_cross_entropy_loss_grad %seed, %0, %y {reduction = "mean"} : (tensor<f32>, tensor<3x2xf32>, tensor<3xi64>) -> tensor<3x2xf32>
    %dw = onnx.Gemm %1, %x {beta = 0.0 : f32, transA = true} : (tensor<3x2xf32>, tensor<3x5xf32>) -> tensor<2x5xf32>
    %2 = onnx.ReduceSum %1 {axes = array<i64: 0>} : tensor<3x2xf32> -> tensor<1x2xf32>
    %db = onnx.Reshape %2 : tensor<1x2xf32> -> tensor<2xf32>
    zero.sgd_update @b, %db {lr = 0.1 : f32, momentum = 0.0 : f32, weight_decay = 0.0 : f32} : tensor<2xf32>
    zero.sgd_update @w, %dw {lr = 0.1 : f32, momentum = 0.0 : f32, weight_decay = 0.0 : f32} : tensor<2x5xf32>
    return %loss : tensor<f32>
  }
}
