// RUN: zero-opt %s -split-input-file --zero-partition="stage=0 world-size=3" | FileCheck %s --check-prefix=STAGE0
// RUN: zero-opt %s -split-input-file --zero-partition="stage=1 world-size=3" | FileCheck %s --check-prefix=STAGE1
// RUN: zero-opt %s -split-input-file --zero-partition="stage=2 world-size=3" | FileCheck %s --check-prefix=STAGE2
// RUN: zero-opt %s -split-input-file --zero-partition="stage=3 world-size=3" | FileCheck %s --check-prefix=STAGE3
// RUN: zero-opt %s -split-input-file --zero-partition="stage=3 world-size=1" | FileCheck %s --check-prefix=WORLD1
// RUN: zero-opt %s -split-input-file --zero-partition="stage=3 world-size=3 persist-below=16" \
// RUN:   | FileCheck %s --check-prefix=PERSIST

// A linear layer's step. @w has 10 elements: over 3 ranks each shard holds
// ceil(10 / 3) = 4 (the last one padded); @b's 2 elements give 1-element shards.
// Each stage records its placement on every parameter's global first: which
// of weights, gradient and optimizer state are sharded (ZeRO's P_os, P_os+g,
// P_os+g+p).

// Stage 0 (DDP): every gradient is all-reduced ("mean") right after it is
// computed, updates stay unsharded, and the loss is averaged over ranks.
// STAGE0-LABEL: module attributes {zero.stage = 0 : i64, zero.world_size = 3 : i64}
// STAGE0-NEXT:    ml_program.global private mutable @w({{.*}}) : tensor<2x5xf32> {zero.placement = #zero.placement<weights = replicated, grad = replicated, optimizer_state = replicated>}
// STAGE0-NEXT:    ml_program.global private mutable @b({{.*}}) : tensor<2xf32> {zero.placement = #zero.placement<weights = replicated, grad = replicated, optimizer_state = replicated>}
// STAGE0:         func.func @train_step({{.*}}"x"
// The loss is averaged as soon as it exists.
// STAGE0:         %loss = onnx.SoftmaxCrossEntropyLoss
// STAGE0-NEXT:    %[[LOSS:.*]] = zero.all_reduce %loss "mean" : tensor<f32>
// STAGE0:         %[[DW:.*]] = onnx.Gemm %{{.*}}, %{{.*}} {beta = 0.000000e+00 : f32, transA = true}
// STAGE0-NEXT:    %[[RW:.*]] = zero.all_reduce %[[DW]] "mean" : tensor<2x5xf32>
// STAGE0:         %[[DB:.*]] = onnx.Reshape
// STAGE0-NEXT:    %[[RB:.*]] = zero.all_reduce %[[DB]] "mean" : tensor<2xf32>
// STAGE0-NEXT:    zero.sgd_update @b, %[[RB]] {lr = 1.000000e-01 : f32, momentum = 0.000000e+00 : f32, weight_decay = 0.000000e+00 : f32} : tensor<2xf32>
// STAGE0-NEXT:    zero.sgd_update @w, %[[RW]] {lr = 1.000000e-01 : f32, momentum = 0.000000e+00 : f32, weight_decay = 0.000000e+00 : f32} : tensor<2x5xf32>
// STAGE0-NEXT:    return %[[LOSS]] : tensor<f32>
// STAGE0-NOT:     zero.reduce_scatter
// STAGE0-NOT:     zero.load_shard

// Stage 1: gradients stay whole until the step's end; each is reduce-scattered
// right before its sharded update, and the updated shards are all-gathered
// back into the parameter.
// STAGE1-LABEL: module attributes {zero.stage = 1 : i64, zero.world_size = 3 : i64}
// STAGE1-NEXT:    ml_program.global private mutable @w({{.*}}) : tensor<2x5xf32> {zero.placement = #zero.placement<weights = replicated, grad = replicated, optimizer_state = sharded<3>>}
// STAGE1-NEXT:    ml_program.global private mutable @b({{.*}}) : tensor<2xf32> {zero.placement = #zero.placement<weights = replicated, grad = replicated, optimizer_state = sharded<3>>}
// STAGE1:         func.func @train_step({{.*}}"x"
// The loss is averaged as soon as it exists.
// STAGE1:         %loss = onnx.SoftmaxCrossEntropyLoss
// STAGE1-NEXT:    %[[LOSS:.*]] = zero.all_reduce %loss "mean" : tensor<f32>
// STAGE1:         %[[DW:.*]] = onnx.Gemm %{{.*}}, %{{.*}} {beta = 0.000000e+00 : f32, transA = true}
// STAGE1-NEXT:    onnx.ReduceSum
// STAGE1-NEXT:    %[[DB:.*]] = onnx.Reshape
// STAGE1-NEXT:    %[[SB:.*]] = zero.reduce_scatter %[[DB]] "mean" {world_size = 3 : i64} : tensor<2xf32> -> tensor<1xf32>
// STAGE1-NEXT:    zero.sgd_update @b, %[[SB]] {{{.*}}sharded{{.*}}} : tensor<1xf32>
// STAGE1-NEXT:    %[[LB:.*]] = zero.load_shard @b : tensor<1xf32>
// STAGE1-NEXT:    %[[GB:.*]] = zero.all_gather %[[LB]] {world_size = 3 : i64} : tensor<1xf32> -> tensor<2xf32>
// STAGE1-NEXT:    ml_program.global_store @b = %[[GB]] : tensor<2xf32>
// STAGE1-NEXT:    %[[SW:.*]] = zero.reduce_scatter %[[DW]] "mean" {world_size = 3 : i64} : tensor<2x5xf32> -> tensor<4xf32>
// STAGE1-NEXT:    zero.sgd_update @w, %[[SW]] {{{.*}}sharded{{.*}}} : tensor<4xf32>
// STAGE1-NEXT:    %[[LW:.*]] = zero.load_shard @w : tensor<4xf32>
// STAGE1-NEXT:    %[[GW:.*]] = zero.all_gather %[[LW]] {world_size = 3 : i64} : tensor<4xf32> -> tensor<2x5xf32>
// STAGE1-NEXT:    ml_program.global_store @w = %[[GW]] : tensor<2x5xf32>
// STAGE1-NEXT:    return %[[LOSS]]

// Stage 2: as stage 1, but each gradient is reduce-scattered as soon as it
// is complete.
// STAGE2-LABEL: module attributes {zero.stage = 2 : i64, zero.world_size = 3 : i64}
// STAGE2-NEXT:    ml_program.global private mutable @w({{.*}}) : tensor<2x5xf32> {zero.placement = #zero.placement<weights = replicated, grad = sharded<3>, optimizer_state = sharded<3>>}
// STAGE2-NEXT:    ml_program.global private mutable @b({{.*}}) : tensor<2xf32> {zero.placement = #zero.placement<weights = replicated, grad = sharded<3>, optimizer_state = sharded<3>>}
// STAGE2:         func.func @train_step({{.*}}"x"
// The loss is averaged as soon as it exists.
// STAGE2:         %loss = onnx.SoftmaxCrossEntropyLoss
// STAGE2-NEXT:    %[[LOSS:.*]] = zero.all_reduce %loss "mean" : tensor<f32>
// STAGE2:         %[[DW:.*]] = onnx.Gemm %{{.*}}, %{{.*}} {beta = 0.000000e+00 : f32, transA = true}
// STAGE2-NEXT:    %[[SW:.*]] = zero.reduce_scatter %[[DW]] "mean" {world_size = 3 : i64} : tensor<2x5xf32> -> tensor<4xf32>
// STAGE2-NEXT:    onnx.ReduceSum
// STAGE2-NEXT:    %[[DB:.*]] = onnx.Reshape
// STAGE2-NEXT:    %[[SB:.*]] = zero.reduce_scatter %[[DB]] "mean" {world_size = 3 : i64} : tensor<2xf32> -> tensor<1xf32>
// STAGE2-NEXT:    zero.sgd_update @b, %[[SB]] {{{.*}}sharded{{.*}}} : tensor<1xf32>
// STAGE2-NEXT:    zero.load_shard @b
// STAGE2-NEXT:    zero.all_gather
// STAGE2-NEXT:    ml_program.global_store @b
// STAGE2-NEXT:    zero.sgd_update @w, %[[SW]] {{{.*}}sharded{{.*}}} : tensor<4xf32>
// STAGE2-NEXT:    zero.load_shard @w
// STAGE2-NEXT:    zero.all_gather
// STAGE2-NEXT:    ml_program.global_store @w

// Stage 3: parameters exist only as shards. Each read is an all-gather just
// before its first use; nothing is gathered after the update or stored.
// STAGE3-LABEL: module attributes {zero.stage = 3 : i64, zero.world_size = 3 : i64}
// STAGE3-NEXT:    ml_program.global private mutable @w({{.*}}) : tensor<2x5xf32> {zero.placement = #zero.placement<weights = sharded<3>, grad = sharded<3>, optimizer_state = sharded<3>>}
// STAGE3-NEXT:    ml_program.global private mutable @b({{.*}}) : tensor<2xf32> {zero.placement = #zero.placement<weights = sharded<3>, grad = sharded<3>, optimizer_state = sharded<3>>}
// STAGE3:         func.func @train_step(%[[X:.*]]: tensor<3x5xf32> {zero.input = "x"}
// STAGE3-NEXT:    %[[SW:.*]] = zero.load_shard @w : tensor<4xf32>
// STAGE3-NEXT:    %[[W:.*]] = zero.all_gather %[[SW]] {world_size = 3 : i64} : tensor<4xf32> -> tensor<2x5xf32>
// STAGE3-NEXT:    %[[SB:.*]] = zero.load_shard @b : tensor<1xf32>
// STAGE3-NEXT:    %[[B:.*]] = zero.all_gather %[[SB]] {world_size = 3 : i64} : tensor<1xf32> -> tensor<2xf32>
// STAGE3-NEXT:    onnx.Gemm %[[X]], %[[W]], %[[B]] {transB = true}
// STAGE3-NEXT:    %loss = onnx.SoftmaxCrossEntropyLoss
// STAGE3-NEXT:    zero.all_reduce %loss "mean" : tensor<f32>
// STAGE3-NOT:     ml_program.global_load
// STAGE3:         %[[DW:.*]] = onnx.Gemm %{{.*}}, %[[X]] {beta = 0.000000e+00 : f32, transA = true}
// STAGE3-NEXT:    %[[RW:.*]] = zero.reduce_scatter %[[DW]] "mean" {world_size = 3 : i64} : tensor<2x5xf32> -> tensor<4xf32>
// STAGE3:         zero.sgd_update @b, %{{.*}} {{{.*}}sharded{{.*}}} : tensor<1xf32>
// STAGE3-NEXT:    zero.sgd_update @w, %[[RW]] {{{.*}}sharded{{.*}}} : tensor<4xf32>
// STAGE3-NOT:     ml_program.global_store

// One rank: shards are the whole (flattened) parameter.
// WORLD1-LABEL: module attributes {zero.stage = 3 : i64, zero.world_size = 1 : i64}
// WORLD1-NEXT:    ml_program.global private mutable @w({{.*}}) : tensor<2x5xf32> {zero.placement = #zero.placement<weights = sharded<1>, grad = sharded<1>, optimizer_state = sharded<1>>}
// WORLD1-NEXT:    ml_program.global private mutable @b({{.*}}) : tensor<2xf32> {zero.placement = #zero.placement<weights = sharded<1>, grad = sharded<1>, optimizer_state = sharded<1>>}
// WORLD1:         zero.load_shard @w : tensor<10xf32>
// WORLD1:         zero.reduce_scatter %{{.*}} "mean" {world_size = 1 : i64} : tensor<2x5xf32> -> tensor<10xf32>

// Stage 3 with a persistence threshold of 16 bytes: @b (8 bytes) stays whole
// on every rank with its gradient and optimizer state, as at stage 0: a plain
// read, an all-reduce, an unsharded update, no gather. @w (40 bytes) is
// sharded as at stage 3.
// PERSIST-LABEL: module attributes {zero.stage = 3 : i64, zero.world_size = 3 : i64}
// PERSIST-NEXT:    ml_program.global private mutable @w({{.*}}) : tensor<2x5xf32> {zero.placement = #zero.placement<weights = sharded<3>, grad = sharded<3>, optimizer_state = sharded<3>>}
// PERSIST-NEXT:    ml_program.global private mutable @b({{.*}}) : tensor<2xf32> {zero.placement = #zero.placement<weights = replicated, grad = replicated, optimizer_state = replicated>}
// PERSIST-NEXT:    func.func @train_step(%[[X:.*]]: tensor<3x5xf32> {zero.input = "x"}
// PERSIST-NEXT:    %[[B:.*]] = ml_program.global_load @b : tensor<2xf32>
// PERSIST-NEXT:    %[[SW:.*]] = zero.load_shard @w : tensor<4xf32>
// PERSIST-NEXT:    %[[W:.*]] = zero.all_gather %[[SW]] {world_size = 3 : i64} : tensor<4xf32> -> tensor<2x5xf32>
// PERSIST-NEXT:    onnx.Gemm %[[X]], %[[W]], %[[B]] {transB = true}
// PERSIST-NOT:     zero.load_shard @b
// PERSIST:         %[[DW:.*]] = onnx.Gemm %{{.*}}, %[[X]] {beta = 0.000000e+00 : f32, transA = true}
// PERSIST-NEXT:    %[[RW:.*]] = zero.reduce_scatter %[[DW]] "mean" {world_size = 3 : i64} : tensor<2x5xf32> -> tensor<4xf32>
// PERSIST:         %[[DB:.*]] = onnx.Reshape
// PERSIST-NEXT:    %[[RB:.*]] = zero.all_reduce %[[DB]] "mean" : tensor<2xf32>
// PERSIST-NEXT:    zero.sgd_update @b, %[[RB]] {lr = 1.000000e-01 : f32, momentum = 0.000000e+00 : f32, weight_decay = 0.000000e+00 : f32} : tensor<2xf32>
// PERSIST-NEXT:    zero.sgd_update @w, %[[RW]] {{{.*}}sharded{{.*}}} : tensor<4xf32>
// PERSIST-NEXT:    return
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

// -----

// A parameter the backward pass reads again (as zero-build-train-step emits
// it). Stage 3 gathers it a second time just before its backward use, so the
// forward copy need not live across the step.

// STAGE3-LABEL: module attributes {zero.stage = 3 : i64, zero.world_size = 3 : i64}
// STAGE3:         func.func @train_step({{.*}}"reread.x"
// STAGE3-NEXT:    %[[S1:.*]] = zero.load_shard @v : tensor<2xf32>
// STAGE3-NEXT:    %[[V1:.*]] = zero.all_gather %[[S1]] {world_size = 3 : i64} : tensor<2xf32> -> tensor<4xf32>
// STAGE3-NEXT:    %[[Y:.*]] = onnx.Mul %{{.*}}, %[[V1]]
// STAGE3-NEXT:    onnx.Mul %[[Y]], %[[Y]]
// STAGE3-NEXT:    onnx.ReduceSum
// STAGE3-NEXT:    zero.all_reduce
// STAGE3-NEXT:    onnx.Constant
// STAGE3-NEXT:    onnx.Reshape
// STAGE3-NEXT:    %[[DY:.*]] = onnx.Expand
// STAGE3-NEXT:    %[[S2:.*]] = zero.load_shard @v : tensor<2xf32>
// STAGE3-NEXT:    %[[V2:.*]] = zero.all_gather %[[S2]] {world_size = 3 : i64} : tensor<2xf32> -> tensor<4xf32>
// STAGE3-NEXT:    onnx.Mul %[[DY]], %[[V2]]

// The threshold is strict: @v's 16 bytes are not below 16 bytes.
// PERSIST-LABEL: module attributes {zero.stage = 3 : i64, zero.world_size = 3 : i64}
// PERSIST-NEXT:    ml_program.global private mutable @v({{.*}}) : tensor<4xf32> {zero.placement = #zero.placement<weights = sharded<3>, grad = sharded<3>, optimizer_state = sharded<3>>}
// PERSIST-COUNT-2: zero.all_gather

// Stages 0-2 keep the re-read as a plain global_load.
// STAGE2-LABEL: module attributes {zero.stage = 2 : i64, zero.world_size = 3 : i64}
// STAGE2:         func.func @train_step({{.*}}"reread.x"
// STAGE2-COUNT-2: ml_program.global_load @v : tensor<4xf32>
module {
  ml_program.global private mutable @v(dense<1.0> : tensor<4xf32>) : tensor<4xf32>
  func.func @train_step(%x: tensor<4xf32> {zero.input = "reread.x"}) -> tensor<f32> {
    %v = ml_program.global_load @v : tensor<4xf32>
    %y = onnx.Mul %x, %v : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    %sq = onnx.Mul %y, %y : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    %loss = onnx.ReduceSum %sq {axes = array<i64>, keepdims = false} : tensor<4xf32> -> tensor<f32>
    %seed = onnx.Constant dense<1.0> : tensor<f32>
    %0 = onnx.Reshape %seed : tensor<f32> -> tensor<1xf32>
    %dsq = onnx.Expand %0 : tensor<1xf32> -> tensor<4xf32>
    %v2 = ml_program.global_load @v : tensor<4xf32>
    %1 = onnx.Mul %dsq, %v2 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    %dv = onnx.Mul %1, %x : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    zero.sgd_update @v, %dv {lr = 0.1 : f32, momentum = 0.0 : f32, weight_decay = 0.0 : f32} : tensor<4xf32>
    return %loss : tensor<f32>
  }
}

// -----

// A placement already on a global (set by a policy pass run before
// zero-partition) is kept: @w stays replicated at stage 3 and is treated as
// at stage 0, while @u gets the stage's placement.
// STAGE3-LABEL: module attributes {zero.stage = 3 : i64, zero.world_size = 3 : i64}
// STAGE3-NEXT:    ml_program.global private mutable @w({{.*}}) : tensor<4xf32> {zero.placement = #zero.placement<weights = replicated, grad = replicated, optimizer_state = replicated>}
// STAGE3-NEXT:    ml_program.global private mutable @u({{.*}}) : tensor<4xf32> {zero.placement = #zero.placement<weights = sharded<3>, grad = sharded<3>, optimizer_state = sharded<3>>}
// STAGE3-NEXT:    func.func @train_step(%[[G:.*]]: tensor<4xf32> {zero.input = "preset.g"}
// STAGE3-NEXT:    %[[RU:.*]] = zero.reduce_scatter %[[G]] "mean" {world_size = 3 : i64} : tensor<4xf32> -> tensor<2xf32>
// STAGE3-NEXT:    %[[RW:.*]] = zero.all_reduce %[[G]] "mean" : tensor<4xf32>
// STAGE3-NEXT:    %[[W:.*]] = ml_program.global_load @w : tensor<4xf32>
// STAGE3-NEXT:    %[[SU:.*]] = zero.load_shard @u : tensor<2xf32>
// STAGE3-NEXT:    %[[U:.*]] = zero.all_gather %[[SU]] {world_size = 3 : i64} : tensor<2xf32> -> tensor<4xf32>
// STAGE3-NEXT:    onnx.Mul %[[W]], %[[U]]
// STAGE3:         zero.sgd_update @w, %[[RW]] {lr = 1.000000e-01 : f32, momentum = 0.000000e+00 : f32, weight_decay = 0.000000e+00 : f32} : tensor<4xf32>
// STAGE3-NEXT:    zero.sgd_update @u, %[[RU]] {{{.*}}sharded{{.*}}} : tensor<2xf32>
// STAGE3-NOT:     ml_program.global_store
module {
  ml_program.global private mutable @w(dense<1.0> : tensor<4xf32>) : tensor<4xf32> {zero.placement = #zero.placement<weights = replicated, grad = replicated, optimizer_state = replicated>}
  ml_program.global private mutable @u(dense<1.0> : tensor<4xf32>) : tensor<4xf32>
  func.func @train_step(%g: tensor<4xf32> {zero.input = "preset.g"}) -> tensor<f32> {
    %w = ml_program.global_load @w : tensor<4xf32>
    %u = ml_program.global_load @u : tensor<4xf32>
    %y = onnx.Mul %w, %u : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    %loss = onnx.ReduceSum %y {axes = array<i64>, keepdims = false} : tensor<4xf32> -> tensor<f32>
    zero.sgd_update @w, %g {lr = 0.1 : f32, momentum = 0.0 : f32, weight_decay = 0.0 : f32} : tensor<4xf32>
    zero.sgd_update @u, %g {lr = 0.1 : f32, momentum = 0.0 : f32, weight_decay = 0.0 : f32} : tensor<4xf32>
    return %loss : tensor<f32>
  }
}

// -----

// The evaluation program (zero-build-eval-step) reads the weights the step
// trains: at stage 3 it gathers each sharded one before its first use, as
// the step does, and at every stage its loss is averaged over the ranks.
// STAGE0-LABEL: func.func @eval_step({{.*}}"eval.x"
// STAGE0:         %[[L:.*]] = onnx.ReduceSum
// STAGE0-NEXT:    %[[M:.*]] = zero.all_reduce %[[L]] "mean" : tensor<f32>
// STAGE0-NEXT:    return %[[M]]
// STAGE0-NOT:     zero.all_gather
// STAGE3-LABEL: func.func @eval_step({{.*}}"eval.x"
// STAGE3-NEXT:    %[[S:.*]] = zero.load_shard @v : tensor<2xf32>
// STAGE3-NEXT:    %[[V:.*]] = zero.all_gather %[[S]] {world_size = 3 : i64} : tensor<2xf32> -> tensor<4xf32>
// STAGE3-NEXT:    %[[Y:.*]] = onnx.Mul %{{.*}}, %[[V]]
// STAGE3-NEXT:    %[[L:.*]] = onnx.ReduceSum %[[Y]]
// STAGE3-NEXT:    %[[M:.*]] = zero.all_reduce %[[L]] "mean" : tensor<f32>
// STAGE3-NEXT:    return %[[M]]
module {
  ml_program.global private mutable @v(dense<1.0> : tensor<4xf32>) : tensor<4xf32>
  func.func @train_step(%x: tensor<4xf32> {zero.input = "eval.x"}) -> tensor<f32> {
    %v = ml_program.global_load @v : tensor<4xf32>
    %y = onnx.Mul %x, %v : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    %loss = onnx.ReduceSum %y {axes = array<i64>, keepdims = false} : tensor<4xf32> -> tensor<f32>
    zero.sgd_update @v, %x {lr = 0.1 : f32, momentum = 0.0 : f32, weight_decay = 0.0 : f32} : tensor<4xf32>
    return %loss : tensor<f32>
  }
  func.func @eval_step(%x: tensor<4xf32> {zero.input = "eval.x"}) -> tensor<f32> {
    %v = ml_program.global_load @v : tensor<4xf32>
    %y = onnx.Mul %x, %v : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    %loss = onnx.ReduceSum %y {axes = array<i64>, keepdims = false} : tensor<4xf32> -> tensor<f32>
    return %loss : tensor<f32>
  }
}
