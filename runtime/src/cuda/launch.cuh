// Launch geometry and indexing shared by the CUDA kernel files (nvcc only).
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

}  // namespace zero::cuda

#endif  // ZERO_RUNTIME_CUDA_LAUNCH_CUH
