// RUN: zero-opt %s -split-input-file --zero-plan-memory | FileCheck %s
// RUN: zero-opt %s -split-input-file --zero-plan-memory="alignment=16" | FileCheck %s --check-prefix=ALIGN16

// Persistent buffers come first, back to back at aligned offsets, in
// declaration order. Transient buffers follow: @mem.a (live over instrs 0-1)
// and @mem.c (instrs 2-3) never overlap in time and share an offset; @mem.b
// (instrs 1-2) overlaps both and gets its own range. The largest transient
// buffer is placed first.

// CHECK-LABEL: plan.program attributes {arena_bytes = 448 : i64, backend = "cpu"
// CHECK:         plan.buffer @mem.p "parameter" {bytes = 100 : i64, offset = 0 : i64, persistent}
// CHECK:         plan.buffer @mem.a "activation" {bytes = 128 : i64, offset = [[A:192]] : i64}
// CHECK:         plan.buffer @mem.q "input" {bytes = 8 : i64, offset = 128 : i64, persistent}
// CHECK:         plan.buffer @mem.b "activation" {bytes = 120 : i64, offset = 320 : i64}
// CHECK:         plan.buffer @mem.c "activation" {bytes = 64 : i64, offset = [[A]] : i64}

// ALIGN16-LABEL: plan.program attributes {arena_bytes = 384 : i64, backend = "cpu"
// ALIGN16:         plan.buffer @mem.p "parameter" {bytes = 100 : i64, offset = 0 : i64, persistent}
// ALIGN16:         plan.buffer @mem.a "activation" {bytes = 128 : i64, offset = 128 : i64}
// ALIGN16:         plan.buffer @mem.q "input" {bytes = 8 : i64, offset = 112 : i64, persistent}
// ALIGN16:         plan.buffer @mem.b "activation" {bytes = 120 : i64, offset = 256 : i64}
// ALIGN16:         plan.buffer @mem.c "activation" {bytes = 64 : i64, offset = 128 : i64}
plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.p "parameter" {bytes = 100 : i64, persistent}
  plan.value @p : tensor<25xf32> in @mem.p
  plan.buffer @mem.a "activation" {bytes = 128 : i64}
  plan.value @a : tensor<32xf32> in @mem.a
  plan.buffer @mem.q "input" {bytes = 8 : i64, persistent}
  plan.value @q : tensor<2xf32> in @mem.q
  plan.buffer @mem.b "activation" {bytes = 120 : i64}
  plan.value @b : tensor<30xf32> in @mem.b
  plan.buffer @mem.c "activation" {bytes = 64 : i64}
  plan.value @c : tensor<16xf32> in @mem.c
  plan.buffer @mem.unused "activation" {bytes = 4 : i64}
  plan.value @unused : tensor<f32> in @mem.unused
  plan.instr "Fill" [] -> [@a] {attrs = {value = 1.0 : f32}}
  plan.instr "Copy" [@a] -> [@b]
  plan.instr "Fill" [] -> [@c] {attrs = {value = 2.0 : f32}}
  plan.instr "Copy" [@c] -> [@p]
}

// -----

// A view keeps its whole buffer alive: @mem.x is used through two values
// (instrs 0 and 2), so @mem.y (instr 1) cannot reuse it.

// CHECK-LABEL: plan.program attributes {arena_bytes = 128 : i64
// CHECK:         plan.buffer @mem.x "activation" {bytes = 64 : i64, offset = 0 : i64}
// CHECK:         plan.buffer @mem.y "activation" {bytes = 64 : i64, offset = 64 : i64}
plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.x "activation" {bytes = 64 : i64}
  plan.value @x : tensor<16xf32> in @mem.x
  plan.value @x.view : tensor<4x4xf32> in @mem.x
  plan.buffer @mem.y "activation" {bytes = 64 : i64}
  plan.value @y : tensor<16xf32> in @mem.y
  plan.instr "Fill" [] -> [@x] {attrs = {value = 1.0 : f32}}
  plan.instr "Fill" [] -> [@y] {attrs = {value = 1.0 : f32}}
  plan.instr "Fill" [] -> [@x.view] {attrs = {value = 1.0 : f32}}
}
