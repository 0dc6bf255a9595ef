// RUN: zero-opt %s -split-input-file --canonicalize | FileCheck %s

// x[..., K] @ W[K, N] is one Gemm over flattened rows, and a transposed
// matrix operand becomes Gemm's transpose flag.
// CHECK-LABEL: func.func @matmul_weight
// CHECK-SAME:      (%[[X:.*]]: tensor<2x3x4xf32>, %[[W:.*]]: tensor<5x4xf32>)
// CHECK-NEXT:    %[[FLAT:.*]] = onnx.Reshape %[[X]] : tensor<2x3x4xf32> -> tensor<6x4xf32>
// CHECK-NEXT:    %[[G:.*]] = onnx.Gemm %[[FLAT]], %[[W]] {beta = 0.000000e+00 : f32, transB = true} : (tensor<6x4xf32>, tensor<5x4xf32>) -> tensor<6x5xf32>
// CHECK-NEXT:    %[[Y:.*]] = onnx.Reshape %[[G]] : tensor<6x5xf32> -> tensor<2x3x5xf32>
// CHECK-NEXT:    return %[[Y]]
func.func @matmul_weight(%x: tensor<2x3x4xf32>, %w: tensor<5x4xf32>) -> tensor<2x3x5xf32> {
  %wt = onnx.Transpose %w {perm = array<i64: 1, 0>} : tensor<5x4xf32> -> tensor<4x5xf32>
  %y = onnx.MatMul %x, %wt : (tensor<2x3x4xf32>, tensor<4x5xf32>) -> tensor<2x3x5xf32>
  return %y : tensor<2x3x5xf32>
}

// -----

// Batched products with a batched right operand stay MatMuls.
// CHECK-LABEL: func.func @matmul_batched
// CHECK-NEXT:    onnx.MatMul
func.func @matmul_batched(%a: tensor<2x3x4xf32>, %b: tensor<2x4x5xf32>) -> tensor<2x3x5xf32> {
  %y = onnx.MatMul %a, %b : (tensor<2x3x4xf32>, tensor<2x4x5xf32>) -> tensor<2x3x5xf32>
  return %y : tensor<2x3x5xf32>
}

// -----

// Transposes compose; an identity permutation and a same-type reshape vanish.
// CHECK-LABEL: func.func @layout
// CHECK-SAME:      (%[[X:.*]]: tensor<2x3x4xf32>)
// CHECK-NEXT:    %[[T:.*]] = onnx.Transpose %[[X]] {perm = array<i64: 2, 0, 1>} : tensor<2x3x4xf32> -> tensor<4x2x3xf32>
// CHECK-NEXT:    %[[R:.*]] = onnx.Reshape %[[T]] : tensor<4x2x3xf32> -> tensor<24xf32>
// CHECK-NEXT:    return %[[X]], %[[R]]
func.func @layout(%x: tensor<2x3x4xf32>) -> (tensor<2x3x4xf32>, tensor<24xf32>) {
  %a = onnx.Transpose %x {perm = array<i64: 1, 0, 2>} : tensor<2x3x4xf32> -> tensor<3x2x4xf32>
  %b = onnx.Transpose %a {perm = array<i64: 1, 0, 2>} : tensor<3x2x4xf32> -> tensor<2x3x4xf32>
  %c = onnx.Transpose %x {perm = array<i64: 0, 2, 1>} : tensor<2x3x4xf32> -> tensor<2x4x3xf32>
  %d = onnx.Transpose %c {perm = array<i64: 1, 0, 2>} : tensor<2x4x3xf32> -> tensor<4x2x3xf32>
  %e = onnx.Reshape %d : tensor<4x2x3xf32> -> tensor<8x3xf32>
  %f = onnx.Reshape %e : tensor<8x3xf32> -> tensor<24xf32>
  return %b, %f : tensor<2x3x4xf32>, tensor<24xf32>
}
