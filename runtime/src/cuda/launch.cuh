// Launch geometry, indexing and block reductions shared by the CUDA kernel
// files (nvcc only). Every kernel follows its CPU kernel operation by
// operation: the same float expressions, double accumulators where the CPU
// uses them, and -fmad=false (CMakeLists.txt) so elementwise results match
// bit for bit; reductions differ from the CPU only in summation order.
// Outputs may alias inputs exactly: every kernel reads an element before it
// writes it, and kernels that reduce finish the reduction (a barrier) before
// writing.
#ifndef ZERO_RUNTIME_CUDA_LAUNCH_CUH
#define ZERO_RUNTIME_CUDA_LAUNCH_CUH

#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/kernels.h"

namespace zero::cuda {

constexpr int kThreads = 256;

inline int blocks_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  if (b < 1) b = 1;
  if (b > (int64_t(1) << 20)) b = int64_t(1) << 20;  // grid-stride loops cover the rest
  return int(b);
}

// Threads of a block that owns one row of `n` elements: a power of two in [32, 256].
inline int row_threads(int64_t n) {
  int t = 32;
  while (t < 256 && t < n) t *= 2;
  return t;
}

#define GRID_STRIDE(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

__device__ inline void report(int* err, int code) {
  if (err) atomicCAS(err, 0, code);
}

// Offset of element o of g's shape along operand k's strides.
__device__ __forceinline__ int64_t offset_of(const Strided& g, int k, int64_t o) {
  int64_t off = 0;
  for (int d = g.ndim - 1; d >= 0; --d) {
    const int64_t dim = g.dims[d];
    off += (o % dim) * g.s[k][d];
    o /= dim;
  }
  return off;
}

// Block-wide reductions (blockDim.x a power of two <= 256); every thread gets
// the result.
__device__ inline double block_sum(double v) {
  __shared__ double sh[256];
  __syncthreads();
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s /= 2) {
    if (int(threadIdx.x) < s) sh[threadIdx.x] += sh[threadIdx.x + s];
    __syncthreads();
  }
  return sh[0];
}

__device__ inline float block_max(float v) {
  __shared__ float sh[256];
  __syncthreads();
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s /= 2) {
    if (int(threadIdx.x) < s) sh[threadIdx.x] = fmaxf(sh[threadIdx.x], sh[threadIdx.x + s]);
    __syncthreads();
  }
  return sh[0];
}

}  // namespace zero::cuda

#endif  // ZERO_RUNTIME_CUDA_LAUNCH_CUH
