// RUN: zero-opt %s | FileCheck %s
// RUN: zero-opt %s | zero-opt | FileCheck %s

// CHECK-LABEL: module attributes {zero.stage = 1 : i64, zero.world_size = 3 : i64}
module attributes {zero.stage = 1 : i64, zero.world_size = 3 : i64} {
  ml_program.global private mutable @w(dense<1.0> : tensor<2x5xf32>) : tensor<2x5xf32>
  // A parameter's placement round-trips.
  // CHECK: ml_program.global private mutable @p({{.*}}) : tensor<4xf32> {zero.placement = #zero.placement<weights = replicated, grad = sharded<3>, optimizer_state = sharded<3>>}
  ml_program.global private mutable @p(dense<1.0> : tensor<4xf32>) : tensor<4xf32> {zero.placement = #zero.placement<weights = replicated, grad = sharded<3>, optimizer_state = sharded<3>>}
  // CHECK-LABEL: func.func @ops(
  func.func @ops(%dy: tensor<2x5xf32>, %x: tensor<2x5xf32>, %y: tensor<2xi64>, %s: tensor<f32>, %dy5: tensor<5xf32>) {
    // CHECK: zero.elementwise_grad "Relu" %{{.*}}, %{{.*}} : tensor<2x5xf32>
    %0 = zero.elementwise_grad "Relu" %dy, %x : tensor<2x5xf32>
    // CHECK: zero.softmax_grad %{{.*}}, %{{.*}} {axis = 1 : i64} : tensor<2x5xf32>
    %1 = zero.softmax_grad %0, %x {axis = 1 : i64} : tensor<2x5xf32>
    // CHECK: zero.softmax_cross_entropy_loss_grad %{{.*}}, %{{.*}}, %{{.*}} {ignore_index = 0 : i64, reduction = "mean"} : (tensor<f32>, tensor<2x5xf32>, tensor<2xi64>) -> tensor<2x5xf32>
    %2 = zero.softmax_cross_entropy_loss_grad %s, %1, %y {ignore_index = 0 : i64, reduction = "mean"} : (tensor<f32>, tensor<2x5xf32>, tensor<2xi64>) -> tensor<2x5xf32>
    // CHECK: zero.negative_log_likelihood_loss_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {reduction = "sum"} : (tensor<f32>, tensor<2x5xf32>, tensor<2xi64>, tensor<5xf32>) -> tensor<2x5xf32>
    %cw = zero.negative_log_likelihood_loss_grad %s, %1, %y, %dy5 {reduction = "sum"} : (tensor<f32>, tensor<2x5xf32>, tensor<2xi64>, tensor<5xf32>) -> tensor<2x5xf32>
    // CHECK: zero.all_reduce %{{.*}} "sum" : tensor<2x5xf32>
    %3 = zero.all_reduce %2 "sum" : tensor<2x5xf32>
    // CHECK: zero.reduce_scatter %{{.*}} "mean" {world_size = 3 : i64} : tensor<2x5xf32> -> tensor<4xf32>
    %4 = zero.reduce_scatter %3 "mean" {world_size = 3 : i64} : tensor<2x5xf32> -> tensor<4xf32>
    // CHECK: zero.sgd_update @w, %{{.*}} {lr = 1.000000e-01 : f32, momentum = 0.000000e+00 : f32, sharded, weight_decay = 0.000000e+00 : f32} : tensor<4xf32>
    zero.sgd_update @w, %4 {lr = 0.1 : f32, momentum = 0.0 : f32, weight_decay = 0.0 : f32, sharded} : tensor<4xf32>
    // CHECK: zero.adamw_update @w, %{{.*}} {beta1 = 0.899999976 : f32, beta2 = 9.990000e-01 : f32, eps = 9.99999993E-9 : f32, lr = 1.000000e-03 : f32, weight_decay = 0.00999999977 : f32} : tensor<2x5xf32>
    zero.adamw_update @w, %3 {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, lr = 1.0e-3 : f32, weight_decay = 0.01 : f32} : tensor<2x5xf32>
    // CHECK: zero.load_shard @w : tensor<4xf32>
    %5 = zero.load_shard @w : tensor<4xf32>
    // CHECK: zero.all_gather %{{.*}} {world_size = 3 : i64} : tensor<4xf32> -> tensor<2x5xf32>
    %6 = zero.all_gather %5 {world_size = 3 : i64} : tensor<4xf32> -> tensor<2x5xf32>
    return
  }
}
