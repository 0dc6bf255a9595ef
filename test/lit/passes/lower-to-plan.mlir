// zero-lower-to-plan on a linear layer's step, partitioned for three ranks.
// @w has 10 elements (shards of 4, padded to 12); @b has 2 (shards of 1).

// RUN: zero-opt %s --zero-partition="stage=0 world-size=3" --zero-lower-to-plan | FileCheck %s --check-prefix=STAGE0
// RUN: zero-opt %s --zero-partition="stage=1 world-size=3" --zero-lower-to-plan="backend=cuda" | FileCheck %s --check-prefix=STAGE1
// RUN: zero-opt %s --zero-partition="stage=3 world-size=3" --zero-lower-to-plan | FileCheck %s --check-prefix=STAGE3
// RUN: zero-opt %s --zero-partition="stage=3 world-size=3" --zero-lower-to-plan="omit-weights=true" | FileCheck %s --check-prefix=OMIT
// RUN: zero-opt %s --zero-partition="stage=3 world-size=3 persist-below=16" --zero-lower-to-plan \
// RUN:   | FileCheck %s --check-prefix=PERSIST

// Without weights the plan says so and has no initializer for a parameter;
// constants keep theirs.
// OMIT:         plan.program attributes {backend = "cpu", weights_omitted, world_size = 3 : ui32, zero_stage = 3 : ui32} {
// OMIT-NOT:       plan.init @w
// OMIT-NOT:       plan.init @b
// OMIT:           plan.init @{{const[0-9]+}}

// The plan replaces the tensor program; offsets are left to zero-plan-memory.
// STAGE0-LABEL: module attributes {zero.stage = 0 : i64, zero.world_size = 3 : i64} {
// STAGE0-NEXT:    plan.program attributes {backend = "cpu", world_size = 3 : ui32, zero_stage = 0 : ui32} {
// STAGE0-NEXT:      plan.buffer @mem.w "parameter" {bytes = 40 : i64, persistent}
// STAGE0-NEXT:      plan.value @w : tensor<2x5xf32> in @mem.w
// STAGE0-NEXT:      plan.init @w {data = dense<1.000000e+00> : tensor<2x5xf32>}
// STAGE0-NEXT:      plan.parameter "w" : tensor<2x5xf32> in @w {shard_numel = 4 : i64, zero.placement = #zero.placement<weights = replicated, grad = replicated, optimizer_state = replicated>}
// STAGE0:           plan.buffer @mem.x "input" {bytes = 60 : i64, persistent}
// STAGE0-NEXT:      plan.value @x : tensor<3x5xf32> in @mem.x
// STAGE0-NEXT:      plan.input "x" @x
// STAGE0:           plan.instr "Gemm" [@x, @w, @b] -> [@[[H:v[0-9]+]]] {attrs = {alpha = 1.000000e+00 : f32, beta = 1.000000e+00 : f32, trans_a = false, trans_b = true}}
// The loss outlives the step: its buffer is persistent.
// STAGE0:           plan.buffer @mem.[[LOSS:v[0-9]+]] "activation" {bytes = 4 : i64, persistent}
// STAGE0:           plan.instr "SoftmaxCrossEntropyLoss" [@[[H]], @y] -> [@[[LOSS]]] {attrs = {reduction = "mean"}}
// The loss is averaged in place as soon as it exists.
// STAGE0-NEXT:      plan.instr "AllReduce" [@[[LOSS]]] -> [@[[LOSS]]] {attrs = {reduction = "mean"}}
// STAGE0:           plan.buffer @mem.[[SEED:const[0-9]+]] "constant" {bytes = 4 : i64, persistent}
// STAGE0:           plan.init @[[SEED]] {data = dense<1.000000e+00> : tensor<f32>}
// A dying gradient is all-reduced in place.
// STAGE0:           plan.buffer @mem.[[DW:v[0-9]+]] "gradient" {bytes = 40 : i64}
// STAGE0:           plan.instr "Gemm" [@{{.*}}, @x] -> [@[[DW]]]
// STAGE0-NEXT:      plan.instr "AllReduce" [@[[DW]]] -> [@[[DW]]] {attrs = {reduction = "mean"}}
// Reshape is a view of its input's buffer, not an instruction.
// STAGE0:           plan.value @[[DB:v[0-9]+]] : tensor<1x2xf32> in @mem.[[DB]]
// STAGE0-NEXT:      plan.instr "ReduceSum" [@{{.*}}] -> [@[[DB]]] {attrs = {axes = array<i64: 0>, keepdims = true}}
// STAGE0-NEXT:      plan.value @[[DB]].view : tensor<2xf32> in @mem.[[DB]]
// STAGE0-NEXT:      plan.instr "AllReduce" [@[[DB]].view] -> [@[[DB]].view] {attrs = {reduction = "mean"}}
// STAGE0-NEXT:      plan.instr "SgdUpdate" [@b, @[[DB]].view] -> [] {attrs = {lr = 1.000000e-01 : f32, momentum = 0.000000e+00 : f32, weight_decay = 0.000000e+00 : f32}}
// STAGE0-NEXT:      plan.instr "SgdUpdate" [@w, @[[DW]]] -> []
// STAGE0-NEXT:      plan.loss @[[LOSS]]
// STAGE0-NEXT:    }
// STAGE0-NEXT:  }

// Stage 1: the parameter buffer holds the padded flat tensor; the shard is a
// view at rank * rank_stride. The gradient is reduce-scattered in place into
// its own shard after zeroing the padding, and the updated shard is gathered
// straight into the parameter.
// STAGE1-LABEL: module attributes {zero.stage = 1 : i64, zero.world_size = 3 : i64} {
// STAGE1-NEXT:    plan.program attributes {backend = "cuda", world_size = 3 : ui32, zero_stage = 1 : ui32} {
// STAGE1-NEXT:      plan.buffer @mem.w "parameter" {bytes = 48 : i64, persistent}
// STAGE1-NEXT:      plan.value @w : tensor<2x5xf32> in @mem.w
// STAGE1-NEXT:      plan.value @w.flat : tensor<12xf32> in @mem.w
// STAGE1-NEXT:      plan.value @w.shard : tensor<4xf32> in @mem.w {rank_stride = 16 : i64}
// STAGE1-NEXT:      plan.init @w {data = dense<1.000000e+00> : tensor<2x5xf32>}
// STAGE1-NEXT:      plan.parameter "w" : tensor<2x5xf32> in @w {shard_numel = 4 : i64, state_sharded, zero.placement = #zero.placement<weights = replicated, grad = replicated, optimizer_state = sharded<3>>}
// STAGE1:           plan.buffer @mem.[[DW:v[0-9]+]] "gradient" {bytes = 48 : i64}
// STAGE1-NEXT:      plan.value @[[DW]] : tensor<2x5xf32> in @mem.[[DW]]
// STAGE1:           plan.instr "AllGather" [@b.shard] -> [@b.flat]
// STAGE1-NEXT:      plan.value @[[DW]].pad : tensor<2xf32> in @mem.[[DW]] {byte_offset = 40 : i64}
// STAGE1-NEXT:      plan.instr "Fill" [] -> [@[[DW]].pad] {attrs = {value = 0.000000e+00 : f32}}
// STAGE1-NEXT:      plan.value @[[DW]].flat : tensor<12xf32> in @mem.[[DW]]
// STAGE1-NEXT:      plan.value @[[DW]].shard : tensor<4xf32> in @mem.[[DW]] {rank_stride = 16 : i64}
// STAGE1-NEXT:      plan.instr "ReduceScatter" [@[[DW]].flat] -> [@[[DW]].shard] {attrs = {reduction = "mean"}}
// STAGE1-NEXT:      plan.instr "SgdUpdate" [@w.shard, @[[DW]].shard] -> []
// STAGE1-NEXT:      plan.instr "AllGather" [@w.shard] -> [@w.flat]
// STAGE1-NEXT:      plan.loss

// Stage 3: each rank keeps and initializes only its shard; reads gather into
// a communication buffer whose full-shape value is a view of it.
// STAGE3-LABEL: module attributes {zero.stage = 3 : i64, zero.world_size = 3 : i64} {
// STAGE3:           plan.buffer @mem.w "parameter" {bytes = 16 : i64, persistent}
// STAGE3-NEXT:      plan.value @w.shard : tensor<4xf32> in @mem.w
// STAGE3-NEXT:      plan.init @w.shard {data = dense<1.000000e+00> : tensor<2x5xf32>, rank = 0 : si32}
// STAGE3-NEXT:      plan.init @w.shard {data = dense<1.000000e+00> : tensor<2x5xf32>, data_offset = 4 : i64, rank = 1 : si32}
// STAGE3-NEXT:      plan.init @w.shard {data = dense<1.000000e+00> : tensor<2x5xf32>, data_offset = 8 : i64, rank = 2 : si32}
// STAGE3-NEXT:      plan.parameter "w" : tensor<2x5xf32> in @w.shard {shard_numel = 4 : i64, sharded, state_sharded, zero.placement = #zero.placement<weights = sharded<3>, grad = sharded<3>, optimizer_state = sharded<3>>}
// STAGE3-NOT:       plan.value @w :
// STAGE3:           plan.buffer @mem.[[G:v[0-9]+]] "communication" {bytes = 48 : i64}
// STAGE3-NEXT:      plan.value @[[G]].flat : tensor<12xf32> in @mem.[[G]]
// STAGE3-NEXT:      plan.instr "AllGather" [@w.shard] -> [@[[G]].flat]
// STAGE3-NEXT:      plan.value @[[G]] : tensor<2x5xf32> in @mem.[[G]]
// STAGE3:           plan.instr "Gemm" [@x, @[[G]], @{{.*}}]
// Stage 3 reduce-scatters out of place into a gradient shard.
// STAGE3:           plan.instr "ReduceScatter" [@[[DW:v[0-9]+]].flat] -> [@[[SW:v[0-9]+]]] {attrs = {reduction = "mean"}}
// STAGE3:           plan.instr "SgdUpdate" [@w.shard, @[[SW]]] -> []
// STAGE3-NOT:       plan.instr "AllGather"
// STAGE3:           plan.loss
// Stage 3 with @b persistent (8 bytes, below 16): @w is stored as shards and
// gathered for its read; @b is stored whole and initialized once, read in
// place, all-reduced and updated whole, as at stage 0. The plan.parameter
// carries each placement for the report.
// PERSIST-LABEL: module attributes {zero.stage = 3 : i64, zero.world_size = 3 : i64} {
// PERSIST:           plan.parameter "w" : tensor<2x5xf32> in @w.shard {shard_numel = 4 : i64, sharded, state_sharded, zero.placement = #zero.placement<weights = sharded<3>, grad = sharded<3>, optimizer_state = sharded<3>>}
// PERSIST-NEXT:      plan.buffer @mem.b "parameter" {bytes = 8 : i64, persistent}
// PERSIST-NEXT:      plan.value @b : tensor<2xf32> in @mem.b
// PERSIST-NEXT:      plan.init @b {data = dense<0.000000e+00> : tensor<2xf32>}
// PERSIST-NEXT:      plan.parameter "b" : tensor<2xf32> in @b {shard_numel = 1 : i64, zero.placement = #zero.placement<weights = replicated, grad = replicated, optimizer_state = replicated>}
// PERSIST-NOT:       plan.value @b.shard
// PERSIST:           plan.instr "AllGather" [@w.shard] -> [@[[G:v[0-9]+]].flat]
// PERSIST-NOT:       plan.instr "AllGather"
// PERSIST:           plan.instr "Gemm" [@x, @[[G]], @b]
// PERSIST:           plan.instr "ReduceScatter" [@{{.*}}] -> [@[[SW:v[0-9]+]]]
// PERSIST:           plan.instr "AllReduce" [@[[DB:v[0-9]+]].view] -> [@[[DB]].view]
// PERSIST-NEXT:      plan.instr "SgdUpdate" [@b, @[[DB]].view] -> []
// PERSIST-NEXT:      plan.instr "SgdUpdate" [@w.shard, @[[SW]]] -> []
// PERSIST-NEXT:      plan.loss
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

