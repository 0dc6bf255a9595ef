// CUDA kernels: the softmax family and the losses. Semantics follow the CPU kernels of
// the same family (runtime/src/cpu/) operation by operation; see kernels.h
// for the launchers' contracts.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "cuda/kernels.h"
#include "cuda/launch.cuh"

namespace zero::cuda {
namespace {

// ---- softmax family -------------------------------------------------------

// One block per (outer, inner) row of n elements strided by inner.
__global__ void softmax_k(const float* x, float* y, int64_t n, int64_t inner, bool log) {
  const int64_t row = blockIdx.x, o = row / inner, in = row % inner;
  const int64_t base = o * n * inner + in;
  float mx = -INFINITY;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) mx = fmaxf(mx, x[base + i * inner]);
  mx = block_max(mx);
  double sum = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) sum += expf(x[base + i * inner] - mx);
  sum = block_sum(sum);
  if (log) {
    const float lse = mx + float(::log(sum));
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) y[base + i * inner] = x[base + i * inner] - lse;
  } else {
    const float inv = float(1.0 / sum);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) y[base + i * inner] = expf(x[base + i * inner] - mx) * inv;
  }
}

__global__ void softmax_grad_k(const float* dy, const float* y, float* dx, int64_t n, int64_t inner, bool log) {
  const int64_t row = blockIdx.x, o = row / inner, in = row % inner;
  const int64_t base = o * n * inner + in;
  double sum = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const int64_t j = base + i * inner;
    sum += log ? double(dy[j]) : double(dy[j]) * y[j];
  }
  const float fs = float(block_sum(sum));
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const int64_t j = base + i * inner;
    dx[j] = log ? dy[j] - expf(y[j]) * fs : y[j] * (dy[j] - fs);
  }
}

// ---- losses ---------------------------------------------------------------

__device__ __forceinline__ bool ignored(const LossArgs& a, int64_t label) {
  return a.has_ignore && label == a.ignore_index;
}

// What a position adds to Mean's divisor: its label's class weight (1
// without weights), 0 if ignored or out of range (reported by the kernels).
__device__ __forceinline__ double counted_weight(const LossArgs& a, const float* weights, int64_t label) {
  if (ignored(a, label) || label < 0 || label >= a.c) return 0.0;
  return weights ? double(weights[label]) : 1.0;
}

// max and sum(exp(x - max)) over the classes of one position (block-wide).
__device__ void class_stats(const float* x, int64_t base, const LossArgs& a, float* mx_out, double* sum_out) {
  float mx = -INFINITY;
  for (int64_t c = threadIdx.x; c < a.c; c += blockDim.x) mx = fmaxf(mx, x[base + c * a.inner]);
  mx = block_max(mx);
  double sum = 0;
  for (int64_t c = threadIdx.x; c < a.c; c += blockDim.x) sum += expf(x[base + c * a.inner] - mx);
  *sum_out = block_sum(sum);
  *mx_out = mx;
}

// One block per position: per-position loss into per[pos] (0 if ignored).
__global__ void loss_k(LossArgs a, bool softmax, const float* x, const int64_t* labels, const float* weights,
                       float* out, float* log_prob, double* per, int* err) {
  const int64_t pos = blockIdx.x, b = pos / a.inner, in = pos % a.inner;
  const int64_t base = b * a.c * a.inner + in;
  const int64_t label = labels[pos];
  float lse = 0.f;
  if (softmax) {
    float mx;
    double sum;
    class_stats(x, base, a, &mx, &sum);
    lse = mx + float(::log(sum));
  }
  if (threadIdx.x == 0) {
    double v = 0;
    if (!ignored(a, label)) {
      if (label < 0 || label >= a.c)
        report(err, kErrLabel * 1024 + a.opcode);
      else
        v = -(double(x[base + label * a.inner]) - lse) * counted_weight(a, weights, label);
    }
    per[pos] = v;
    if (a.reduction == 2) out[pos] = float(v);
  }
  if (log_prob) {
    __syncthreads();  // x may alias log_prob: every read above is done
    for (int64_t c = threadIdx.x; c < a.c; c += blockDim.x) log_prob[base + c * a.inner] = x[base + c * a.inner] - lse;
  }
}

// Single block: Mean's divisor (the summed weight of counted labels) into scratch[0].
__global__ void count_k(LossArgs a, const int64_t* labels, const float* weights, int64_t positions, double* count_out) {
  double cnt = 0;
  for (int64_t i = threadIdx.x; i < positions; i += blockDim.x) cnt += counted_weight(a, weights, labels[i]);
  cnt = block_sum(cnt);
  if (threadIdx.x == 0) *count_out = cnt;
}

// Single block: the reduced loss.
__global__ void loss_reduce_k(LossArgs a, const int64_t* labels, const float* weights, const double* per,
                              int64_t positions, float* out) {
  double sum = 0, cnt = 0;
  for (int64_t i = threadIdx.x; i < positions; i += blockDim.x) {
    sum += per[i];
    cnt += counted_weight(a, weights, labels[i]);
  }
  sum = block_sum(sum);
  cnt = block_sum(cnt);
  if (threadIdx.x == 0) out[0] = float(a.reduction == 1 ? sum / cnt : sum);
}

__global__ void loss_grad_k(LossArgs a, bool softmax, const float* dloss, const float* x, const int64_t* labels,
                            const float* weights, float* dx, const double* count, int* err) {
  const int64_t pos = blockIdx.x, b = pos / a.inner, in = pos % a.inner;
  const int64_t base = b * a.c * a.inner + in;
  const int64_t label = labels[pos];
  float w = 0.f;
  if (!ignored(a, label)) {
    if (label < 0 || label >= a.c) {
      if (threadIdx.x == 0) report(err, kErrLabel * 1024 + a.opcode);
    } else {
      const double cw = counted_weight(a, weights, label);
      w = a.reduction == 2   ? float(double(dloss[pos]) * cw)
          : a.reduction == 1 ? float(double(dloss[0]) * cw / *count)
                             : float(double(dloss[0]) * cw);
    }
  }
  if (softmax) {
    float mx;
    double sum;
    class_stats(x, base, a, &mx, &sum);
    const float inv = float(1.0 / sum);
    __syncthreads();  // dx may alias x
    for (int64_t c = threadIdx.x; c < a.c; c += blockDim.x) {
      const int64_t j = base + c * a.inner;
      const float p = expf(x[j] - mx) * inv;
      dx[j] = w == 0.f ? 0.f : (p - (c == label ? 1.f : 0.f)) * w;
    }
  } else {
    for (int64_t c = threadIdx.x; c < a.c; c += blockDim.x) dx[base + c * a.inner] = c == label ? -w : 0.f;
  }
}

}  // namespace

cudaError_t softmax(cudaStream_t st, const float* x, float* y, int64_t outer, int64_t n, int64_t inner, bool log) {
  if (outer * inner == 0 || n == 0) return cudaSuccess;
  softmax_k<<<unsigned(outer * inner), row_threads(n), 0, st>>>(x, y, n, inner, log);
  return cudaGetLastError();
}

cudaError_t softmax_grad(cudaStream_t st, const float* dy, const float* y, float* dx, int64_t outer, int64_t n,
                         int64_t inner, bool log) {
  if (outer * inner == 0 || n == 0) return cudaSuccess;
  softmax_grad_k<<<unsigned(outer * inner), row_threads(n), 0, st>>>(dy, y, dx, n, inner, log);
  return cudaGetLastError();
}

cudaError_t loss(cudaStream_t st, const LossArgs& a, bool softmax, const float* x, const int64_t* labels,
                 const float* weights, float* out, float* log_prob, double* scratch, int* err) {
  const int64_t positions = a.n * a.inner;
  if (positions > 0)
    loss_k<<<unsigned(positions), row_threads(a.c), 0, st>>>(a, softmax, x, labels, weights, out, log_prob, scratch,
                                                             err);
  if (a.reduction != 2) loss_reduce_k<<<1, 256, 0, st>>>(a, labels, weights, scratch, positions, out);
  return cudaGetLastError();
}

cudaError_t loss_grad(cudaStream_t st, const LossArgs& a, bool softmax, const float* dloss, const float* x,
                      const int64_t* labels, const float* weights, float* dx, double* scratch, int* err) {
  const int64_t positions = a.n * a.inner;
  if (positions == 0) return cudaSuccess;
  count_k<<<1, 256, 0, st>>>(a, labels, weights, positions, scratch);
  loss_grad_k<<<unsigned(positions), row_threads(a.c), 0, st>>>(a, softmax, dloss, x, labels, weights, dx, scratch,
                                                                err);
  return cudaGetLastError();
}

}  // namespace zero::cuda
