// RUN: zero-opt %s | FileCheck %s
// Round trip: the printed form parses back to the same IR.
// RUN: zero-opt %s | zero-opt | FileCheck %s

// CHECK-LABEL: func.func @ops(
func.func @ops(%a: tensor<2x3xf32>, %b: tensor<3xf32>, %w: tensor<4x3xf32>, %y: tensor<2xi64>) -> tensor<f32> {
  // CHECK: onnx.Add %{{.*}}, %{{.*}} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %0 = onnx.Add %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  // CHECK: onnx.Pow %{{.*}}, %{{.*}} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %1 = onnx.Pow %0, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  // CHECK: onnx.Tanh %{{.*}} : tensor<2x3xf32>
  %2 = onnx.Tanh %1 : tensor<2x3xf32>
  // CHECK: onnx.Gemm %{{.*}}, %{{.*}}, %{{.*}} {alpha = 5.000000e-01 : f32, beta = 2.000000e+00 : f32, transB = true} : (tensor<2x3xf32>, tensor<4x3xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %c = onnx.Constant dense<0.0> : tensor<2x4xf32>
  %3 = onnx.Gemm %2, %w, %c {alpha = 0.5 : f32, beta = 2.0 : f32, transB = true} : (tensor<2x3xf32>, tensor<4x3xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  // CHECK: onnx.MatMul %{{.*}}, %{{.*}} : (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
  %4 = onnx.MatMul %3, %w : (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
  // CHECK: onnx.Transpose %{{.*}} {perm = array<i64: 1, 0>} : tensor<2x3xf32> -> tensor<3x2xf32>
  %5 = onnx.Transpose %4 {perm = array<i64: 1, 0>} : tensor<2x3xf32> -> tensor<3x2xf32>
  // CHECK: onnx.Reshape %{{.*}} : tensor<3x2xf32> -> tensor<2x3xf32>
  %6 = onnx.Reshape %5 : tensor<3x2xf32> -> tensor<2x3xf32>
  // CHECK: onnx.Softmax %{{.*}} {axis = 0 : i64} : tensor<2x3xf32>
  %7 = onnx.Softmax %6 {axis = 0 : i64} : tensor<2x3xf32>
  // The default axis (-1) is not printed.
  // CHECK: onnx.LogSoftmax %{{.*}} : tensor<2x3xf32>
  %8 = onnx.LogSoftmax %7 {axis = -1 : i64} : tensor<2x3xf32>
  // CHECK: onnx.ReduceMean %{{.*}} {axes = array<i64: 1>} : tensor<2x3xf32> -> tensor<2x1xf32>
  %9 = onnx.ReduceMean %8 {axes = array<i64: 1>} : tensor<2x3xf32> -> tensor<2x1xf32>
  // CHECK: onnx.Expand %{{.*}} : tensor<2x1xf32> -> tensor<2x3xf32>
  %10 = onnx.Expand %9 : tensor<2x1xf32> -> tensor<2x3xf32>
  // CHECK: onnx.Cast %{{.*}} : tensor<2xi64> -> tensor<2xf32>
  %11 = onnx.Cast %y : tensor<2xi64> -> tensor<2xf32>
  // CHECK: onnx.NegativeLogLikelihoodLoss %{{.*}}, %{{.*}} {ignore_index = -1 : i64, reduction = "sum"} : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<f32>
  %12 = onnx.NegativeLogLikelihoodLoss %10, %y {ignore_index = -1 : i64, reduction = "sum"} : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<f32>
  // CHECK: onnx.SoftmaxCrossEntropyLoss %{{.*}}, %{{.*}} {reduction = "none"} : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<2xf32>, tensor<2x3xf32>
  %13:2 = onnx.SoftmaxCrossEntropyLoss %10, %y {reduction = "none"} : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<2xf32>, tensor<2x3xf32>
  // CHECK: onnx.SoftmaxCrossEntropyLoss %{{.*}}, %{{.*}}, %{{.*}} : (tensor<2x3xf32>, tensor<2xi64>, tensor<3xf32>) -> tensor<f32>
  %w3 = onnx.Constant dense<[1.0, 2.0, 0.5]> : tensor<3xf32>
  %sce_w = onnx.SoftmaxCrossEntropyLoss %10, %y, %w3 : (tensor<2x3xf32>, tensor<2xi64>, tensor<3xf32>) -> tensor<f32>
  // CHECK: onnx.NegativeLogLikelihoodLoss %{{.*}}, %{{.*}}, %{{.*}} {reduction = "none"} : (tensor<2x3xf32>, tensor<2xi64>, tensor<3xf32>) -> tensor<2xf32>
  %nll_w = onnx.NegativeLogLikelihoodLoss %10, %y, %w3 {reduction = "none"} : (tensor<2x3xf32>, tensor<2xi64>, tensor<3xf32>) -> tensor<2xf32>
  // CHECK: onnx.ReduceSum %{{.*}} {axes = array<i64>, keepdims = false} : tensor<2xf32> -> tensor<f32>
  %14 = onnx.ReduceSum %13#0 {axes = array<i64>, keepdims = false} : tensor<2xf32> -> tensor<f32>
  return %14 : tensor<f32>
}

// ceil_mode rounds the pooled size up (7x5 -> 4x3, floor 3x2); false is not printed.
// CHECK-LABEL: func.func @pools(
func.func @pools(%x: tensor<1x1x7x5xf32>) -> (tensor<1x1x4x3xf32>, tensor<1x1x3x2xf32>) {
  // CHECK: onnx.MaxPool %{{.*}} {ceil_mode = true, kernel_shape = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 2, 2>} : (tensor<1x1x7x5xf32>) -> (tensor<1x1x4x3xf32>, tensor<1x1x4x3xi64>)
  %m:2 = onnx.MaxPool %x {ceil_mode = true, kernel_shape = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 2, 2>} : (tensor<1x1x7x5xf32>) -> (tensor<1x1x4x3xf32>, tensor<1x1x4x3xi64>)
  // CHECK: onnx.AveragePool %{{.*}} {count_include_pad = false, kernel_shape = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 2, 2>} : (tensor<1x1x7x5xf32>) -> tensor<1x1x3x2xf32>
  %a = onnx.AveragePool %x {ceil_mode = false, count_include_pad = false, kernel_shape = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 2, 2>} : (tensor<1x1x7x5xf32>) -> tensor<1x1x3x2xf32>
  return %m#0, %a : tensor<1x1x4x3xf32>, tensor<1x1x3x2xf32>
}

// Indexing by index tensors (and their gradient ops) print and parse back.
// CHECK-LABEL: func.func @indexing(
func.func @indexing(%x: tensor<3x5xf32>, %i: tensor<3x2xi64>, %u: tensor<3x2xf32>, %t: tensor<2x1xi64>,
                    %r: tensor<2x5xf32>, %k: tensor<1xi64>) -> (tensor<3x2xf32>, tensor<3x5xf32>, tensor<2x5xf32>,
                    tensor<3x5xf32>, tensor<3x2xf32>, tensor<3x2xi64>, tensor<3x2xf32>, tensor<3x5xf32>,
                    tensor<3x5xf32>, tensor<3x5xf32>, tensor<3x5xf32>) {
  // CHECK: onnx.GatherElements %{{.*}}, %{{.*}} {axis = 1 : i64} : (tensor<3x5xf32>, tensor<3x2xi64>) -> tensor<3x2xf32>
  %0 = onnx.GatherElements %x, %i {axis = 1 : i64} : (tensor<3x5xf32>, tensor<3x2xi64>) -> tensor<3x2xf32>
  // CHECK: onnx.ScatterElements %{{.*}}, %{{.*}}, %{{.*}} {axis = -1 : i64, reduction = "add"} : (tensor<3x5xf32>, tensor<3x2xi64>, tensor<3x2xf32>) -> tensor<3x5xf32>
  %1 = onnx.ScatterElements %x, %i, %u {axis = -1 : i64, reduction = "add"} : (tensor<3x5xf32>, tensor<3x2xi64>, tensor<3x2xf32>) -> tensor<3x5xf32>
  // CHECK: onnx.GatherND %{{.*}}, %{{.*}} : (tensor<3x5xf32>, tensor<2x1xi64>) -> tensor<2x5xf32>
  %2 = onnx.GatherND %x, %t : (tensor<3x5xf32>, tensor<2x1xi64>) -> tensor<2x5xf32>
  // CHECK: onnx.ScatterND %{{.*}}, %{{.*}}, %{{.*}} : (tensor<3x5xf32>, tensor<2x1xi64>, tensor<2x5xf32>) -> tensor<3x5xf32>
  %3 = onnx.ScatterND %x, %t, %r : (tensor<3x5xf32>, tensor<2x1xi64>, tensor<2x5xf32>) -> tensor<3x5xf32>
  // CHECK: onnx.TopK %{{.*}} {axis = 1 : i64, largest = false} : (tensor<3x5xf32>) -> (tensor<3x2xf32>, tensor<3x2xi64>)
  %4:2 = onnx.TopK %x {axis = 1 : i64, largest = false} : (tensor<3x5xf32>) -> (tensor<3x2xf32>, tensor<3x2xi64>)
  // CHECK: onnx.TopK %{{.*}}, %{{.*}} : (tensor<3x5xf32>, tensor<1xi64>) -> (tensor<3x2xf32>, tensor<3x2xi64>)
  %5:2 = onnx.TopK %x, %k : (tensor<3x5xf32>, tensor<1xi64>) -> (tensor<3x2xf32>, tensor<3x2xi64>)
  // CHECK: zero.gather_elements_grad %{{.*}}, %{{.*}} {axis = 1 : i64} : (tensor<3x2xf32>, tensor<3x2xi64>) -> tensor<3x5xf32>
  %6 = zero.gather_elements_grad %0, %i {axis = 1 : i64} : (tensor<3x2xf32>, tensor<3x2xi64>) -> tensor<3x5xf32>
  // CHECK: zero.scatter_elements_grad %{{.*}}, %{{.*}} {axis = 1 : i64} : (tensor<3x5xf32>, tensor<3x2xi64>) -> tensor<3x5xf32>
  %7 = zero.scatter_elements_grad %1, %i {axis = 1 : i64} : (tensor<3x5xf32>, tensor<3x2xi64>) -> tensor<3x5xf32>
  // CHECK: zero.gather_nd_grad %{{.*}}, %{{.*}} : (tensor<2x5xf32>, tensor<2x1xi64>) -> tensor<3x5xf32>
  %8 = zero.gather_nd_grad %2, %t : (tensor<2x5xf32>, tensor<2x1xi64>) -> tensor<3x5xf32>
  // CHECK: zero.scatter_nd_grad %{{.*}}, %{{.*}} : (tensor<3x5xf32>, tensor<2x1xi64>) -> tensor<3x5xf32>
  %9 = zero.scatter_nd_grad %3, %t : (tensor<3x5xf32>, tensor<2x1xi64>) -> tensor<3x5xf32>
  return %0, %1, %2, %3, %4#0, %4#1, %5#0, %6, %7, %8, %9 : tensor<3x2xf32>, tensor<3x5xf32>, tensor<2x5xf32>, tensor<3x5xf32>, tensor<3x2xf32>, tensor<3x2xi64>, tensor<3x2xf32>, tensor<3x5xf32>, tensor<3x5xf32>, tensor<3x5xf32>, tensor<3x5xf32>
}

// CHECK-LABEL: func.func @split(
func.func @split(%x: tensor<2x6xf32>) -> (tensor<2x1xf32>, tensor<2x5xf32>) {
  // CHECK: onnx.Split %{{.*}} {axis = -1 : i64} : tensor<2x6xf32> -> tensor<2x1xf32>, tensor<2x5xf32>
  %0:2 = onnx.Split %x {axis = -1 : i64} : tensor<2x6xf32> -> tensor<2x1xf32>, tensor<2x5xf32>
  return %0#0, %0#1 : tensor<2x1xf32>, tensor<2x5xf32>
}
