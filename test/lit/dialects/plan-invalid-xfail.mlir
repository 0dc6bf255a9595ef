// XFAIL: *
// Known compiler bug: plan.buffer's verifier checks `getBytes() < 0`, but the
// I64Attr getter returns uint64_t, so a negative size is accepted silently.
// (A negative plan.value byte_offset is rejected only by accident, with
// "view of -4 bytes exceeds buffer", for the same reason.)

// RUN: zero-opt %s -split-input-file -verify-diagnostics

plan.program attributes {backend = "cpu", world_size = 1 : ui32, zero_stage = 0 : ui32} {
  // expected-error @+1 {{'plan.buffer' op size must not be negative}}
  plan.buffer @mem.a "activation" {bytes = -4 : i64}
}
