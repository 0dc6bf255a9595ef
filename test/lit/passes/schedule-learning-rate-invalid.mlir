// RUN: zero-opt %s -split-input-file --zero-schedule-learning-rate="schedule=linear total-steps=4" -verify-diagnostics
// RUN: not zero-opt %s -split-input-file --zero-schedule-learning-rate="schedule=linear warmup-steps=5 total-steps=4" 2>&1 \
// RUN:   | FileCheck %s --check-prefix=WARMUP
// RUN: not zero-opt %s -split-input-file --zero-schedule-learning-rate="schedule=cosine" 2>&1 \
// RUN:   | FileCheck %s --check-prefix=TOTAL
// RUN: not zero-opt %s -split-input-file --zero-schedule-learning-rate="schedule=step" 2>&1 \
// RUN:   | FileCheck %s --check-prefix=UNKNOWN
// WARMUP: error: 'zero.learning_rate' op warmup_steps (5) exceed total_steps (4)
// TOTAL: error: 'zero.learning_rate' op the cosine schedule needs total_steps of at least 1
// UNKNOWN: error: 'zero.learning_rate' op unknown schedule 'step' (expected constant, linear or cosine)

// A valid step, for the schedule errors above.
module {
  ml_program.global private mutable @w(dense<1.0> : tensor<2xf32>) : tensor<2xf32>
  func.func @train_step(%dw: tensor<2xf32> {zero.input = "dw"}) {
    zero.sgd_update @w, %dw {lr = 0.1 : f32, momentum = 0.0 : f32, weight_decay = 0.0 : f32} : tensor<2xf32>
    return
  }
}

// -----

// A schedule scales one base rate.
module {
  ml_program.global private mutable @w(dense<1.0> : tensor<2xf32>) : tensor<2xf32>
  ml_program.global private mutable @b(dense<0.0> : tensor<2xf32>) : tensor<2xf32>
  func.func @train_step(%dw: tensor<2xf32> {zero.input = "dw"}, %db: tensor<2xf32> {zero.input = "db"}) {
    zero.sgd_update @b, %db {lr = 0.1 : f32, momentum = 0.0 : f32, weight_decay = 0.0 : f32} : tensor<2xf32>
    // expected-error @+1 {{'zero.sgd_update' op has another learning rate than the first update; a schedule needs one}}
    zero.sgd_update @w, %dw {lr = 0.2 : f32, momentum = 0.0 : f32, weight_decay = 0.0 : f32} : tensor<2xf32>
    return
  }
}
