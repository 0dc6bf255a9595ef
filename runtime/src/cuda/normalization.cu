// CUDA kernels: LayerNormalization and training-mode BatchNormalization. Semantics follow the CPU kernels of
// the same family (runtime/src/cpu/) operation by operation; see kernels.h
// for the launchers' contracts.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "cuda/kernels.h"
#include "cuda/launch.cuh"
#include "zero/kernel_scratch.h"

namespace zero::cuda {
namespace {

// ---- LayerNormalization -----------------------------------------------------

__global__ void layer_norm_k(const float* x, const float* scale, const float* bias, float* y, float* mean_out,
                             float* inv_out, int64_t inner, float eps) {
  const int64_t o = blockIdx.x;
  const float* row = x + o * inner;
  double sum = 0;
  for (int64_t i = threadIdx.x; i < inner; i += blockDim.x) sum += row[i];
  sum = block_sum(sum);
  const double mean = inner ? sum / double(inner) : 0.0;
  double sq = 0;
  for (int64_t i = threadIdx.x; i < inner; i += blockDim.x) sq += (row[i] - mean) * (row[i] - mean);
  sq = block_sum(sq);
  const double var = inner ? sq / double(inner) : 0.0;
  const double inv = 1.0 / ::sqrt(var + double(eps));
  float* out = y + o * inner;
  for (int64_t i = threadIdx.x; i < inner; i += blockDim.x)
    out[i] = float((double(row[i]) - mean) * inv * double(scale[i]) + double(bias[i]));
  if (threadIdx.x == 0) {
    if (mean_out) mean_out[o] = float(mean);
    if (inv_out) inv_out[o] = float(inv);
  }
}

// dscale and dbias partial sums: thread e sums column e % inner over chunk
// e / inner of `rows` rows (one thread per column over all the rows would
// leave the GPU idle: inner 768, outer 8192 is 3 blocks), into ps[e], pb[e].
__global__ void layer_norm_params_partial_k(const float* dy, const float* x, const float* mean, const float* inv,
                                            double* ps, double* pb, int64_t outer, int64_t inner, int64_t chunks,
                                            int64_t rows) {
  GRID_STRIDE(e, chunks * inner) {
    const int64_t i = e % inner, o0 = (e / inner) * rows, o1 = o0 + rows < outer ? o0 + rows : outer;
    double ds = 0, db = 0;
    for (int64_t o = o0; o < o1; ++o) {
      const double d = dy[o * inner + i];
      const double xhat = (double(x[o * inner + i]) - double(mean[o])) * double(inv[o]);
      ds += d * xhat;
      db += d;
    }
    ps[e] = ds;
    pb[e] = db;
  }
}

// The chunks' partial sums in order, one thread per normalized element.
__global__ void layer_norm_params_finish_k(const double* ps, const double* pb, float* dscale, float* dbias,
                                           int64_t inner, int64_t chunks) {
  GRID_STRIDE(i, inner) {
    double ds = 0, db = 0;
    for (int64_t r = 0; r < chunks; ++r) {
      ds += ps[r * inner + i];
      db += pb[r * inner + i];
    }
    if (dscale) dscale[i] = float(ds);
    if (dbias) dbias[i] = float(db);
  }
}

__global__ void layer_norm_grad_k(const float* dy, const float* x, const float* scale, const float* mean_in,
                                  const float* inv_in, float* dx, int64_t inner) {
  const int64_t o = blockIdx.x;
  const float *dyr = dy + o * inner, *xr = x + o * inner;
  const double mean = mean_in[o], inv = inv_in[o];
  double sum_g = 0, sum_gx = 0;
  for (int64_t i = threadIdx.x; i < inner; i += blockDim.x) {
    const double xhat = (double(xr[i]) - mean) * inv;
    const double g = double(dyr[i]) * double(scale[i]);
    sum_g += g;
    sum_gx += g * xhat;
  }
  sum_g = block_sum(sum_g);
  sum_gx = block_sum(sum_gx);
  const double mg = inner ? sum_g / double(inner) : 0.0, mgx = inner ? sum_gx / double(inner) : 0.0;
  float* dxr = dx + o * inner;
  for (int64_t i = threadIdx.x; i < inner; i += blockDim.x) {
    const double xhat = (double(xr[i]) - mean) * inv;
    const double g = double(dyr[i]) * double(scale[i]);
    dxr[i] = float(inv * (g - mg - xhat * mgx));
  }
}

// ---- BatchNormalization (training mode) ---------------------------------

// One block per channel of x viewed as [n, c, inner]; two passes in double
// (the mean, then the biased variance around it) as on the CPU.
__global__ void batch_norm_k(const float* x, const float* scale, const float* bias, float* rmean, float* rvar, float* y,
                             float* smean, float* sinv, int64_t n, int64_t ch, int64_t inner, double eps, double mom) {
  const int64_t c = blockIdx.x, count = n * inner;
  double sum = 0;
  for (int64_t e = threadIdx.x; e < count; e += blockDim.x) sum += x[((e / inner) * ch + c) * inner + e % inner];
  sum = block_sum(sum);
  const double cnt = double(count), mean = sum / cnt;
  double sq = 0;
  for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
    const float v = x[((e / inner) * ch + c) * inner + e % inner];
    sq += (v - mean) * (v - mean);
  }
  sq = block_sum(sq);
  const double var = sq / cnt, inv = 1.0 / ::sqrt(var + eps);
  const double k = inv * double(scale[c]), b = double(bias[c]);
  for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
    const int64_t at = ((e / inner) * ch + c) * inner + e % inner;
    y[at] = float((double(x[at]) - mean) * k + b);  // y may be x
  }
  if (threadIdx.x == 0) {
    rmean[c] = float((1.0 - mom) * double(rmean[c]) + mom * mean);
    rvar[c] = float((1.0 - mom) * double(rvar[c]) + mom * var * cnt / (cnt - 1.0));
    if (smean) smean[c] = float(mean);
    if (sinv) sinv[c] = float(inv);
  }
}

__global__ void batch_norm_grad_k(const float* dy, const float* x, const float* scale, const float* pmean,
                                  const float* pinv, float* dx, float* dscale, float* dbias, int64_t n, int64_t ch,
                                  int64_t inner) {
  const int64_t c = blockIdx.x, count = n * inner;
  const double mean = pmean[c], inv = pinv[c];
  double sum_dy = 0, sum_dy_xhat = 0;
  for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
    const int64_t at = ((e / inner) * ch + c) * inner + e % inner;
    const double d = dy[at];
    sum_dy += d;
    sum_dy_xhat += d * (double(x[at]) - mean) * inv;
  }
  sum_dy = block_sum(sum_dy);
  sum_dy_xhat = block_sum(sum_dy_xhat);
  // dx = scale * inv * (dy - mean(dy) - xhat * mean(dy * xhat)).
  const double cnt = double(count), k = double(scale[c]) * inv, mdy = cnt > 0 ? sum_dy / cnt : 0.0,
               mdx = cnt > 0 ? sum_dy_xhat / cnt : 0.0;
  for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
    const int64_t at = ((e / inner) * ch + c) * inner + e % inner;
    const double xhat = (double(x[at]) - mean) * inv;
    dx[at] = float(k * (double(dy[at]) - mdy - xhat * mdx));  // dx may be dy or x
  }
  if (threadIdx.x == 0) {
    if (dscale) dscale[c] = float(sum_dy_xhat);
    if (dbias) dbias[c] = float(sum_dy);
  }
}

}  // namespace

cudaError_t layer_norm(cudaStream_t st, const float* x, const float* scale, const float* bias, float* y, float* mean,
                       float* inv, int64_t outer, int64_t inner, float eps) {
  if (outer == 0) return cudaSuccess;
  layer_norm_k<<<unsigned(outer), row_threads(inner), 0, st>>>(x, scale, bias, y, mean, inv, inner, eps);
  return cudaGetLastError();
}

cudaError_t layer_norm_grad(cudaStream_t st, const float* dy, const float* x, const float* scale, const float* mean,
                            const float* inv, float* dx, float* dscale, float* dbias, int64_t outer, int64_t inner,
                            double* partial) {
  // Parameter gradients first: dx may alias dy or x.
  if ((dscale || dbias) && inner > 0) {
    const int64_t chunks = kernel_scratch::layer_norm_chunks(outer, inner), rows = (outer + chunks - 1) / chunks;
    double *ps = partial, *pb = partial + chunks * inner;
    layer_norm_params_partial_k<<<blocks_for(chunks * inner), kThreads, 0, st>>>(dy, x, mean, inv, ps, pb, outer, inner,
                                                                                 chunks, rows);
    layer_norm_params_finish_k<<<blocks_for(inner), kThreads, 0, st>>>(ps, pb, dscale, dbias, inner, chunks);
  }
  if (outer > 0) layer_norm_grad_k<<<unsigned(outer), row_threads(inner), 0, st>>>(dy, x, scale, mean, inv, dx, inner);
  return cudaGetLastError();
}

cudaError_t batch_norm(cudaStream_t st, const float* x, const float* scale, const float* bias, float* rmean,
                       float* rvar, float* y, float* smean, float* sinv, int64_t n, int64_t c, int64_t inner,
                       double eps, double momentum) {
  if (c == 0) return cudaSuccess;
  batch_norm_k<<<unsigned(c), row_threads(n * inner), 0, st>>>(x, scale, bias, rmean, rvar, y, smean, sinv, n, c, inner,
                                                               eps, momentum);
  return cudaGetLastError();
}

cudaError_t batch_norm_grad(cudaStream_t st, const float* dy, const float* x, const float* scale, const float* mean,
                            const float* inv, float* dx, float* dscale, float* dbias, int64_t n, int64_t c,
                            int64_t inner) {
  if (c == 0) return cudaSuccess;
  batch_norm_grad_k<<<unsigned(c), row_threads(n * inner), 0, st>>>(dy, x, scale, mean, inv, dx, dscale, dbias, n, c,
                                                                    inner);
  return cudaGetLastError();
}

}  // namespace zero::cuda
