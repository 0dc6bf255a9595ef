// RUN: zero-opt %s -split-input-file -verify-diagnostics

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 4 : i64}
  plan.value @a : tensor<f32> in @mem.a
  // expected-error @+1 {{'plan.instr' op unknown opcode 'Hardmax'}}
  plan.instr "Hardmax" [@a] -> [@a]
}

// -----

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 4 : i64}
  plan.value @a : tensor<f32> in @mem.a
  // expected-error @+1 {{'plan.instr' op names no value @b}}
  plan.instr "Relu" [@a] -> [@b]
}

// -----

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  // expected-error @+1 {{'plan.buffer' op unknown kind 'scratch'}}
  plan.buffer @mem.a "scratch" {bytes = 4 : i64}
}

// -----

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 8 : i64}
  // expected-error @+1 {{'plan.value' op view of 12 bytes exceeds buffer @mem.a of 8 bytes}}
  plan.value @a : tensor<3xf32> in @mem.a
}

// -----

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 8 : i64}
  // expected-error @+1 {{'plan.value' op view of 12 bytes exceeds buffer @mem.a of 8 bytes}}
  plan.value @a : tensor<1xf32> in @mem.a {byte_offset = 8 : i64}
}

// -----

// The last rank's shard ends at byte_offset + rank_stride * 2 + 8 = 24.
plan.program attributes {backend = "cpu", world_size = 3 : ui32, zero_stage = 1 : ui32} {
  plan.buffer @mem.a "gradient" {bytes = 20 : i64}
  // expected-error @+1 {{'plan.value' op view of 24 bytes exceeds buffer @mem.a of 20 bytes}}
  plan.value @a.shard : tensor<2xf32> in @mem.a {rank_stride = 8 : i64}
}

// -----

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  // expected-error @+1 {{'plan.value' op names no buffer @mem.missing}}
  plan.value @a : tensor<f32> in @mem.missing
}

// -----

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 8 : i64}
  // expected-error @+1 {{'plan.value' op element type must be f32 or i64}}
  plan.value @a : tensor<2xi32> in @mem.a
}

// -----

// expected-error @+1 {{'plan.program' op ZeRO stage must be 0, 1, 2 or 3}}
plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 4 : ui32} {
}

// -----

// expected-error @+1 {{'plan.program' op world size must be at least 1}}
plan.program attributes {backend = "cpu", world_size = 0 : ui32, zero_stage = 0 : ui32} {
}

// -----

// expected-error @+1 {{'plan.program' op unknown backend 'tpu'}}
plan.program attributes {backend = "tpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
}

// -----

// Instructions are checked against their opcode's descriptor (zero/plan_ops.h).
plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 4 : i64}
  plan.value @a : tensor<f32> in @mem.a
  // expected-error @+1 {{'plan.instr' op Add takes 2 inputs, got 4}}
  plan.instr "Add" [@a, @a, @a, @a] -> [@a, @a]
}

// -----

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 4 : i64}
  plan.value @a : tensor<f32> in @mem.a
  // expected-error @+1 {{'plan.instr' op Add takes 1 outputs, got 2}}
  plan.instr "Add" [@a, @a] -> [@a, @a]
}

// -----

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 16 : i64}
  plan.value @a : tensor<2x2xf32> in @mem.a
  // expected-error @+1 {{'plan.instr' op attribute 'alfa' is not an attribute of Gemm}}
  plan.instr "Gemm" [@a, @a] -> [@a] {attrs = {trans_a = false, trans_b = false, alfa = 1.0 : f32, beta = 1.0 : f32}}
}

// -----

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 16 : i64}
  plan.value @a : tensor<2x2xf32> in @mem.a
  // expected-error @+1 {{'plan.instr' op Gemm needs attribute 'alpha' (an f32)}}
  plan.instr "Gemm" [@a, @a] -> [@a] {attrs = {trans_a = false, trans_b = false, beta = 1.0 : f32}}
}

// -----

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 16 : i64}
  plan.value @a : tensor<2x2xf32> in @mem.a
  // expected-error @+1 {{'plan.instr' op attribute 'alpha' of Gemm must be an f32, got 1 : i64}}
  plan.instr "Gemm" [@a, @a] -> [@a] {attrs = {trans_a = false, trans_b = false, alpha = 1 : i64, beta = 1.0 : f32}}
}

// -----

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 4 : i64}
  plan.value @a : tensor<f32> in @mem.a
  // expected-error @+1 {{'plan.instr' op attribute 'reduction' of AllReduce must be "sum", "mean" or "none", got "avg"}}
  plan.instr "AllReduce" [@a] -> [@a] {attrs = {reduction = "avg"}}
}

// -----

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 4 : i64}
  plan.value @a : tensor<f32> in @mem.a
  // expected-error @+1 {{'plan.instr' op attribute 'slot' of AllReduce must be an integer in [0, 2^32), got -1 : i64}}
  plan.instr "AllReduce" [@a] -> [@a] {attrs = {reduction = "sum", slot = -1 : i64}}
}

// -----

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 4 : i64}
  plan.value @a : tensor<f32> in @mem.a
  // expected-error @+1 {{'plan.instr' op attribute 'epsilon' is not an attribute of LayerNormalizationGrad}}
  plan.instr "LayerNormalizationGrad" [@a, @a, @a, @a, @a] -> [@a] {attrs = {axis = 0 : i64, epsilon = 1.0e-05 : f32}}
}

// -----

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 4 : i64}
  plan.value @a : tensor<f32> in @mem.a
  // Only max pools are dilated.
  // expected-error @+1 {{'plan.instr' op attribute 'dilations' is not an attribute of AveragePool}}
  plan.instr "AveragePool" [@a] -> [@a] {attrs = {dilations = array<i64: 2>, kernel_shape = array<i64: 1>, pads = array<i64: 0, 0>, strides = array<i64: 1>}}
}

// -----

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 4 : i64}
  plan.value @a : tensor<f32> in @mem.a
  // expected-error @+1 {{'plan.instr' op attribute 'axis' is not an attribute of Relu}}
  plan.instr "Relu" [@a] -> [@a] {attrs = {axis = 0 : i64}}
}

// -----

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 4 : i64}
  plan.value @a : tensor<f32> in @mem.a
  // expected-error @+1 {{'plan.instr' op Wait completes an asynchronous collective: its slot must be positive}}
  plan.instr "Wait" [@a, @a] -> [] {attrs = {slot = 0 : i64}}
}

// -----

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 4 : i64}
  plan.value @a : tensor<f32> in @mem.a
  // expected-error @+1 {{'plan.instr' op HardSigmoid needs attribute 'beta' (an f32)}}
  plan.instr "HardSigmoid" [@a] -> [@a] {attrs = {alpha = 0.2 : f32}}
}

// -----

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 4 : i64}
  plan.value @a : tensor<f32> in @mem.a
  // Elu has one attribute; ElementwiseAttrs' beta means nothing to it.
  // expected-error @+1 {{'plan.instr' op attribute 'beta' is not an attribute of Elu}}
  plan.instr "Elu" [@a] -> [@a] {attrs = {alpha = 1.0 : f32, beta = 0.5 : f32}}
}

// -----

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 4 : i64}
  plan.value @a : tensor<f32> in @mem.a
  // Selu's attributes are alpha and gamma, by their ONNX names.
  // expected-error @+1 {{'plan.instr' op attribute 'beta' is not an attribute of Selu}}
  plan.instr "Selu" [@a] -> [@a] {attrs = {alpha = 1.67 : f32, beta = 1.05 : f32, gamma = 1.05 : f32}}
}

// -----

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 4 : i64}
  plan.value @a : tensor<f32> in @mem.a
  // expected-error @+1 {{'plan.instr' op ClipGrad needs attribute 'max' (an f32)}}
  plan.instr "ClipGrad" [@a, @a] -> [@a] {attrs = {min = 0.0 : f32}}
}

// -----

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 24 : i64}
  plan.value @a : tensor<2x3xf32> in @mem.a
  plan.buffer @mem.i "activation" {bytes = 16 : i64}
  plan.value @i : tensor<2xi64> in @mem.i
  // expected-error @+1 {{'plan.instr' op ArgMax needs attribute 'axis' (an i64)}}
  plan.instr "ArgMax" [@a] -> [@i] {attrs = {select_last_index = true}}
}

// -----

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 24 : i64}
  plan.value @a : tensor<2x3xf32> in @mem.a
  plan.buffer @mem.i "activation" {bytes = 16 : i64}
  plan.value @i : tensor<2xi64> in @mem.i
  // ArgReduceAttrs has no keepdims: it is y's shape.
  // expected-error @+1 {{'plan.instr' op attribute 'keepdims' is not an attribute of ArgMin}}
  plan.instr "ArgMin" [@a] -> [@i] {attrs = {axis = 1 : i64, keepdims = false}}
}

// -----

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 24 : i64}
  plan.value @a : tensor<2x3xf32> in @mem.a
  // expected-error @+1 {{'plan.instr' op attribute 'exclusive' of CumSum must be a bool, got 1 : i64}}
  plan.instr "CumSum" [@a] -> [@a] {attrs = {axis = 0 : i64, exclusive = 1 : i64}}
}

// -----

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 24 : i64}
  plan.value @a : tensor<2x3xf32> in @mem.a
  plan.buffer @mem.v "activation" {bytes = 8 : i64}
  plan.value @v : tensor<2x1xf32> in @mem.v
  plan.buffer @mem.i "activation" {bytes = 16 : i64}
  plan.value @i : tensor<2x1xi64> in @mem.i
  // expected-error @+1 {{'plan.instr' op TopK needs attribute 'axis' (an i64)}}
  plan.instr "TopK" [@a] -> [@v, @i] {attrs = {largest = false}}
}

// -----

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 24 : i64}
  plan.value @a : tensor<2x3xf32> in @mem.a
  plan.buffer @mem.v "activation" {bytes = 8 : i64}
  plan.value @v : tensor<2x1xf32> in @mem.v
  plan.buffer @mem.i "activation" {bytes = 16 : i64}
  plan.value @i : tensor<2x1xi64> in @mem.i
  // TopK always sorts: the plan has no `sorted`.
  // expected-error @+1 {{'plan.instr' op attribute 'sorted' is not an attribute of TopK}}
  plan.instr "TopK" [@a] -> [@v, @i] {attrs = {axis = 1 : i64, sorted = true}}
}

// -----

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 24 : i64}
  plan.value @a : tensor<2x3xf32> in @mem.a
  plan.buffer @mem.v "activation" {bytes = 8 : i64}
  plan.value @v : tensor<2x1xf32> in @mem.v
  // Values and indices, always both.
  // expected-error @+1 {{'plan.instr' op TopK takes 2 outputs, got 1}}
  plan.instr "TopK" [@a] -> [@v] {attrs = {axis = 1 : i64}}
}

// -----

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 24 : i64}
  plan.value @a : tensor<2x3xf32> in @mem.a
  plan.buffer @mem.i "activation" {bytes = 16 : i64}
  plan.value @i : tensor<2x1xi64> in @mem.i
  // The reduction is the opcode (ScatterElementsAdd, ScatterElementsMul).
  // expected-error @+1 {{'plan.instr' op attribute 'reduction' is not an attribute of ScatterElements}}
  plan.instr "ScatterElements" [@a, @i, @a] -> [@a] {attrs = {axis = 1 : i64, reduction = "add"}}
}

// -----

// An evaluation program: one plan.evaluation, one loss of each program.
// expected-error @+1 {{'plan.program' op has more than one plan.evaluation}}
plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 4 : i64, persistent}
  plan.value @a : tensor<f32> in @mem.a
  plan.evaluation
  plan.evaluation
  plan.loss @a
  plan.loss @a {eval}
}

// -----

// expected-error @+1 {{'plan.program' op has a plan.evaluation but no evaluation loss}}
plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 4 : i64, persistent}
  plan.value @a : tensor<f32> in @mem.a
  plan.evaluation
  plan.loss @a
}

// -----

// expected-error @+1 {{'plan.program' op has an evaluation loss but no plan.evaluation}}
plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 4 : i64, persistent}
  plan.value @a : tensor<f32> in @mem.a
  plan.loss @a
  plan.loss @a {eval}
}

// -----

// expected-error @+1 {{'plan.program' op has more than one evaluation loss}}
plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "activation" {bytes = 4 : i64, persistent}
  plan.value @a : tensor<f32> in @mem.a
  plan.evaluation
  plan.loss @a {eval}
  plan.loss @a {eval}
}

// -----

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "input" {bytes = 4 : i64, persistent}
  plan.value @a : tensor<f32> in @mem.a
  // expected-error @+1 {{'plan.input' op is an evaluation input, but the program has no plan.evaluation}}
  plan.input "a" @a {eval}
}
