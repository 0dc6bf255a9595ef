// The serializer refuses what it cannot write, also when no verifier ran
// before it (here: none on parsing), and then writes no file.
// RUN: rm -f %t.zplan
// RUN: zero-opt %s -split-input-file --mlir-very-unsafe-disable-verifier-on-parsing \
// RUN:   --zero-write-plan=output=%t.zplan -verify-diagnostics
// RUN: not test -e %t.zplan

plan.program attributes {arena_bytes = 64 : i64, backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "input" {bytes = 16 : i64, offset = 0 : i64, persistent}
  plan.value @a : tensor<2x2xf32> in @mem.a
  plan.buffer @mem.y "activation" {bytes = 16 : i64, offset = 32 : i64}
  plan.value @y : tensor<2x2xf32> in @mem.y
  // expected-error @+1 {{'plan.instr' op Gemm needs attribute 'alpha'}}
  plan.instr "Gemm" [@a, @a] -> [@y] {attrs = {trans_a = false, trans_b = false, beta = 0.0 : f32}}
}

// -----

plan.program attributes {arena_bytes = 64 : i64, backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "input" {bytes = 16 : i64, offset = 0 : i64, persistent}
  plan.value @a : tensor<2x2xf32> in @mem.a
  plan.buffer @mem.y "activation" {bytes = 16 : i64, offset = 32 : i64}
  plan.value @y : tensor<2x2xf32> in @mem.y
  // expected-error @+1 {{'plan.instr' op attribute 'alpha' of Gemm has the wrong kind}}
  plan.instr "Gemm" [@a, @a] -> [@y] {attrs = {trans_a = false, trans_b = false, alpha = 1 : i64, beta = 0.0 : f32}}
}

// -----

plan.program attributes {arena_bytes = 64 : i64, backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "input" {bytes = 16 : i64, offset = 0 : i64, persistent}
  plan.value @a : tensor<2x2xf32> in @mem.a
  plan.buffer @mem.y "activation" {bytes = 16 : i64, offset = 32 : i64}
  plan.value @y : tensor<2x2xf32> in @mem.y
  // expected-error @+1 {{'plan.instr' op attribute 'gamma' is not an attribute of Gemm}}
  plan.instr "Gemm" [@a, @a] -> [@y] {attrs = {trans_a = false, trans_b = false, alpha = 1.0 : f32, beta = 0.0 : f32, gamma = 1.0 : f32}}
}

// -----

plan.program attributes {arena_bytes = 64 : i64, backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "input" {bytes = 16 : i64, offset = 0 : i64, persistent}
  plan.value @a : tensor<2x2xf32> in @mem.a
  // expected-error @+1 {{'plan.instr' op attribute 'reduction' of AllReduce has the wrong kind}}
  plan.instr "AllReduce" [@a] -> [@a] {attrs = {reduction = "avg"}}
}

// -----

plan.program attributes {arena_bytes = 64 : i64, backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "input" {bytes = 16 : i64, offset = 0 : i64, persistent}
  plan.value @a : tensor<2x2xf32> in @mem.a
  // expected-error @+1 {{'plan.instr' op attribute 'slot' of Wait has the wrong kind}}
  plan.instr "Wait" [] -> [] {attrs = {slot = 4294967296 : i64}}
}

// -----

plan.program attributes {arena_bytes = 64 : i64, backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.a "input" {bytes = 16 : i64, offset = 0 : i64, persistent}
  plan.value @a : tensor<2x2xf32> in @mem.a
  // expected-error @+1 {{'plan.instr' op opcode Relu takes no attributes}}
  plan.instr "Relu" [@a] -> [@a] {attrs = {alpha = 1.0 : f32}}
}

// -----

// expected-error @+1 {{expected one plan.program; run zero-lower-to-plan and zero-plan-memory first}}
module {
}
