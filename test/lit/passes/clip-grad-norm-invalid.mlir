// RUN: zero-opt %s -split-input-file --zero-clip-grad-norm="max-norm=1.0" -verify-diagnostics
// RUN: not zero-opt %s -split-input-file --zero-clip-grad-norm="max-norm=0" 2>&1 \
// RUN:   | FileCheck %s --check-prefix=ZERO
// ZERO: error: max-norm must be positive and finite, got 0

// expected-error @+1 {{expected a partitioned @train_step; run zero-partition first}}
module {
  func.func @train_step() {
    return
  }
}
