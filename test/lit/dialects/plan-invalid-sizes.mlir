// Sizes and offsets are signed in the IR; negative ones are errors, not huge
// unsigned values.

// RUN: zero-opt %s -split-input-file -verify-diagnostics

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  // expected-error @+1 {{'plan.buffer' op size must not be negative}}
  plan.buffer @mem.a "activation" {bytes = -4 : i64}
}
