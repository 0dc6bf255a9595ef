// RUN: zero-opt %s --zero-overlap-collectives="window=-1" -verify-diagnostics

// expected-error @+1 {{window must not be negative, got -1}}
module {
}
