// CUDA kernels of the elementwise ops (zero/elementwise_ops.h): the same
// functors as the CPU loops, so with -fmad=false the results match bit for
// bit. Outputs may alias inputs exactly (each thread reads, then writes, its
// own element).
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/kernels.h"
#include "cuda/launch.cuh"
#include "zero/training_math.h"
#include "zero/elementwise_ops.h"

namespace zero::cuda {
namespace {

template <class Op>
__global__ void binary_same(const float* a, const float* b, float* y, int64_t n, bool b_scalar) {
  GRID_STRIDE(i, n) y[i] = Op::forward(a[i], b_scalar ? b[0] : b[i]);
}

template <class Op>
__global__ void binary_broadcast(const float* a, const float* b, float* y, int64_t n, Strided g) {
  GRID_STRIDE(i, n) y[i] = Op::forward(a[offset_of(g, 0, i)], b[offset_of(g, 1, i)]);
}

template <class Op>
__global__ void unary_k(const float* x, float* y, int64_t n) {
  GRID_STRIDE(i, n) y[i] = Op::forward(x[i]);
}

template <class Op>
__global__ void derivative_k(const float* dy, const float* saved, float* dx, int64_t n) {
  GRID_STRIDE(i, n) dx[i] = Op::derivative(dy[i], saved[i]);
}

template <class Op>
__global__ void parameterized_unary_k(const float* x, float* y, int64_t n, elementwise::Params p) {
  GRID_STRIDE(i, n) y[i] = Op::forward(x[i], p);
}

template <class Op>
__global__ void parameterized_derivative_k(const float* dy, const float* saved, float* dx, int64_t n,
                                           elementwise::Params p) {
  GRID_STRIDE(i, n) dx[i] = Op::derivative(dy[i], saved[i], p);
}

template <class Op, class T>
__global__ void comparison_k(const T* a, const T* b, int64_t* y, int64_t n, Strided g) {
  GRID_STRIDE(i, n) y[i] = Op::compare(a[offset_of(g, 0, i)], b[offset_of(g, 1, i)]);
}

template <class Op, class T>
__global__ void typed_binary_k(const T* a, const T* b, T* y, int64_t n, Strided g) {
  GRID_STRIDE(i, n) y[i] = Op::forward(a[offset_of(g, 0, i)], b[offset_of(g, 1, i)]);
}

template <class Op>
__global__ void logical_k(const int64_t* a, const int64_t* b, int64_t* y, int64_t n, Strided g) {
  GRID_STRIDE(i, n) y[i] = Op::logical(a[offset_of(g, 0, i)] != 0, b[offset_of(g, 1, i)] != 0);
}

template <class Op>
__global__ void logical_unary_k(const int64_t* x, int64_t* y, int64_t n) {
  GRID_STRIDE(i, n) y[i] = Op::logical(x[i] != 0);
}

// Cast, Fill and the loss-gradient scale.

__global__ void cast_i64_f32_k(const int64_t* x, float* y, int64_t n) { GRID_STRIDE(i, n) y[i] = float(x[i]); }

__global__ void dropout_k(const float* x, float* y, int64_t n, const int64_t* step, uint64_t seed, uint64_t micro_step,
                          uint32_t rank, uint64_t stream, float ratio, float scale) {
  const uint64_t key = training::dropout_key(seed, uint64_t(*step), micro_step, rank, stream);
  GRID_STRIDE(i, n) { y[i] = training::dropout_keeps(key, uint64_t(i), ratio) ? x[i] * scale : 0.f; }
}

__global__ void cast_f32_i64_k(const float* x, int64_t* y, int64_t n) {
  GRID_STRIDE(i, n) {
    const float v = x[i];
    int64_t r;
    if (isnan(v))
      r = 0;
    else if (v >= 9.2233720368547758e18f)
      r = INT64_MAX;
    else if (v <= -9.2233720368547758e18f)
      r = INT64_MIN;
    else
      r = int64_t(v);
    y[i] = r;
  }
}

template <class T>
__global__ void fill_k(T* y, T v, int64_t n) {
  GRID_STRIDE(i, n) y[i] = v;
}

__global__ void scale_k(float* y, float v, int64_t n) { GRID_STRIDE(i, n) y[i] = v * y[i]; }

}  // namespace

template <class Op>
cudaError_t comparison(cudaStream_t st, const void* a, const void* b, bool f32, int64_t* y, int64_t n,
                       const Strided& g) {
  if (n == 0) return cudaSuccess;
  if (f32)
    comparison_k<Op, float>
        <<<blocks_for(n), kThreads, 0, st>>>(static_cast<const float*>(a), static_cast<const float*>(b), y, n, g);
  else
    comparison_k<Op, int64_t>
        <<<blocks_for(n), kThreads, 0, st>>>(static_cast<const int64_t*>(a), static_cast<const int64_t*>(b), y, n, g);
  return cudaGetLastError();
}

template <class Op>
cudaError_t typed_binary(cudaStream_t st, const void* a, const void* b, bool f32, void* y, int64_t n,
                         const Strided& g) {
  if (n == 0) return cudaSuccess;
  if (f32)
    typed_binary_k<Op, float><<<blocks_for(n), kThreads, 0, st>>>(
        static_cast<const float*>(a), static_cast<const float*>(b), static_cast<float*>(y), n, g);
  else
    typed_binary_k<Op, int64_t><<<blocks_for(n), kThreads, 0, st>>>(
        static_cast<const int64_t*>(a), static_cast<const int64_t*>(b), static_cast<int64_t*>(y), n, g);
  return cudaGetLastError();
}

template <class Op>
cudaError_t logical(cudaStream_t st, const int64_t* a, const int64_t* b, int64_t* y, int64_t n, const Strided& g) {
  if (n == 0) return cudaSuccess;
  logical_k<Op><<<blocks_for(n), kThreads, 0, st>>>(a, b, y, n, g);
  return cudaGetLastError();
}

template <class Op>
cudaError_t logical_unary(cudaStream_t st, const int64_t* x, int64_t* y, int64_t n) {
  if (n == 0) return cudaSuccess;
  logical_unary_k<Op><<<blocks_for(n), kThreads, 0, st>>>(x, y, n);
  return cudaGetLastError();
}

template <class Op>
cudaError_t binary(cudaStream_t st, const float* a, const float* b, float* y, int64_t n, bool b_scalar,
                   const Strided* g) {
  if (n == 0) return cudaSuccess;
  if (g)
    binary_broadcast<Op><<<blocks_for(n), kThreads, 0, st>>>(a, b, y, n, *g);
  else
    binary_same<Op><<<blocks_for(n), kThreads, 0, st>>>(a, b, y, n, b_scalar);
  return cudaGetLastError();
}

template <class Op>
cudaError_t unary(cudaStream_t st, const float* x, float* y, int64_t n) {
  if (n == 0) return cudaSuccess;
  unary_k<Op><<<blocks_for(n), kThreads, 0, st>>>(x, y, n);
  return cudaGetLastError();
}

template <class Op>
cudaError_t derivative(cudaStream_t st, const float* dy, const float* saved, float* dx, int64_t n) {
  if (n == 0) return cudaSuccess;
  derivative_k<Op><<<blocks_for(n), kThreads, 0, st>>>(dy, saved, dx, n);
  return cudaGetLastError();
}

template <class Op>
cudaError_t parameterized_unary(cudaStream_t st, const float* x, float* y, int64_t n, elementwise::Params p) {
  if (n == 0) return cudaSuccess;
  parameterized_unary_k<Op><<<blocks_for(n), kThreads, 0, st>>>(x, y, n, p);
  return cudaGetLastError();
}

template <class Op>
cudaError_t parameterized_derivative(cudaStream_t st, const float* dy, const float* saved, float* dx, int64_t n,
                                     elementwise::Params p) {
  if (n == 0) return cudaSuccess;
  parameterized_derivative_k<Op><<<blocks_for(n), kThreads, 0, st>>>(dy, saved, dx, n, p);
  return cudaGetLastError();
}

cudaError_t cast_i64_f32(cudaStream_t st, const int64_t* x, float* y, int64_t n) {
  if (n == 0) return cudaSuccess;
  cast_i64_f32_k<<<blocks_for(n), kThreads, 0, st>>>(x, y, n);
  return cudaGetLastError();
}

cudaError_t cast_f32_i64(cudaStream_t st, const float* x, int64_t* y, int64_t n) {
  if (n == 0) return cudaSuccess;
  cast_f32_i64_k<<<blocks_for(n), kThreads, 0, st>>>(x, y, n);
  return cudaGetLastError();
}

cudaError_t dropout(cudaStream_t st, const float* x, float* y, int64_t n, const int64_t* step, uint64_t seed,
                    uint64_t micro_step, uint32_t rank, uint64_t stream, float ratio, float scale) {
  if (n == 0) return cudaSuccess;
  dropout_k<<<blocks_for(n), kThreads, 0, st>>>(x, y, n, step, seed, micro_step, rank, stream, ratio, scale);
  return cudaGetLastError();
}

cudaError_t fill_f32(cudaStream_t st, float* y, float v, int64_t n) {
  if (n == 0) return cudaSuccess;
  fill_k<float><<<blocks_for(n), kThreads, 0, st>>>(y, v, n);
  return cudaGetLastError();
}

cudaError_t fill_i64(cudaStream_t st, int64_t* y, int64_t v, int64_t n) {
  if (n == 0) return cudaSuccess;
  fill_k<int64_t><<<blocks_for(n), kThreads, 0, st>>>(y, v, n);
  return cudaGetLastError();
}

cudaError_t scale(cudaStream_t st, float* y, float v, int64_t n) {
  if (n == 0) return cudaSuccess;
  scale_k<<<blocks_for(n), kThreads, 0, st>>>(y, v, n);
  return cudaGetLastError();
}

#define ZERO_BINARY(op)                                                                                         \
  template cudaError_t binary<elementwise::op>(cudaStream_t, const float*, const float*, float*, int64_t, bool, \
                                               const Strided*);
#define ZERO_UNARY(op) template cudaError_t unary<elementwise::op>(cudaStream_t, const float*, float*, int64_t);
#define ZERO_DERIVATIVE(op) \
  ZERO_UNARY(op)            \
  template cudaError_t derivative<elementwise::op>(cudaStream_t, const float*, const float*, float*, int64_t);
ZERO_ELEMENTWISE_BINARY_OPS(ZERO_BINARY)
ZERO_ELEMENTWISE_UNARY_OPS(ZERO_UNARY)
ZERO_ELEMENTWISE_UNARY_OPS_WITH_DERIVATIVE(ZERO_DERIVATIVE)
#define ZERO_ATTRIBUTES(op)                                                                                        \
  template cudaError_t parameterized_unary<elementwise::op>(cudaStream_t, const float*, float*, int64_t,           \
                                                            elementwise::Params);                                  \
  template cudaError_t parameterized_derivative<elementwise::op>(cudaStream_t, const float*, const float*, float*, \
                                                                 int64_t, elementwise::Params);
ZERO_ELEMENTWISE_UNARY_OPS_WITH_ATTRIBUTES(ZERO_ATTRIBUTES)
#undef ZERO_ATTRIBUTES
#define ZERO_COMPARISON(op)                                                                                         \
  template cudaError_t comparison<elementwise::op>(cudaStream_t, const void*, const void*, bool, int64_t*, int64_t, \
                                                   const Strided&);
#define ZERO_LOGICAL(op)                                                                                         \
  template cudaError_t logical<elementwise::op>(cudaStream_t, const int64_t*, const int64_t*, int64_t*, int64_t, \
                                                const Strided&);
#define ZERO_LOGICAL_UNARY(op) \
  template cudaError_t logical_unary<elementwise::op>(cudaStream_t, const int64_t*, int64_t*, int64_t);
#define ZERO_TYPED_BINARY(op)                                                                                      \
  template cudaError_t typed_binary<elementwise::op>(cudaStream_t, const void*, const void*, bool, void*, int64_t, \
                                                     const Strided&);
ZERO_ELEMENTWISE_TYPED_BINARY_OPS(ZERO_TYPED_BINARY)
#undef ZERO_TYPED_BINARY
ZERO_ELEMENTWISE_COMPARISON_OPS(ZERO_COMPARISON)
ZERO_ELEMENTWISE_LOGICAL_OPS(ZERO_LOGICAL)
ZERO_ELEMENTWISE_LOGICAL_UNARY_OPS(ZERO_LOGICAL_UNARY)
#undef ZERO_COMPARISON
#undef ZERO_LOGICAL
#undef ZERO_LOGICAL_UNARY
#undef ZERO_BINARY
#undef ZERO_UNARY
#undef ZERO_DERIVATIVE

}  // namespace zero::cuda
