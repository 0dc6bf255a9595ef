// CUDA kernels: reductions, layout (Transpose, Expand) and indexing (Gather, Slice, Concat, Where, GatherElements,
// ScatterElements, GatherND, ScatterND, TopK). Semantics follow
// the CPU kernels of the same family (runtime/src/cpu/) operation by operation; see kernels.h for the launchers'
// contracts.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "cuda/kernels.h"
#include "cuda/launch.cuh"
#include "zero/index_ops.h"
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

// ---- GatherElements, ScatterElements, GatherND, ScatterND, TopK -----------

template <class T>
__global__ void gather_elements_k(ElementsArgs a, const T* data, const int64_t* idx, T* y, int code, int* err) {
  GRID_STRIDE(r, a.nrows) {
    const int64_t ib = offset_of(a.rows, 0, r), db = offset_of(a.rows, 1, r);
    for (int64_t j = 0; j < a.len; ++j) {
      const int64_t at = ib + j * a.istep, m = gather_index(idx[at], a.n, code, err);
      if (m < 0) break;
      y[at] = data[db + m * a.dstep];
    }
  }
}

template <class T>
__global__ void scatter_elements_k(ElementsArgs a, const int64_t* idx, const T* u, T* y, index::Scatter kind, int code,
                                   int* err) {
  GRID_STRIDE(r, a.nrows) {
    const int64_t ib = offset_of(a.rows, 0, r), db = offset_of(a.rows, 1, r);
    for (int64_t j = 0; j < a.len; ++j) {
      const int64_t at = ib + j * a.istep, m = gather_index(idx[at], a.n, code, err);
      if (m < 0) break;
      T* d = y + db + m * a.dstep;
      *d = u ? index::combine(kind, *d, u[at]) : T(0);
    }
  }
}

__global__ void gather_elements_grad_k(ElementsArgs a, const float* dy, const int64_t* idx, float* dd, int code,
                                       int* err) {
  GRID_STRIDE(r, a.nrows) {
    const int64_t ib = offset_of(a.rows, 0, r), db = offset_of(a.rows, 1, r);
    for (int64_t j = 0; j < a.len; ++j) {
      const int64_t at = ib + j * a.istep, m = gather_index(idx[at], a.n, code, err);
      if (m < 0) break;
      dd[db + m * a.dstep] += dy[at];
    }
  }
}

// The element offset in data of tuple t's slice, or -1 (reported) when an
// index is out of range.
__device__ int64_t nd_offset(const NDArgs& a, const int64_t* idx, int64_t t, int code, int* err) {
  int64_t off = 0;
  for (int64_t j = 0; j < a.k; ++j) {
    const int64_t m = gather_index(idx[t * a.k + j], a.dims[j], code, err);
    if (m < 0) return -1;
    off += m * a.strides[j];
  }
  return off;
}

template <class T>
__global__ void gather_nd_k(NDArgs a, const T* data, const int64_t* idx, T* y, int code, int* err) {
  GRID_STRIDE(e, a.tuples * a.slice) {
    const int64_t off = nd_offset(a, idx, e / a.slice, code, err);
    if (off >= 0) y[e] = data[off + e % a.slice];
  }
}

__device__ void atomic_combine(float* p, float v, index::Scatter kind) {
  if (kind == index::Scatter::Add) {
    atomicAdd(p, v);
    return;
  }
  int* word = reinterpret_cast<int*>(p);
  int old = *word, assumed;
  do {
    assumed = old;
    old = atomicCAS(word, assumed, __float_as_int(__int_as_float(assumed) * v));
  } while (assumed != old);
}

__device__ void atomic_combine(int64_t* p, int64_t v, index::Scatter kind) {
  auto* word = reinterpret_cast<unsigned long long*>(p);
  if (kind == index::Scatter::Add) {
    atomicAdd(word, static_cast<unsigned long long>(v));
    return;
  }
  unsigned long long old = *word, assumed;
  do {
    assumed = old;
    old = atomicCAS(word, assumed, static_cast<unsigned long long>(static_cast<int64_t>(assumed) * v));
  } while (assumed != old);
}

template <class T>
__global__ void scatter_nd_k(NDArgs a, const int64_t* idx, const T* u, T* y, index::Scatter kind, int code, int* err) {
  GRID_STRIDE(e, a.tuples * a.slice) {
    const int64_t off = nd_offset(a, idx, e / a.slice, code, err);
    if (off < 0) continue;
    T* d = y + off + e % a.slice;
    if (!u)
      *d = T(0);
    else if (kind == index::Scatter::None)
      *d = u[e];
    else
      atomic_combine(d, u[e], kind);
  }
}

// Each row's best k so far, best first, kept in the outputs themselves.
__global__ void top_k_k(const float* x, float* values, int64_t* indices, int64_t outer, int64_t n, int64_t inner,
                        int64_t k, bool largest, const int64_t* k_in, int code, int* err) {
  if (k_in && blockIdx.x == 0 && threadIdx.x == 0 && *k_in != k) report(err, code);
  GRID_STRIDE(e, outer * inner) {
    const int64_t o = e / inner, i = e % inner;
    const float* row = x + o * n * inner + i;
    float* v = values + o * k * inner + i;
    int64_t* ix = indices + o * k * inner + i;
    int64_t count = 0;
    for (int64_t j = 0; j < n; ++j) {
      const float xj = row[j * inner];
      if (count == k && !index::top_k_before(xj, j, v[(k - 1) * inner], ix[(k - 1) * inner], largest)) continue;
      int64_t p = count < k ? count++ : k - 1;
      for (; p > 0 && index::top_k_before(xj, j, v[(p - 1) * inner], ix[(p - 1) * inner], largest); --p) {
        v[p * inner] = v[(p - 1) * inner];
        ix[p * inner] = ix[(p - 1) * inner];
      }
      v[p * inner] = xj;
      ix[p * inner] = j;
    }
  }
}

}  // namespace

cudaError_t gather_elements(cudaStream_t st, const ElementsArgs& a, const void* data, const int64_t* idx, void* y,
                            int elem, int* err) {
  if (a.nrows * a.len == 0) return cudaSuccess;
  const int code = kErrIndex * 1024 + a.opcode;
  if (elem == 8)
    gather_elements_k<int64_t><<<blocks_for(a.nrows), kThreads, 0, st>>>(a, static_cast<const int64_t*>(data), idx,
                                                                         static_cast<int64_t*>(y), code, err);
  else
    gather_elements_k<float><<<blocks_for(a.nrows), kThreads, 0, st>>>(a, static_cast<const float*>(data), idx,
                                                                       static_cast<float*>(y), code, err);
  return cudaGetLastError();
}

cudaError_t scatter_elements(cudaStream_t st, const ElementsArgs& a, const int64_t* idx, const void* updates, void* y,
                             bool f32, index::Scatter kind, int* err) {
  if (a.nrows * a.len == 0) return cudaSuccess;
  const int code = kErrIndex * 1024 + a.opcode;
  if (f32)
    scatter_elements_k<float><<<blocks_for(a.nrows), kThreads, 0, st>>>(a, idx, static_cast<const float*>(updates),
                                                                        static_cast<float*>(y), kind, code, err);
  else
    scatter_elements_k<int64_t><<<blocks_for(a.nrows), kThreads, 0, st>>>(a, idx, static_cast<const int64_t*>(updates),
                                                                          static_cast<int64_t*>(y), kind, code, err);
  return cudaGetLastError();
}

cudaError_t gather_elements_grad(cudaStream_t st, const ElementsArgs& a, const float* dy, const int64_t* idx, float* dd,
                                 int* err) {
  if (a.nrows * a.len == 0) return cudaSuccess;
  gather_elements_grad_k<<<blocks_for(a.nrows), kThreads, 0, st>>>(a, dy, idx, dd, kErrIndex * 1024 + a.opcode, err);
  return cudaGetLastError();
}

cudaError_t gather_nd(cudaStream_t st, const NDArgs& a, const void* data, const int64_t* idx, void* y, int elem,
                      int* err) {
  const int64_t total = a.tuples * a.slice;
  if (total == 0) return cudaSuccess;
  const int code = kErrIndex * 1024 + a.opcode;
  if (elem == 8)
    gather_nd_k<int64_t><<<blocks_for(total), kThreads, 0, st>>>(a, static_cast<const int64_t*>(data), idx,
                                                                 static_cast<int64_t*>(y), code, err);
  else
    gather_nd_k<float><<<blocks_for(total), kThreads, 0, st>>>(a, static_cast<const float*>(data), idx,
                                                               static_cast<float*>(y), code, err);
  return cudaGetLastError();
}

cudaError_t scatter_nd(cudaStream_t st, const NDArgs& a, const int64_t* idx, const void* updates, void* y, bool f32,
                       index::Scatter kind, int* err) {
  const int64_t total = a.tuples * a.slice;
  if (total == 0) return cudaSuccess;
  const int code = kErrIndex * 1024 + a.opcode;
  if (f32)
    scatter_nd_k<float><<<blocks_for(total), kThreads, 0, st>>>(a, idx, static_cast<const float*>(updates),
                                                                static_cast<float*>(y), kind, code, err);
  else
    scatter_nd_k<int64_t><<<blocks_for(total), kThreads, 0, st>>>(a, idx, static_cast<const int64_t*>(updates),
                                                                  static_cast<int64_t*>(y), kind, code, err);
  return cudaGetLastError();
}

cudaError_t top_k(cudaStream_t st, const float* x, float* values, int64_t* indices, int64_t outer, int64_t n,
                  int64_t inner, int64_t k, bool largest, const int64_t* k_in, int opcode, int* err) {
  if (outer * inner == 0) return cudaSuccess;
  top_k_k<<<blocks_for(outer * inner), kThreads, 0, st>>>(x, values, indices, outer, n, inner, k, largest, k_in,
                                                          kErrTopK * 1024 + opcode, err);
  return cudaGetLastError();
}

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
