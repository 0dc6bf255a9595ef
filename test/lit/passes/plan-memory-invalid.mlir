// Option errors print the option's value as a number.

// RUN: zero-opt %s --zero-plan-memory="alignment=3" -verify-diagnostics

// expected-error @+1 {{alignment must be a power of two, got 3}}
module {
}
