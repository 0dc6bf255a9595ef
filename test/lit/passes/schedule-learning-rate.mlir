// RUN: zero-opt %s -split-input-file \
// RUN:   --zero-schedule-learning-rate="schedule=cosine warmup-steps=2 total-steps=10 min-lr-ratio=0.1" \
// RUN:   | FileCheck %s

// One rate for the step, before the first update, read by every update and
// reported as "lr".
// CHECK-LABEL: func.func @train_step
// CHECK:         %[[LR:.*]] = zero.learning_rate "cosine" {lr = 1.000000e-01 : f32, min_lr_ratio = 1.000000e-01 : f32, total_steps = 10 : i64, warmup_steps = 2 : i64}
// CHECK-NEXT:    zero.metric "lr" %[[LR]]
// CHECK-NEXT:    zero.adamw_update @b, %{{.*}} lr(%[[LR]])
// CHECK-NEXT:    zero.adamw_update @w, %{{.*}} lr(%[[LR]])
// CHECK-NOT:     zero.learning_rate
module {
  ml_program.global private mutable @w(dense<1.0> : tensor<2x5xf32>) : tensor<2x5xf32>
  ml_program.global private mutable @b(dense<0.0> : tensor<2xf32>) : tensor<2xf32>
  func.func @train_step(%dw: tensor<2x5xf32> {zero.input = "dw"}, %db: tensor<2xf32> {zero.input = "db"}) {
    zero.adamw_update @b, %db {lr = 0.1 : f32, beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32} : tensor<2xf32>
    zero.adamw_update @w, %dw {lr = 0.1 : f32, beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, weight_decay = 0.0 : f32} : tensor<2x5xf32>
    return
  }
}
