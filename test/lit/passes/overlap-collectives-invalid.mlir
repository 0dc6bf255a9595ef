// RUN: zero-opt %s -split-input-file --zero-overlap-collectives -verify-diagnostics
// RUN: not zero-opt %s --zero-overlap-collectives="window=-1" 2>&1 | FileCheck %s --check-prefix=WINDOW

// Option errors print the option's value as a number.
// WINDOW: window must not be negative, got -1

// Conflicts are found per buffer, so the pass must run before buffers share
// memory.
// expected-error @+1 {{is memory planned already; run zero-overlap-collectives before zero-plan-memory}}
plan.program attributes {arena_bytes = 64 : i64, backend = "cpu", world_size = 2 : ui32, zero_stage = 0 : ui32} {
}

// -----

// A schedule is placed once.
plan.program attributes {backend = "cpu", world_size = 2 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.g "gradient" {bytes = 16 : i64}
  plan.value @g : tensor<4xf32> in @mem.g
  // expected-error @+1 {{collectives are asynchronous already}}
  plan.instr "AllReduce" [@g] -> [@g] {attrs = {reduction = "sum", slot = 1 : i64}}
  plan.instr "Wait" [@g, @g] -> [] {attrs = {slot = 1 : i64}}
}
