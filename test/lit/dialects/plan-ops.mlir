// RUN: zero-opt %s | FileCheck %s
// RUN: zero-opt %s | zero-opt | FileCheck %s

// CHECK-LABEL: plan.program attributes {arena_bytes = 256 : i64, backend = "cuda", world_size = 2 : ui32, zero_stage = 1 : ui32} {
// CHECK-NEXT:    plan.buffer @mem.w "parameter" {bytes = 16 : i64, offset = 0 : i64, persistent}
// CHECK-NEXT:    plan.value @w : tensor<3xf32> in @mem.w
// CHECK-NEXT:    plan.value @w.shard : tensor<2xf32> in @mem.w {rank_stride = 8 : i64}
// CHECK-NEXT:    plan.init @w {data = dense<1.000000e+00> : tensor<3xf32>}
// CHECK-NEXT:    plan.parameter "w" : tensor<3xf32> in @w {shard_numel = 2 : i64}
// CHECK-NEXT:    plan.buffer @mem.x "input" {bytes = 12 : i64, offset = 64 : i64, persistent}
// CHECK-NEXT:    plan.value @x : tensor<3xf32> in @mem.x {name = "x"}
// CHECK-NEXT:    plan.input "x" @x
// CHECK-NEXT:    plan.buffer @mem.t "activation" {bytes = 12 : i64, offset = 128 : i64}
// CHECK-NEXT:    plan.value @t : tensor<3xf32> in @mem.t
// CHECK-NEXT:    plan.value @t.tail : tensor<1xf32> in @mem.t {byte_offset = 8 : i64}
// CHECK-NEXT:    plan.instr "Mul" [@x, @w] -> [@t]
// CHECK-NEXT:    plan.instr "Fill" [] -> [@t.tail] {attrs = {value = 0.000000e+00 : f32}}
// CHECK-NEXT:    plan.loss @t
plan.program attributes {arena_bytes = 256 : i64, backend = "cuda", world_size = 2 : ui32, zero_stage = 1 : ui32} {
  plan.buffer @mem.w "parameter" {bytes = 16 : i64, offset = 0 : i64, persistent}
  plan.value @w : tensor<3xf32> in @mem.w
  plan.value @w.shard : tensor<2xf32> in @mem.w {rank_stride = 8 : i64}
  plan.init @w {data = dense<1.0> : tensor<3xf32>}
  plan.parameter "w" : tensor<3xf32> in @w {shard_numel = 2 : i64}
  plan.buffer @mem.x "input" {bytes = 12 : i64, offset = 64 : i64, persistent}
  plan.value @x : tensor<3xf32> in @mem.x {name = "x"}
  plan.input "x" @x
  plan.buffer @mem.t "activation" {bytes = 12 : i64, offset = 128 : i64}
  plan.value @t : tensor<3xf32> in @mem.t
  plan.value @t.tail : tensor<1xf32> in @mem.t {byte_offset = 8 : i64}
  plan.instr "Mul" [@x, @w] -> [@t]
  plan.instr "Fill" [] -> [@t.tail] {attrs = {value = 0.0 : f32}}
  plan.loss @t
}
