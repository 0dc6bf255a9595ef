// RUN: zero-opt %s -split-input-file -verify-diagnostics

module {
  ml_program.global private mutable @w(dense<1.0> : tensor<2x5xf32>) : tensor<2x5xf32>
  func.func @update_type(%g: tensor<5x2xf32>) {
    // expected-error @+1 {{'zero.sgd_update' op gradient type 'tensor<5x2xf32>' does not match 'tensor<2x5xf32>' of parameter @w}}
    zero.sgd_update @w, %g {lr = 0.1 : f32, momentum = 0.0 : f32, weight_decay = 0.0 : f32} : tensor<5x2xf32>
    return
  }
}

// -----

module attributes {zero.world_size = 3 : i64} {
  ml_program.global private mutable @w(dense<1.0> : tensor<2x5xf32>) : tensor<2x5xf32>
  func.func @sharded_update_type(%g: tensor<5xf32>) {
    // expected-error @+1 {{'zero.adamw_update' op gradient type 'tensor<5xf32>' does not match 'tensor<4xf32>' of parameter @w}}
    zero.adamw_update @w, %g {beta1 = 0.9 : f32, beta2 = 0.999 : f32, eps = 1.0e-8 : f32, lr = 1.0e-3 : f32, weight_decay = 0.01 : f32, sharded} : tensor<5xf32>
    return
  }
}

// -----

module {
  ml_program.global private mutable @w(dense<1.0> : tensor<2x5xf32>) : tensor<2x5xf32>
  func.func @sharded_unpartitioned(%g: tensor<4xf32>) {
    // expected-error @+1 {{'zero.sgd_update' op needs a module partitioned with 'zero.world_size'}}
    zero.sgd_update @w, %g {lr = 0.1 : f32, momentum = 0.0 : f32, weight_decay = 0.0 : f32, sharded} : tensor<4xf32>
    return
  }
}

// -----

module {
  func.func @no_param(%g: tensor<4xf32>) {
    // expected-error @+1 {{'zero.sgd_update' op names no parameter @missing}}
    zero.sgd_update @missing, %g {lr = 0.1 : f32, momentum = 0.0 : f32, weight_decay = 0.0 : f32} : tensor<4xf32>
    return
  }
}

// -----

module attributes {zero.world_size = 3 : i64} {
  ml_program.global private mutable @w(dense<1.0> : tensor<2x5xf32>) : tensor<2x5xf32>
  func.func @load_shard_type() {
    // expected-error @+1 {{'zero.load_shard' op shard type must be 'tensor<4xf32>'}}
    %0 = zero.load_shard @w : tensor<3xf32>
    return
  }
}

// -----

func.func @reduce_scatter_type(%g: tensor<2x5xf32>) {
  // expected-error @+1 {{'zero.reduce_scatter' op shard type must be 'tensor<4xf32>'}}
  %0 = zero.reduce_scatter %g "mean" {world_size = 3 : i64} : tensor<2x5xf32> -> tensor<3xf32>
  return
}

// -----

func.func @reduce_scatter_world(%g: tensor<2x5xf32>) {
  // expected-error @+1 {{'zero.reduce_scatter' op world size must be positive}}
  %0 = zero.reduce_scatter %g "mean" {world_size = 0 : i64} : tensor<2x5xf32> -> tensor<10xf32>
  return
}

// -----

func.func @all_gather_type(%s: tensor<3xf32>) {
  // expected-error @+1 {{'zero.all_gather' op shard type must be 'tensor<4xf32>' for result 'tensor<2x5xf32>'}}
  %0 = zero.all_gather %s {world_size = 3 : i64} : tensor<3xf32> -> tensor<2x5xf32>
  return
}

// -----

func.func @all_reduce_reduction(%g: tensor<2xf32>) {
  // expected-error @+1 {{'zero.all_reduce' op reduction must be "sum" or "mean", got "max"}}
  %0 = zero.all_reduce %g "max" : tensor<2xf32>
  return
}

// -----

func.func @reduce_scatter_reduction(%g: tensor<2xf32>) {
  // expected-error @+1 {{'zero.reduce_scatter' op reduction must be "sum" or "mean", got "avg"}}
  %0 = zero.reduce_scatter %g "avg" {world_size = 2 : i64} : tensor<2xf32> -> tensor<1xf32>
  return
}

// -----

func.func @loss_grad_weights(%s: tensor<f32>, %x: tensor<2x5xf32>, %y: tensor<2xi64>, %w: tensor<2xf32>) -> tensor<2x5xf32> {
  // expected-error @+1 {{'zero.softmax_cross_entropy_loss_grad' op weights must have shape [C] = [5]}}
  %0 = zero.softmax_cross_entropy_loss_grad %s, %x, %y, %w {reduction = "mean"} : (tensor<f32>, tensor<2x5xf32>, tensor<2xi64>, tensor<2xf32>) -> tensor<2x5xf32>
  return %0 : tensor<2x5xf32>
}

// -----

func.func @elementwise_grad_of_unknown_op(%dy: tensor<3xf32>, %x: tensor<3xf32>) -> tensor<3xf32> {
  // expected-error @+1 {{'zero.elementwise_grad' op 'Gelu' is not an elementwise op with a derivative kernel}}
  %0 = zero.elementwise_grad "Gelu" %dy, %x : tensor<3xf32>
  return %0 : tensor<3xf32>
}

// -----

func.func @elementwise_grad_of_composite_gradient(%dy: tensor<3xf32>, %x: tensor<3xf32>) -> tensor<3xf32> {
  // Exp's gradient is composed of forward ops; it has no derivative kernel.
  // expected-error @+1 {{'zero.elementwise_grad' op 'Exp' is not an elementwise op with a derivative kernel}}
  %0 = zero.elementwise_grad "Exp" %dy, %x : tensor<3xf32>
  return %0 : tensor<3xf32>
}

// -----

func.func @elementwise_grad_without_attribute(%dy: tensor<3xf32>, %x: tensor<3xf32>) -> tensor<3xf32> {
  // expected-error @+1 {{'zero.elementwise_grad' op of 'Elu' needs attribute 'alpha'}}
  %0 = zero.elementwise_grad "Elu" %dy, %x : tensor<3xf32>
  return %0 : tensor<3xf32>
}

// -----

func.func @elementwise_grad_extra_attribute(%dy: tensor<3xf32>, %x: tensor<3xf32>) -> tensor<3xf32> {
  // expected-error @+1 {{'zero.elementwise_grad' op of 'Elu' takes 1 attribute(s), got 2}}
  %0 = zero.elementwise_grad "Elu" %dy, %x {alpha = 1.0 : f32, beta = 0.5 : f32} : tensor<3xf32>
  return %0 : tensor<3xf32>
}

// -----

module {
  // expected-error @+1 {{sharded weights need a sharded gradient}}
  ml_program.global private mutable @w(dense<1.0> : tensor<4xf32>) : tensor<4xf32> {zero.placement = #zero.placement<weights = sharded<2>, grad = replicated, optimizer_state = sharded<2>>}
}

// -----

module {
  // expected-error @+1 {{a sharded gradient needs a sharded optimizer state}}
  ml_program.global private mutable @w(dense<1.0> : tensor<4xf32>) : tensor<4xf32> {zero.placement = #zero.placement<weights = replicated, grad = sharded<2>, optimizer_state = replicated>}
}

// -----

module {
  // expected-error @+1 {{the sharded tensors of a parameter must be sharded over the same number of ranks}}
  ml_program.global private mutable @w(dense<1.0> : tensor<4xf32>) : tensor<4xf32> {zero.placement = #zero.placement<weights = replicated, grad = sharded<4>, optimizer_state = sharded<2>>}
}

// -----

module {
  // expected-error @+1 {{a tensor is sharded over at least 1 rank, got 0}}
  ml_program.global private mutable @w(dense<1.0> : tensor<4xf32>) : tensor<4xf32> {zero.placement = #zero.placement<weights = replicated, grad = replicated, optimizer_state = sharded<0>>}
}

// -----

module {
  // expected-error @+1 {{expected 'sharded' or 'replicated'}}
  ml_program.global private mutable @w(dense<1.0> : tensor<4xf32>) : tensor<4xf32> {zero.placement = #zero.placement<weights = whole, grad = replicated, optimizer_state = replicated>}
}

// -----

module {
  // expected-error @+1 {{'ml_program.global' op 'zero.placement' must be a #zero.placement}}
  ml_program.global private mutable @w(dense<1.0> : tensor<4xf32>) : tensor<4xf32> {zero.placement = 3 : i64}
}

// -----

func.func @elementwise_grad_with_another_ops_attribute(%dy: tensor<3xf32>, %x: tensor<3xf32>) -> tensor<3xf32> {
  // Clip's are min and max.
  // expected-error @+1 {{'zero.elementwise_grad' op of 'Clip' needs attribute 'max'}}
  %0 = zero.elementwise_grad "Clip" %dy, %x {min = 0.0 : f32, gamma = 1.0 : f32} : tensor<3xf32>
  return %0 : tensor<3xf32>
}
