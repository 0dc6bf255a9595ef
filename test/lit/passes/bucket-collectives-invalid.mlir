// RUN: zero-opt %s -split-input-file --zero-bucket-collectives -verify-diagnostics
// RUN: not zero-opt %s --zero-bucket-collectives="bytes=-1" 2>&1 | FileCheck %s --check-prefix=BYTES

// BYTES: bytes must not be negative, got -1

// Buckets move instructions by their buffers' bytes: before memory planning.
// expected-error @+1 {{is memory planned already; run zero-bucket-collectives before zero-plan-memory}}
plan.program attributes {arena_bytes = 64 : i64, backend = "cuda", world_size = 2 : ui32, zero_stage = 0 : ui32} {
}

// -----

plan.program attributes {backend = "cuda", world_size = 2 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.g "gradient" {bytes = 16 : i64}
  plan.value @g : tensor<4xf32> in @mem.g
  // expected-error @+1 {{collectives are asynchronous already; run zero-bucket-collectives once, before zero-overlap-collectives}}
  plan.instr "AllReduce" [@g] -> [@g] {attrs = {reduction = "sum", slot = 1 : i64}}
  plan.instr "Wait" [@g, @g] -> [] {attrs = {slot = 1 : i64}}
}
