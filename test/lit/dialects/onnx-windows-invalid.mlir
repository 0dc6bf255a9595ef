// RUN: zero-opt %s -split-input-file -verify-diagnostics
// Verifier errors of the sliding-window ops over 1 to 3 spatial dimensions.

func.func @conv_rank(%x: tensor<1x2x3x4x5x6xf32>, %w: tensor<1x2x1x1x1x1xf32>) -> tensor<1x1x3x4x5x6xf32> {
  // expected-error @+1 {{'onnx.Conv' op supports 1-D to 3-D (NCL, NCHW, NCDHW) inputs only}}
  %0 = onnx.Conv %x, %w {dilations = array<i64: 1, 1, 1, 1>, group = 1 : i64, pads = array<i64: 0, 0, 0, 0, 0, 0, 0, 0>, strides = array<i64: 1, 1, 1, 1>} : (tensor<1x2x3x4x5x6xf32>, tensor<1x2x1x1x1x1xf32>) -> tensor<1x1x3x4x5x6xf32>
  return %0 : tensor<1x1x3x4x5x6xf32>
}

// -----

func.func @conv_weight_rank(%x: tensor<1x2x8xf32>, %w: tensor<3x2x3x3xf32>) -> tensor<1x3x6xf32> {
  // expected-error @+1 {{'onnx.Conv' op weight must be [M, C/group, k...] of the input's rank with M divisible by group}}
  %0 = onnx.Conv %x, %w {dilations = array<i64: 1>, group = 1 : i64, pads = array<i64: 0, 0>, strides = array<i64: 1>} : (tensor<1x2x8xf32>, tensor<3x2x3x3xf32>) -> tensor<1x3x6xf32>
  return %0 : tensor<1x3x6xf32>
}

// -----

func.func @conv_1d_pads(%x: tensor<1x2x8xf32>, %w: tensor<3x2x3xf32>) -> tensor<1x3x6xf32> {
  // expected-error @+1 {{'onnx.Conv' op needs 1 kernel sizes, strides and dilations and 2 pads for a 1-D input}}
  %0 = onnx.Conv %x, %w {dilations = array<i64: 1>, group = 1 : i64, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 1>} : (tensor<1x2x8xf32>, tensor<3x2x3xf32>) -> tensor<1x3x6xf32>
  return %0 : tensor<1x3x6xf32>
}

// -----

// 3-D: (5 + 1 + 0 - 3) / 2 + 1 = 2 along D, not 3.
func.func @conv_3d_result(%x: tensor<1x2x5x4x4xf32>, %w: tensor<3x2x3x1x1xf32>) -> tensor<1x3x3x4x4xf32> {
  // expected-error @+1 {{'onnx.Conv' op result type does not match the convolution}}
  %0 = onnx.Conv %x, %w {dilations = array<i64: 1, 1, 1>, group = 1 : i64, pads = array<i64: 1, 0, 0, 0, 0, 0>, strides = array<i64: 2, 1, 1>} : (tensor<1x2x5x4x4xf32>, tensor<3x2x3x1x1xf32>) -> tensor<1x3x3x4x4xf32>
  return %0 : tensor<1x3x3x4x4xf32>
}

// -----

// Dilation 3 spans 4 positions: (7 - 4) / 1 + 1 = 4 windows, not 6.
func.func @max_pool_dilations(%x: tensor<1x1x7xf32>) -> (tensor<1x1x6xf32>, tensor<1x1x6xi64>) {
  // expected-error @+1 {{'onnx.MaxPool' op result type does not match the pooling window}}
  %0:2 = onnx.MaxPool %x {dilations = array<i64: 3>, kernel_shape = array<i64: 2>, pads = array<i64: 0, 0>, strides = array<i64: 1>} : (tensor<1x1x7xf32>) -> (tensor<1x1x6xf32>, tensor<1x1x6xi64>)
  return %0#0, %0#1 : tensor<1x1x6xf32>, tensor<1x1x6xi64>
}

// -----

func.func @max_pool_dilations_rank(%x: tensor<1x1x7x7xf32>) -> (tensor<1x1x6x6xf32>, tensor<1x1x6x6xi64>) {
  // expected-error @+1 {{'onnx.MaxPool' op needs 2 kernel sizes, strides and dilations and 4 pads for a 2-D input}}
  %0:2 = onnx.MaxPool %x {dilations = array<i64: 1>, kernel_shape = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 1, 1>} : (tensor<1x1x7x7xf32>) -> (tensor<1x1x6x6xf32>, tensor<1x1x6x6xi64>)
  return %0#0, %0#1 : tensor<1x1x6x6xf32>, tensor<1x1x6x6xi64>
}

// -----

// The Conv from the result to the input: weight [C, M/group, k...].
func.func @conv_transpose_weight(%x: tensor<1x2x4xf32>, %w: tensor<3x2x3xf32>) -> tensor<1x2x6xf32> {
  // expected-error @+1 {{'onnx.ConvTranspose' op weight dimension 0 must be the input's channels}}
  %0 = onnx.ConvTranspose %x, %w {dilations = array<i64: 1>, group = 1 : i64, pads = array<i64: 0, 0>, strides = array<i64: 1>} : (tensor<1x2x4xf32>, tensor<3x2x3xf32>) -> tensor<1x2x6xf32>
  return %0 : tensor<1x2x6xf32>
}

// -----

// Stride 2 from 4 positions covers 2 * 3 + 3 = 9; 11 adds 2, not below the stride.
func.func @conv_transpose_size(%x: tensor<1x2x4xf32>, %w: tensor<2x3x3xf32>) -> tensor<1x3x11xf32> {
  // expected-error @+1 {{'onnx.ConvTranspose' op result type does not match the transposed convolution (its padding beyond the covered size must be below the stride)}}
  %0 = onnx.ConvTranspose %x, %w {dilations = array<i64: 1>, group = 1 : i64, pads = array<i64: 0, 0>, strides = array<i64: 2>} : (tensor<1x2x4xf32>, tensor<2x3x3xf32>) -> tensor<1x3x11xf32>
  return %0 : tensor<1x3x11xf32>
}

// -----

func.func @conv_transpose_batch(%x: tensor<1x2x4xf32>, %w: tensor<2x3x3xf32>) -> tensor<2x3x6xf32> {
  // expected-error @+1 {{'onnx.ConvTranspose' op result must be [N, ...] of the input's rank}}
  %0 = onnx.ConvTranspose %x, %w {dilations = array<i64: 1>, group = 1 : i64, pads = array<i64: 0, 0>, strides = array<i64: 1>} : (tensor<1x2x4xf32>, tensor<2x3x3xf32>) -> tensor<2x3x6xf32>
  return %0 : tensor<2x3x6xf32>
}
