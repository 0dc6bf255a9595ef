// XFAIL: *
// Known compiler bug: zero-plan-memory streams its int64_t `alignment`
// option into the diagnostic as a character ("got \x03" instead of "got 3").

// RUN: zero-opt %s --zero-plan-memory="alignment=3" -verify-diagnostics

// expected-error @+1 {{alignment must be a power of two, got 3}}
module {
}
