// CUDA kernels: reductions, layout (Transpose, Expand) and indexing (Gather, Slice, Concat, Where). Semantics follow
// the CPU kernels of the same family (runtime/src/cpu/) operation by operation; see kernels.h for the launchers'
// contracts.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "cuda/kernels.h"
#include "cuda/launch.cuh"
#include "zero/kernel_scratch.h"

namespace zero::cuda {
namespace {

// How many slices a split reduction takes: kernel_scratch::reduce_slices
// (zero/kernel_scratch.h, which also sizes their partial sums).
// At most this many elements per output: one thread per output.
constexpr int64_t kRowsMax = 32;

// ---- layout ---------------------------------------------------------------

template <class T>
__global__ void strided_gather_k(const T* src, T* dst, Strided g, int64_t n) {
  GRID_STRIDE(i, n) dst[i] = src[offset_of(g, 0, i)];
}

__global__ void strided_scatter_k(const float* src, float* dst, Strided g, int64_t n) {
  GRID_STRIDE(i, n) dst[offset_of(g, 0, i)] = src[i];
}

template <class T>
__global__ void where_k(const int64_t* c, const T* x, const T* y, T* out, Strided g, int64_t n) {
  GRID_STRIDE(i, n) out[i] = c[offset_of(g, 0, i)] != 0 ? x[offset_of(g, 1, i)] : y[offset_of(g, 2, i)];
}

// A block's values combined as reduce::combine (block_sum's tree for the sums).
__device__ double block_reduce(reduce::Kind kind, double v) {
  __shared__ double sh[256];
  __syncthreads();
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s /= 2) {
    if (int(threadIdx.x) < s) sh[threadIdx.x] = reduce::combine(kind, sh[threadIdx.x], sh[threadIdx.x + s]);
    __syncthreads();
  }
  return sh[0];
}

// One block per output element.
__global__ void reduce_k(const float* x, float* y, Strided kept, Strided red, int64_t count, reduce::Kind kind) {
  const int64_t o = blockIdx.x;
  const int64_t base = offset_of(kept, 0, o);
  double acc = reduce::init(kind);
  for (int64_t r = threadIdx.x; r < count; r += blockDim.x)
    acc = reduce::combine(kind, acc, reduce::load(kind, x[base + offset_of(red, 0, r)]));
  acc = block_reduce(kind, acc);
  if (threadIdx.x == 0) y[o] = reduce::finish(kind, acc, count);
}

// One thread per output element, for few elements per output (a block per
// output would leave most of its threads idle).
__global__ void reduce_rows_k(const float* x, float* y, Strided kept, Strided red, int64_t out_numel, int64_t count,
                              reduce::Kind kind) {
  GRID_STRIDE(o, out_numel) {
    const int64_t base = offset_of(kept, 0, o);
    double acc = reduce::init(kind);
    for (int64_t r = 0; r < count; ++r)
      acc = reduce::combine(kind, acc, reduce::load(kind, x[base + offset_of(red, 0, r)]));
    y[o] = reduce::finish(kind, acc, count);
  }
}

// Few outputs over many elements: block b reduces slice b % slices of output
// b / slices into partial[b]; reduce_finish_k combines the slices in order.
__global__ void reduce_partial_k(const float* x, double* partial, Strided kept, Strided red, int64_t count,
                                 int64_t slices, reduce::Kind kind) {
  const int64_t b = blockIdx.x, o = b / slices, len = (count + slices - 1) / slices;
  const int64_t r0 = (b % slices) * len, r1 = r0 + len < count ? r0 + len : count;
  const int64_t base = offset_of(kept, 0, o);
  double acc = reduce::init(kind);
  for (int64_t r = r0 + threadIdx.x; r < r1; r += blockDim.x)
    acc = reduce::combine(kind, acc, reduce::load(kind, x[base + offset_of(red, 0, r)]));
  acc = block_reduce(kind, acc);
  if (threadIdx.x == 0) partial[b] = acc;
}

__global__ void reduce_finish_k(const double* partial, float* y, int64_t out_numel, int64_t slices, int64_t count,
                                reduce::Kind kind) {
  GRID_STRIDE(o, out_numel) {
    double acc = reduce::init(kind);
    for (int64_t s = 0; s < slices; ++s) acc = reduce::combine(kind, acc, partial[o * slices + s]);
    y[o] = reduce::finish(kind, acc, count);
  }
}

// ---- ArgMax, ArgMin, CumSum (one thread per row, as the CPU's loops) --------

template <bool kMax>
__global__ void arg_reduce_k(const float* x, int64_t* y, int64_t outer, int64_t n, int64_t inner, bool last) {
  GRID_STRIDE(e, outer * inner) {
    const int64_t o = e / inner, i = e % inner;
    const float* row = x + o * n * inner + i;
    int64_t best = 0;
    float b = row[0];
    for (int64_t k = 1; k < n && !isnan(b); ++k) {
      const float v = row[k * inner];
      if (isnan(v) || (kMax ? v > b : v < b) || (last && v == b)) best = k, b = v;
    }
    y[e] = best;
  }
}

template <class T, class Acc>
__global__ void cumsum_k(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool exclusive, bool reverse) {
  GRID_STRIDE(e, outer * inner) {
    const int64_t o = e / inner, i = e % inner;
    Acc acc = 0;
    for (int64_t j = 0; j < n; ++j) {
      const int64_t at = (o * n + (reverse ? n - 1 - j : j)) * inner + i;
      const T v = x[at];
      if (!exclusive) acc += v;
      y[at] = T(acc);
      if (exclusive) acc += v;
    }
  }
}

// ---- Gather ---------------------------------------------------------------

// An index normalized into [0, n), or -1 (reported in err) when out of [-n, n).
__device__ int64_t gather_index(int64_t j, int64_t n, int code, int* err) {
  if (j < -n || j >= n) {
    report(err, code);
    return -1;
  }
  return j < 0 ? j + n : j;
}

template <class T>
__global__ void gather_k(const T* data, const int64_t* idx, T* y, int64_t outer, int64_t n, int64_t inner, int64_t q,
                         int code, int* err) {
  GRID_STRIDE(e, outer * q * inner) {
    const int64_t i = e % inner, k = (e / inner) % q, o = e / (inner * q);
    const int64_t j = gather_index(idx[k], n, code, err);
    if (j < 0) continue;
    y[e] = data[(o * n + j) * inner + i];
  }
}

__global__ void gather_grad_k(const float* dy, const int64_t* idx, float* dd, int64_t outer, int64_t n, int64_t inner,
                              int64_t q, int code, int* err) {
  GRID_STRIDE(e, outer * q * inner) {
    const int64_t i = e % inner, k = (e / inner) % q, o = e / (inner * q);
    const int64_t j = gather_index(idx[k], n, code, err);
    if (j < 0) continue;
    atomicAdd(dd + (o * n + j) * inner + i, dy[e]);
  }
}

}  // namespace

cudaError_t strided_gather(cudaStream_t st, const void* src, void* dst, int elem, const Strided& g, int64_t n) {
  if (n == 0) return cudaSuccess;
  if (elem == 8)
    strided_gather_k<int64_t>
        <<<blocks_for(n), kThreads, 0, st>>>(static_cast<const int64_t*>(src), static_cast<int64_t*>(dst), g, n);
  else
    strided_gather_k<float>
        <<<blocks_for(n), kThreads, 0, st>>>(static_cast<const float*>(src), static_cast<float*>(dst), g, n);
  return cudaGetLastError();
}

cudaError_t strided_scatter(cudaStream_t st, const float* src, float* dst, const Strided& g, int64_t n) {
  if (n == 0) return cudaSuccess;
  strided_scatter_k<<<blocks_for(n), kThreads, 0, st>>>(src, dst, g, n);
  return cudaGetLastError();
}

cudaError_t where(cudaStream_t st, const int64_t* cond, const void* x, const void* y, void* out, int elem,
                  const Strided& g, int64_t n) {
  if (n == 0) return cudaSuccess;
  if (elem == 8)
    where_k<int64_t><<<blocks_for(n), kThreads, 0, st>>>(
        cond, static_cast<const int64_t*>(x), static_cast<const int64_t*>(y), static_cast<int64_t*>(out), g, n);
  else
    where_k<float><<<blocks_for(n), kThreads, 0, st>>>(cond, static_cast<const float*>(x), static_cast<const float*>(y),
                                                       static_cast<float*>(out), g, n);
  return cudaGetLastError();
}

cudaError_t reduce(cudaStream_t st, const float* x, float* y, const Strided& kept, int64_t out_numel,
                   const Strided& red, int64_t count, reduce::Kind kind, double* partial) {
  if (out_numel == 0) return cudaSuccess;
  const int64_t slices = kernel_scratch::reduce_slices(out_numel, count);
  if (slices > 1) {
    reduce_partial_k<<<unsigned(out_numel * slices), kThreads, 0, st>>>(x, partial, kept, red, count, slices, kind);
    reduce_finish_k<<<blocks_for(out_numel), kThreads, 0, st>>>(partial, y, out_numel, slices, count, kind);
  } else if (count <= kRowsMax) {
    reduce_rows_k<<<blocks_for(out_numel), kThreads, 0, st>>>(x, y, kept, red, out_numel, count, kind);
  } else {
    reduce_k<<<unsigned(out_numel), row_threads(count), 0, st>>>(x, y, kept, red, count, kind);
  }
  return cudaGetLastError();
}

cudaError_t arg_reduce(cudaStream_t st, const float* x, int64_t* y, int64_t outer, int64_t n, int64_t inner, bool max,
                       bool last) {
  if (outer * inner == 0) return cudaSuccess;
  if (max)
    arg_reduce_k<true><<<blocks_for(outer * inner), kThreads, 0, st>>>(x, y, outer, n, inner, last);
  else
    arg_reduce_k<false><<<blocks_for(outer * inner), kThreads, 0, st>>>(x, y, outer, n, inner, last);
  return cudaGetLastError();
}

cudaError_t cumsum(cudaStream_t st, const void* x, void* y, bool f32, int64_t outer, int64_t n, int64_t inner,
                   bool exclusive, bool reverse) {
  if (outer * inner * n == 0) return cudaSuccess;
  if (f32)
    cumsum_k<float, double><<<blocks_for(outer * inner), kThreads, 0, st>>>(
        static_cast<const float*>(x), static_cast<float*>(y), outer, n, inner, exclusive, reverse);
  else
    cumsum_k<int64_t, int64_t><<<blocks_for(outer * inner), kThreads, 0, st>>>(
        static_cast<const int64_t*>(x), static_cast<int64_t*>(y), outer, n, inner, exclusive, reverse);
  return cudaGetLastError();
}

cudaError_t gather(cudaStream_t st, const void* data, const int64_t* idx, void* y, int elem, int64_t outer, int64_t n,
                   int64_t inner, int64_t q, int opcode, int* err) {
  const int64_t total = outer * q * inner;
  if (total == 0) return cudaSuccess;
  const int code = kErrIndex * 1024 + opcode;
  if (elem == 8)
    gather_k<int64_t><<<blocks_for(total), kThreads, 0, st>>>(static_cast<const int64_t*>(data), idx,
                                                              static_cast<int64_t*>(y), outer, n, inner, q, code, err);
  else
    gather_k<float><<<blocks_for(total), kThreads, 0, st>>>(static_cast<const float*>(data), idx,
                                                            static_cast<float*>(y), outer, n, inner, q, code, err);
  return cudaGetLastError();
}

cudaError_t gather_grad(cudaStream_t st, const float* dy, const int64_t* idx, float* dd, int64_t outer, int64_t n,
                        int64_t inner, int64_t q, int opcode, int* err) {
  const int64_t total = outer * q * inner;
  if (total == 0) return cudaSuccess;
  gather_grad_k<<<blocks_for(total), kThreads, 0, st>>>(dy, idx, dd, outer, n, inner, q, kErrIndex * 1024 + opcode,
                                                        err);
  return cudaGetLastError();
}

}  // namespace zero::cuda
