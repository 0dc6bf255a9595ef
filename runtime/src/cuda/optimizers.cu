// CUDA kernels: the optimizer updates and the step counter. Semantics follow the CPU kernels of
// the same family (runtime/src/cpu/) operation by operation; see kernels.h
// for the launchers' contracts.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "cuda/kernels.h"
#include "cuda/launch.cuh"
#include "zero/training_math.h"

namespace zero::cuda {
namespace {

// ---- optimizers -------------------------------------------------------------

__global__ void sgd_k(float* p, const float* g, float* buf, int64_t n, float lr, float momentum, float wd,
                      const float* lr_ptr, const float* scale_ptr) {
  if (lr_ptr) lr = *lr_ptr;
  const float gs = scale_ptr ? *scale_ptr : 1.f;
  GRID_STRIDE(i, n) {
    const float gi = g[i] * gs;
    float d = wd != 0.f ? gi + wd * p[i] : gi;
    if (buf) d = buf[i] = momentum * buf[i] + d;
    p[i] += -lr * d;
  }
}

__global__ void adamw_k(float* p, const float* g, float* m, float* v, const int64_t* step, int64_t n, double lr,
                        double b1, double b2, float eps, double wd, float w1, float fb2, float w2,
                        const float* lr_ptr, const float* scale_ptr, int code, int* err) {
  __shared__ float step_size, bc2_sqrt, decay;
  __shared__ bool bad;
  if (threadIdx.x == 0) {
    const int64_t t = *step;
    bad = t < 1;
    if (bad) {
      report(err, code);
    } else {
      if (lr_ptr) lr = double(*lr_ptr);
      const double bc1 = 1.0 - ::pow(b1, double(t)), bc2 = 1.0 - ::pow(b2, double(t));
      step_size = float(lr / bc1);
      bc2_sqrt = float(::sqrt(bc2));
      decay = float(1.0 - lr * wd);
    }
  }
  __syncthreads();
  if (bad) return;
  const float gs = scale_ptr ? *scale_ptr : 1.f;
  GRID_STRIDE(i, n) {
    const float gi = g[i] * gs;
    float pi = p[i] * decay, mi = m[i], vi = v[i];
    mi = w1 < 0.5f ? mi + w1 * (gi - mi) : gi - (gi - mi) * (1.f - w1);
    vi = vi * fb2 + w2 * gi * gi;
    const float denom = sqrtf(vi) / bc2_sqrt + eps;
    pi += -step_size * (mi / denom);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
  }
}

__global__ void increment_k(int64_t* s) { *s += 1; }

__global__ void learning_rate_k(const int64_t* step, float* rate, int schedule, double lr, int64_t warmup,
                                int64_t total, double min_ratio) {
  *rate = float(training::scheduled_rate(schedule, lr, warmup, total, min_ratio, *step));
}

__global__ void clip_k(const float* sum_squares, float* coefficient, float* norm, double max_norm) {
  const training::Clip clip = training::clip_coefficient(*sum_squares, max_norm);
  *coefficient = float(clip.coefficient);
  *norm = float(clip.norm);
}

}  // namespace

cudaError_t sgd(cudaStream_t st, float* p, const float* g, float* buf, int64_t n, float lr, float momentum, float wd,
                const float* lr_ptr, const float* scale_ptr) {
  if (n == 0) return cudaSuccess;
  sgd_k<<<blocks_for(n), kThreads, 0, st>>>(p, g, buf, n, lr, momentum, wd, lr_ptr, scale_ptr);
  return cudaGetLastError();
}

cudaError_t adamw(cudaStream_t st, float* p, const float* g, float* m, float* v, const int64_t* step, int64_t n,
                  double lr, double b1, double b2, float eps, double wd, const float* lr_ptr, const float* scale_ptr,
                  int opcode, int* err) {
  const float w1 = float(1.0 - b1), fb2 = float(b2), w2 = float(1.0 - b2);
  adamw_k<<<blocks_for(n), kThreads, 0, st>>>(p, g, m, v, step, n, lr, b1, b2, eps, wd, w1, fb2, w2, lr_ptr,
                                              scale_ptr, kErrStep * 1024 + opcode, err);
  return cudaGetLastError();
}

cudaError_t increment(cudaStream_t st, int64_t* step) {
  increment_k<<<1, 1, 0, st>>>(step);
  return cudaGetLastError();
}

cudaError_t learning_rate(cudaStream_t st, const int64_t* step, float* rate, int schedule, double lr, int64_t warmup,
                          int64_t total, double min_ratio) {
  learning_rate_k<<<1, 1, 0, st>>>(step, rate, schedule, lr, warmup, total, min_ratio);
  return cudaGetLastError();
}

cudaError_t clip_coefficient(cudaStream_t st, const float* sum_squares, float* coefficient, float* norm,
                             double max_norm) {
  clip_k<<<1, 1, 0, st>>>(sum_squares, coefficient, norm, max_norm);
  return cudaGetLastError();
}

}  // namespace zero::cuda
