// Kernel scratch: the working memory a kernel needs beyond its operands, as a
// function of the instruction's shapes, written once. The runtime's prepare
// sizes a session's scratch with these (runtime/src/cpu, runtime/src/cuda)
// and the compiler's memory report (codegen/MemoryReport.cpp, zero-opt
// --report) counts the same figure into the peak, so the two agree.
// Dependency-free (nvcc compiles it too).
#ifndef ZERO_KERNEL_SCRATCH_H
#define ZERO_KERNEL_SCRATCH_H

#include <cstdint>

namespace zero::kernel_scratch {

// Caps on the floats of one Conv chunk's scratch (at least one image is always
// taken). CPU: 16 MiB keeps a chunk's columns near the last-level cache;
// larger chunks measured no faster. CUDA: 128 MiB. Tests lower them
// (set_cpu_conv_scratch_limit, set_cuda_conv_scratch_limit).
constexpr int64_t kCpuConvChunkFloats = int64_t(1) << 22;
constexpr int64_t kCudaConvChunkFloats = int64_t(1) << 25;

// A convolution x [n, c, in...] * w [m, c/group, kernel...] -> y [n, m,
// out...] over 1 to 3 spatial dimensions: `in_plane`, `out_plane` and
// `kernel` are the products of x's, y's and w's spatial sizes.
struct ConvDims {
  int64_t n, c, in_plane, m, out_plane, group, kernel;

  constexpr int64_t kdim() const { return c / group * kernel; }  // im2col rows per image
  constexpr int64_t plane() const { return out_plane; }
  constexpr int64_t mg() const { return m / group; }
};

constexpr int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
constexpr int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// Images per chunk when each image takes `rows` scratch rows of OH*OW floats
// under `cap` floats; one GEMM's columns (chunk * OH*OW) must fit an int.
constexpr int64_t conv_chunk(const ConvDims& d, int64_t rows, int64_t cap) {
  const int64_t per_image = max64(1, rows * d.plane());
  const int64_t nc = min64(max64(1, cap / per_image), max64(d.n, 1));
  return max64(1, min64(nc, int64_t(0x7fffffff) / max64(1, d.plane())));
}

// CPU Conv, ConvGradInput and ConvGradWeight (im2col + GEMM over chunks of
// conv_chunk(d, kdim, cap) images): a chunk's columns [kdim, chunk * plane]
// and, for chunks of more than one image, one group's y (Conv) or dy (the
// gradients) as [m/group, chunk * plane].
constexpr uint64_t cpu_conv_bytes(const ConvDims& d, int64_t cap = kCpuConvChunkFloats) {
  const int64_t nc = conv_chunk(d, d.kdim(), cap);
  return uint64_t(d.kdim() * nc * d.plane() + (nc > 1 ? d.mg() * nc * d.plane() : 0)) * sizeof(float);
}

// CPU ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL2: a
// double accumulator per output.
constexpr uint64_t cpu_reduce_bytes(int64_t out_numel) { return uint64_t(out_numel) * sizeof(double); }
// CPU SoftmaxCrossEntropyLoss/NegativeLogLikelihoodLoss: the loss of each of
// the `labels` positions in double.
constexpr uint64_t cpu_loss_bytes(int64_t labels) { return uint64_t(labels) * sizeof(double); }
// CPU Gather/GatherGrad: the `indices` normalized into [0, n).
constexpr uint64_t cpu_gather_bytes(int64_t indices) { return uint64_t(indices) * sizeof(int64_t); }
// CPU TopK: the order of one row of `n` elements.
constexpr uint64_t cpu_top_k_bytes(int64_t n) { return uint64_t(n) * sizeof(int64_t); }
// CPU LayerNormalizationGrad: dscale and dbias over the `inner` normalized
// elements, accumulated in double.
constexpr uint64_t cpu_layer_norm_grad_bytes(int64_t inner) { return uint64_t(2 * inner) * sizeof(double); }

// CUDA Conv: the columns of a chunk (none when y is empty or kdim is 0).
constexpr uint64_t cuda_conv_bytes(const ConvDims& d, int64_t cap = kCudaConvChunkFloats) {
  if (d.n * d.m * d.plane() == 0 || d.kdim() == 0) return 0;
  return uint64_t(d.kdim() * conv_chunk(d, d.kdim(), cap) * d.plane()) * sizeof(float);
}

// CUDA ConvGradInput: the columns of a chunk (none when dx is empty or
// m/group is 0).
constexpr uint64_t cuda_conv_grad_input_bytes(const ConvDims& d, int64_t cap = kCudaConvChunkFloats) {
  if (d.n * d.c * d.in_plane == 0 || d.mg() == 0) return 0;
  return uint64_t(d.kdim() * conv_chunk(d, d.kdim(), cap) * d.plane()) * sizeof(float);
}

// CUDA ConvGradWeight: a chunk's columns and its dy of one group
// ([kdim + m/group, chunk * plane]; none when dw is empty).
constexpr uint64_t cuda_conv_grad_weight_bytes(const ConvDims& d, int64_t cap = kCudaConvChunkFloats) {
  if (d.m * d.kdim() == 0) return 0;
  const int64_t rows = d.kdim() + d.mg();
  return uint64_t(rows * conv_chunk(d, rows, cap) * d.plane()) * sizeof(float);
}

// CUDA Reduce* (as the CPU's): few outputs over many elements split each
// output's `count` elements into slices of kReduceSliceLen (kReduceBlocks
// blocks in all, at most) whose double partial sums go to scratch.
constexpr int64_t kReduceBlocks = 1024, kReduceSliceLen = 4096;
constexpr int64_t reduce_slices(int64_t out_numel, int64_t count) {
  if (out_numel <= 0 || out_numel >= kReduceBlocks || count < 2 * kReduceSliceLen) return 1;
  return min64((count + kReduceSliceLen - 1) / kReduceSliceLen, (kReduceBlocks + out_numel - 1) / out_numel);
}
// The partial sums, or, unsliced with the output in the input's bytes
// (`in_place`, a real reduction), a copy of the input to reduce from.
constexpr uint64_t cuda_reduce_bytes(int64_t in_numel, int64_t out_numel, int64_t count, bool in_place) {
  const int64_t slices = reduce_slices(out_numel, count);
  if (slices > 1) return uint64_t(out_numel * slices) * sizeof(double);
  return in_place && out_numel != in_numel ? uint64_t(in_numel) * sizeof(float) : 0;
}

// CUDA LayerNormalizationGrad with dscale/dbias outputs: their double partial
// sums over chunks of kLayerNormParamRows rows (at most 2^20 / inner chunks).
constexpr int64_t kLayerNormParamRows = 64;
constexpr int64_t layer_norm_chunks(int64_t outer, int64_t inner) {
  const int64_t cap = max64(1, (int64_t(1) << 20) / max64(1, inner));
  return max64(1, min64((outer + kLayerNormParamRows - 1) / kLayerNormParamRows, cap));
}
constexpr uint64_t cuda_layer_norm_grad_bytes(int64_t outer, int64_t inner, bool param_grads) {
  return param_grads ? uint64_t(2 * layer_norm_chunks(outer, inner) * inner) * sizeof(double) : 0;
}

// CUDA SoftmaxCrossEntropyLoss/NegativeLogLikelihoodLoss over `labels`
// positions: a double per position and two totals; their gradients: the two
// totals.
constexpr uint64_t cuda_loss_bytes(int64_t labels) { return uint64_t(labels + 2) * sizeof(double); }
constexpr uint64_t cuda_loss_grad_bytes() { return 2 * sizeof(double); }

}  // namespace zero::kernel_scratch

#endif  // ZERO_KERNEL_SCRATCH_H
