// RUN: zero-opt %s -split-input-file -verify-diagnostics

func.func @broadcast(%a: tensor<2x3xf32>, %b: tensor<4xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{'onnx.Add' op operand shapes 'tensor<2x3xf32>' and 'tensor<4xf32>' do not broadcast}}
  %0 = onnx.Add %a, %b : (tensor<2x3xf32>, tensor<4xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @broadcast_result(%a: tensor<2x3xf32>, %b: tensor<3xf32>) -> tensor<3x3xf32> {
  // expected-error @+1 {{'onnx.Mul' op result type 'tensor<3x3xf32>' is not the broadcast shape of the operands}}
  %0 = onnx.Mul %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<3x3xf32>
  return %0 : tensor<3x3xf32>
}

// -----

func.func @element_types(%a: tensor<3xf32>, %b: tensor<3xi64>) -> tensor<3xf32> {
  // expected-error @+1 {{'onnx.Sub' op operand and result element types must match}}
  %0 = onnx.Sub %a, %b : (tensor<3xf32>, tensor<3xi64>) -> tensor<3xf32>
  return %0 : tensor<3xf32>
}

// -----

func.func @gemm_inner(%a: tensor<2x3xf32>, %b: tensor<4x5xf32>) -> tensor<2x5xf32> {
  // expected-error @+1 {{'onnx.Gemm' op inner dimensions differ: 3 vs 4}}
  %0 = onnx.Gemm %a, %b : (tensor<2x3xf32>, tensor<4x5xf32>) -> tensor<2x5xf32>
  return %0 : tensor<2x5xf32>
}

// -----

func.func @gemm_trans_result(%a: tensor<3x2xf32>, %b: tensor<5x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{'onnx.Gemm' op result must be 2x5}}
  %0 = onnx.Gemm %a, %b {transA = true, transB = true} : (tensor<3x2xf32>, tensor<5x3xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @gemm_c(%a: tensor<2x3xf32>, %b: tensor<3x5xf32>, %c: tensor<2xf32>) -> tensor<2x5xf32> {
  // expected-error @+1 {{'onnx.Gemm' op C 'tensor<2xf32>' does not broadcast to 'tensor<2x5xf32>'}}
  %0 = onnx.Gemm %a, %b, %c : (tensor<2x3xf32>, tensor<3x5xf32>, tensor<2xf32>) -> tensor<2x5xf32>
  return %0 : tensor<2x5xf32>
}

// -----

func.func @matmul_inner(%a: tensor<2x3xf32>, %b: tensor<4x5xf32>) -> tensor<2x5xf32> {
  // expected-error @+1 {{'onnx.MatMul' op inner dimensions differ}}
  %0 = onnx.MatMul %a, %b : (tensor<2x3xf32>, tensor<4x5xf32>) -> tensor<2x5xf32>
  return %0 : tensor<2x5xf32>
}

// -----

func.func @transpose_rank(%a: tensor<2x3xf32>) -> tensor<3x2xf32> {
  // expected-error @+1 {{'onnx.Transpose' op perm has 3 entries for rank 2}}
  %0 = onnx.Transpose %a {perm = array<i64: 0, 1, 2>} : tensor<2x3xf32> -> tensor<3x2xf32>
  return %0 : tensor<3x2xf32>
}

// -----

func.func @transpose_perm(%a: tensor<2x3xf32>) -> tensor<2x2xf32> {
  // expected-error @+1 {{'onnx.Transpose' op perm is not a permutation}}
  %0 = onnx.Transpose %a {perm = array<i64: 0, 0>} : tensor<2x3xf32> -> tensor<2x2xf32>
  return %0 : tensor<2x2xf32>
}

// -----

func.func @transpose_result(%a: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{'onnx.Transpose' op result type does not match the permuted input shape}}
  %0 = onnx.Transpose %a {perm = array<i64: 1, 0>} : tensor<2x3xf32> -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @reshape_count(%a: tensor<2x3xf32>) -> tensor<7xf32> {
  // expected-error @+1 {{'onnx.Reshape' op must keep the element count and type: 'tensor<2x3xf32>' vs 'tensor<7xf32>'}}
  %0 = onnx.Reshape %a : tensor<2x3xf32> -> tensor<7xf32>
  return %0 : tensor<7xf32>
}

// -----

func.func @expand(%a: tensor<2x3xf32>) -> tensor<4x3xf32> {
  // expected-error @+1 {{'onnx.Expand' op cannot broadcast 'tensor<2x3xf32>' to 'tensor<4x3xf32>'}}
  %0 = onnx.Expand %a : tensor<2x3xf32> -> tensor<4x3xf32>
  return %0 : tensor<4x3xf32>
}

// -----

func.func @cast_shape(%a: tensor<2x3xi64>) -> tensor<6xf32> {
  // expected-error @+1 {{'onnx.Cast' op must not change the shape}}
  %0 = onnx.Cast %a : tensor<2x3xi64> -> tensor<6xf32>
  return %0 : tensor<6xf32>
}

// -----

func.func @reduce_axis(%a: tensor<2x3xf32>) -> tensor<2x1xf32> {
  // expected-error @+1 {{'onnx.ReduceSum' op axis 2 is out of range for rank 2}}
  %0 = onnx.ReduceSum %a {axes = array<i64: 2>} : tensor<2x3xf32> -> tensor<2x1xf32>
  return %0 : tensor<2x1xf32>
}

// -----

func.func @reduce_result(%a: tensor<2x3xf32>) -> tensor<2x1xf32> {
  // expected-error @+1 {{'onnx.ReduceMean' op result type does not match the reduced shape}}
  %0 = onnx.ReduceMean %a {axes = array<i64: -1>, keepdims = false} : tensor<2x3xf32> -> tensor<2x1xf32>
  return %0 : tensor<2x1xf32>
}

// -----

func.func @loss_rank(%a: tensor<4xf32>, %y: tensor<4xi64>) -> tensor<f32> {
  // expected-error @+1 {{'onnx.SoftmaxCrossEntropyLoss' op input must be [N, C, ...]}}
  %0 = onnx.SoftmaxCrossEntropyLoss %a, %y : (tensor<4xf32>, tensor<4xi64>) -> tensor<f32>
  return %0 : tensor<f32>
}

// -----

func.func @loss_labels(%a: tensor<4x3xf32>, %y: tensor<3xi64>) -> tensor<f32> {
  // expected-error @+1 {{'onnx.NegativeLogLikelihoodLoss' op labels must have shape [N, d1, ...] of the input}}
  %0 = onnx.NegativeLogLikelihoodLoss %a, %y : (tensor<4x3xf32>, tensor<3xi64>) -> tensor<f32>
  return %0 : tensor<f32>
}

// -----

func.func @loss_weights(%a: tensor<4x3xf32>, %y: tensor<4xi64>, %w: tensor<4xf32>) -> tensor<f32> {
  // expected-error @+1 {{'onnx.NegativeLogLikelihoodLoss' op weights must have shape [C] = [3]}}
  %0 = onnx.NegativeLogLikelihoodLoss %a, %y, %w : (tensor<4x3xf32>, tensor<4xi64>, tensor<4xf32>) -> tensor<f32>
  return %0 : tensor<f32>
}

// -----

func.func @loss_reduction(%a: tensor<4x3xf32>, %y: tensor<4xi64>) -> tensor<f32> {
  // expected-error @+1 {{'onnx.SoftmaxCrossEntropyLoss' op unknown reduction 'max'}}
  %0 = onnx.SoftmaxCrossEntropyLoss %a, %y {reduction = "max"} : (tensor<4x3xf32>, tensor<4xi64>) -> tensor<f32>
  return %0 : tensor<f32>
}

// -----

func.func @loss_none(%a: tensor<4x3xf32>, %y: tensor<4xi64>) -> tensor<f32> {
  // expected-error @+1 {{'onnx.SoftmaxCrossEntropyLoss' op loss type does not match the reduction}}
  %0 = onnx.SoftmaxCrossEntropyLoss %a, %y {reduction = "none"} : (tensor<4x3xf32>, tensor<4xi64>) -> tensor<f32>
  return %0 : tensor<f32>
}

// -----

func.func @loss_mean(%a: tensor<4x3xf32>, %y: tensor<4xi64>) -> tensor<4xf32> {
  // expected-error @+1 {{'onnx.NegativeLogLikelihoodLoss' op loss type does not match the reduction}}
  %0 = onnx.NegativeLogLikelihoodLoss %a, %y : (tensor<4x3xf32>, tensor<4xi64>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// ceil_mode rounds 7x5 windows of stride 2 up: 3x2, not 2x2.
func.func @pool_ceil(%x: tensor<1x1x7x5xf32>) -> tensor<1x1x2x2xf32> {
  // expected-error @+1 {{'onnx.AveragePool' op result type does not match the pooling window}}
  %0 = onnx.AveragePool %x {ceil_mode = true, count_include_pad = false, kernel_shape = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 2, 2>} : (tensor<1x1x7x5xf32>) -> tensor<1x1x2x2xf32>
  return %0 : tensor<1x1x2x2xf32>
}

// -----

func.func @comparison_operand_types(%a: tensor<3xf32>, %b: tensor<3xi64>) -> tensor<3xi64> {
  // expected-error @+1 {{'onnx.Greater' op operand element types must match}}
  %0 = onnx.Greater %a, %b : (tensor<3xf32>, tensor<3xi64>) -> tensor<3xi64>
  return %0 : tensor<3xi64>
}

// -----

func.func @comparison_result_type(%a: tensor<3xf32>, %b: tensor<3xf32>) -> tensor<3xf32> {
  // expected-error @+1 {{'onnx.Less' op result #0 must be ranked tensor of 64-bit signless integer values}}
  %0 = onnx.Less %a, %b : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  return %0 : tensor<3xf32>
}

// -----

func.func @slice_past_end(%x: tensor<2x4xf32>) -> tensor<2x2xf32> {
  // expected-error @+1 {{'onnx.Slice' op dimension 1 reads outside the input}}
  %0 = onnx.Slice %x {starts = array<i64: 0, 1>, steps = array<i64: 1, 3>} : tensor<2x4xf32> -> tensor<2x2xf32>
  return %0 : tensor<2x2xf32>
}

// -----

// The last index, 2 * 2^62, does not fit int64: it must not wrap into range.
func.func @slice_overflow(%x: tensor<2x4xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{'onnx.Slice' op dimension 1 reads outside the input}}
  %0 = onnx.Slice %x {starts = array<i64: 0, 0>, steps = array<i64: 1, 4611686018427387904>} : tensor<2x4xf32> -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @gather_elements_rank(%x: tensor<3x5xf32>, %i: tensor<6xi64>) -> tensor<6xf32> {
  // expected-error @+1 {{'onnx.GatherElements' op indices must have data's rank}}
  %0 = onnx.GatherElements %x, %i : (tensor<3x5xf32>, tensor<6xi64>) -> tensor<6xf32>
  return %0 : tensor<6xf32>
}

// -----

func.func @split_sizes(%x: tensor<2x6xf32>) -> tensor<2x2xf32> {
  // expected-error @+1 {{'onnx.Split' op the parts' sizes along the axis must add up to the input's}}
  %0:2 = onnx.Split %x {axis = 1 : i64} : tensor<2x6xf32> -> tensor<2x2xf32>, tensor<2x2xf32>
  return %0#0 : tensor<2x2xf32>
}

// -----

func.func @gather_elements_too_big(%x: tensor<3x5xf32>, %i: tensor<4x2xi64>) -> tensor<4x2xf32> {
  // expected-error @+1 {{'onnx.GatherElements' op indices dimension 0 (4) exceeds data's (3)}}
  %0 = onnx.GatherElements %x, %i {axis = 1 : i64} : (tensor<3x5xf32>, tensor<4x2xi64>) -> tensor<4x2xf32>
  return %0 : tensor<4x2xf32>
}

// -----

func.func @split_other_axis(%x: tensor<2x6xf32>) -> tensor<1x6xf32> {
  // expected-error @+1 {{'onnx.Split' op parts differ from the input outside the split axis}}
  %0:2 = onnx.Split %x {axis = 1 : i64} : tensor<2x6xf32> -> tensor<1x6xf32>, tensor<1x6xf32>
  return %0#0 : tensor<1x6xf32>
}

// -----

func.func @scatter_elements_reduction(%x: tensor<3x5xf32>, %i: tensor<3x2xi64>, %u: tensor<3x2xf32>) -> tensor<3x5xf32> {
  // expected-error @+1 {{'onnx.ScatterElements' op reduction must be "none", "add" or "mul", got "max"}}
  %0 = onnx.ScatterElements %x, %i, %u {reduction = "max"} : (tensor<3x5xf32>, tensor<3x2xi64>, tensor<3x2xf32>) -> tensor<3x5xf32>
  return %0 : tensor<3x5xf32>
}

// -----

func.func @scatter_elements_updates(%x: tensor<3x5xf32>, %i: tensor<3x2xi64>, %u: tensor<3x3xf32>) -> tensor<3x5xf32> {
  // expected-error @+1 {{'onnx.ScatterElements' op updates must have the indices' shape and data's element type}}
  %0 = onnx.ScatterElements %x, %i, %u : (tensor<3x5xf32>, tensor<3x2xi64>, tensor<3x3xf32>) -> tensor<3x5xf32>
  return %0 : tensor<3x5xf32>
}

// -----

func.func @gather_nd_depth(%x: tensor<3x5xf32>, %i: tensor<2x3xi64>) -> tensor<2xf32> {
  // expected-error @+1 {{'onnx.GatherND' op the last dimension of indices must be in [1, rank of data]}}
  %0 = onnx.GatherND %x, %i : (tensor<3x5xf32>, tensor<2x3xi64>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// -----

func.func @scatter_nd_updates(%x: tensor<3x5xf32>, %i: tensor<2x1xi64>, %u: tensor<2x4xf32>) -> tensor<3x5xf32> {
  // expected-error @+1 {{'onnx.ScatterND' op updates must be indices.shape[:-1] + data.shape[k:] of data's element type}}
  %0 = onnx.ScatterND %x, %i, %u : (tensor<3x5xf32>, tensor<2x1xi64>, tensor<2x4xf32>) -> tensor<3x5xf32>
  return %0 : tensor<3x5xf32>
}

// -----

func.func @top_k_too_many(%x: tensor<3x5xf32>) -> tensor<3x6xf32> {
  // expected-error @+1 {{'onnx.TopK' op k = 6 must be in [1, 5]}}
  %0:2 = onnx.TopK %x : (tensor<3x5xf32>) -> (tensor<3x6xf32>, tensor<3x6xi64>)
  return %0#0 : tensor<3x6xf32>
}

// -----

func.func @top_k_shapes(%x: tensor<3x5xf32>) -> tensor<3x2xf32> {
  // expected-error @+1 {{'onnx.TopK' op values and indices must be the input's shape with k along the axis}}
  %0:2 = onnx.TopK %x : (tensor<3x5xf32>) -> (tensor<3x2xf32>, tensor<2x2xi64>)
  return %0#0 : tensor<3x2xf32>
}

// -----

func.func @split_axis(%x: tensor<2x6xf32>) -> tensor<2x6xf32> {
  // expected-error @+1 {{'onnx.Split' op axis is out of range}}
  %0 = onnx.Split %x {axis = 2 : i64} : tensor<2x6xf32> -> tensor<2x6xf32>
  return %0 : tensor<2x6xf32>
}
