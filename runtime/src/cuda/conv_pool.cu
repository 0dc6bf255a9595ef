// CUDA kernels: Conv (im2col / col2im around cuBLAS) and pooling, 2-D NCHW. Semantics follow the CPU kernels of
// the same family (runtime/src/cpu/) operation by operation; see kernels.h
// for the launchers' contracts.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "cuda/kernels.h"
#include "cuda/launch.cuh"

namespace zero::cuda {
namespace {

// ---- Conv (im2col / col2im), pooling, BatchNormalization ---------------------

// col[(c*kH + i)*kW + j][nn*P + oh*OW + ow] = x[n0 + nn, gi*Cg + c, ih, iw]
// (0 in the padding), P = OH*OW: one thread per column element.
__global__ void im2col_k(ConvArgs a, const float* x, int64_t n0, int64_t nc, int64_t gi, float* col) {
  const int64_t cg = a.c / a.group, P = a.oh * a.ow, ld = nc * P, total = cg * a.kh * a.kw * ld;
  GRID_STRIDE(e, total) {
    const int64_t r = e / ld, q = e % ld;
    const int64_t nn = q / P, p = q % P, oh = p / a.ow, ow = p % a.ow;
    const int64_t c = r / (a.kh * a.kw), i = (r / a.kw) % a.kh, j = r % a.kw;
    const int64_t ih = oh * a.sh - a.ph + i * a.dh, iw = ow * a.sw - a.pw + j * a.dw;
    float v = 0.f;
    if (ih >= 0 && ih < a.h && iw >= 0 && iw < a.w) v = x[(((n0 + nn) * a.c + gi * cg + c) * a.h + ih) * a.w + iw];
    col[e] = v;
  }
}

// The adjoint of im2col as a gather: one thread per element of dx (images
// [n0, n0 + nc), group gi) sums the columns that read it in (i, j) order --
// the order in which the CPU's col2im adds them -- and overwrites dx.
__global__ void col2im_k(ConvArgs a, const float* col, int64_t n0, int64_t nc, int64_t gi, float* dx) {
  const int64_t cg = a.c / a.group, P = a.oh * a.ow, ld = nc * P, total = nc * cg * a.h * a.w;
  GRID_STRIDE(e, total) {
    const int64_t iw = e % a.w, ih = (e / a.w) % a.h, c = (e / (a.w * a.h)) % cg, nn = e / (a.w * a.h * cg);
    float sum = 0.f;
    for (int64_t i = 0; i < a.kh; ++i) {
      const int64_t th = ih + a.ph - i * a.dh;
      if (th < 0 || th % a.sh != 0 || th / a.sh >= a.oh) continue;
      const int64_t oh = th / a.sh;
      for (int64_t j = 0; j < a.kw; ++j) {
        const int64_t tw = iw + a.pw - j * a.dw;
        if (tw < 0 || tw % a.sw != 0 || tw / a.sw >= a.ow) continue;
        sum += col[((c * a.kh + i) * a.kw + j) * ld + nn * P + oh * a.ow + tw / a.sw];
      }
    }
    dx[(((n0 + nn) * a.c + gi * cg + c) * a.h + ih) * a.w + iw] = sum;
  }
}

// y[n, m, p] += b[m].
__global__ void conv_bias_k(float* y, const float* b, int64_t m, int64_t plane, int64_t total) {
  GRID_STRIDE(e, total) y[e] += b[(e / plane) % m];
}

// An output position's window clipped to the input.
struct Clipped {
  int64_t h0, h1, w0, w1;
};

__device__ __forceinline__ Clipped clip(const PoolArgs& a, int64_t oh, int64_t ow) {
  const int64_t hs = oh * a.sh - a.ph, ws = ow * a.sw - a.pw;
  return Clipped{hs > 0 ? hs : 0, hs + a.kh < a.h ? hs + a.kh : a.h, ws > 0 ? ws : 0,
                 ws + a.kw < a.w ? ws + a.kw : a.w};
}

// The first maximum in row-major window order wins; a NaN wins over numbers
// (the first NaN). Padding never wins: only input elements are compared.
__global__ void max_pool_k(PoolArgs a, const float* x, float* y, int64_t* argmax) {
  const int64_t ohw = a.oh * a.ow, total = a.planes * ohw;
  GRID_STRIDE(e, total) {
    const int64_t pl = e / ohw, o = e % ohw;
    const Clipped b = clip(a, o / a.ow, o % a.ow);
    const float* xp = x + pl * a.h * a.w;
    int64_t best_i = b.h0 * a.w + b.w0;
    float best = xp[best_i];
    for (int64_t ih = b.h0; ih < b.h1; ++ih)
      for (int64_t iw = b.w0; iw < b.w1; ++iw) {
        const float v = xp[ih * a.w + iw];
        if (v > best || (v != v && best == best)) {
          best = v;
          best_i = ih * a.w + iw;
        }
      }
    y[e] = best;
    if (argmax) argmax[e] = best_i;
  }
}

// dx (zeroed by the caller) += dy at each window's argmax (atomicAdd:
// overlapping windows may share one).
__global__ void max_pool_grad_k(PoolArgs a, const float* dy, const int64_t* argmax, float* dx, int code, int* err) {
  const int64_t ohw = a.oh * a.ow, hw = a.h * a.w, total = a.planes * ohw;
  GRID_STRIDE(e, total) {
    const int64_t i = argmax[e];
    if (i < 0 || i >= hw) {
      report(err, code);
      continue;
    }
    atomicAdd(dx + (e / ohw) * hw + i, dy[e]);
  }
}

// With include_pad, the window's positions inside the padded input (less than
// kh * kw only where a ceil_mode window reaches past the bottom/right pads).
__device__ __forceinline__ float pool_divisor(const PoolArgs& a, const Clipped& b, int64_t oh, int64_t ow) {
  if (!a.include_pad) return float((b.h1 - b.h0) * (b.w1 - b.w0));
  const int64_t hs = oh * a.sh - a.ph, ws = ow * a.sw - a.pw;
  const int64_t he = hs + a.kh < a.h + a.pb ? hs + a.kh : a.h + a.pb;
  const int64_t we = ws + a.kw < a.w + a.pr ? ws + a.kw : a.w + a.pr;
  return float((he - hs) * (we - ws));
}

__global__ void average_pool_k(PoolArgs a, const float* x, float* y) {
  const int64_t ohw = a.oh * a.ow, total = a.planes * ohw;
  GRID_STRIDE(e, total) {
    const int64_t pl = e / ohw, o = e % ohw;
    const Clipped b = clip(a, o / a.ow, o % a.ow);
    const float* xp = x + pl * a.h * a.w;
    float sum = 0.f;
    for (int64_t ih = b.h0; ih < b.h1; ++ih)
      for (int64_t iw = b.w0; iw < b.w1; ++iw) sum += xp[ih * a.w + iw];
    y[e] = sum / pool_divisor(a, b, o / a.ow, o % a.ow);
  }
}

// A gather: one thread per element of dx sums dy[o] / divisor over the
// windows containing it in increasing o, the CPU's order; overwrites dx.
__global__ void average_pool_grad_k(PoolArgs a, const float* dy, float* dx) {
  const int64_t hw = a.h * a.w, total = a.planes * hw;
  GRID_STRIDE(e, total) {
    const int64_t pl = e / hw, ih = (e % hw) / a.w, iw = e % a.w;
    // Windows oh with oh*sh - ph <= ih < oh*sh - ph + kh.
    const int64_t th = ih + a.ph, tw = iw + a.pw;
    int64_t oh0 = th - a.kh + 1 > 0 ? (th - a.kh + 1 + a.sh - 1) / a.sh : 0;
    int64_t oh1 = th / a.sh + 1 < a.oh ? th / a.sh + 1 : a.oh;
    int64_t ow0 = tw - a.kw + 1 > 0 ? (tw - a.kw + 1 + a.sw - 1) / a.sw : 0;
    int64_t ow1 = tw / a.sw + 1 < a.ow ? tw / a.sw + 1 : a.ow;
    const float* dyp = dy + pl * a.oh * a.ow;
    float sum = 0.f;
    for (int64_t oh = oh0; oh < oh1; ++oh)
      for (int64_t ow = ow0; ow < ow1; ++ow) sum += dyp[oh * a.ow + ow] / pool_divisor(a, clip(a, oh, ow), oh, ow);
    dx[e] = sum;
  }
}

}  // namespace

cudaError_t im2col(cudaStream_t st, const ConvArgs& a, const float* x, int64_t n0, int64_t nc, int64_t gi, float* col) {
  const int64_t total = (a.c / a.group) * a.kh * a.kw * nc * a.oh * a.ow;
  if (total == 0) return cudaSuccess;
  im2col_k<<<blocks_for(total), kThreads, 0, st>>>(a, x, n0, nc, gi, col);
  return cudaGetLastError();
}

cudaError_t col2im(cudaStream_t st, const ConvArgs& a, const float* col, int64_t n0, int64_t nc, int64_t gi,
                   float* dx) {
  const int64_t total = nc * (a.c / a.group) * a.h * a.w;
  if (total == 0) return cudaSuccess;
  col2im_k<<<blocks_for(total), kThreads, 0, st>>>(a, col, n0, nc, gi, dx);
  return cudaGetLastError();
}

cudaError_t conv_bias(cudaStream_t st, float* y, const float* b, int64_t n, int64_t m, int64_t plane) {
  const int64_t total = n * m * plane;
  if (total == 0) return cudaSuccess;
  conv_bias_k<<<blocks_for(total), kThreads, 0, st>>>(y, b, m, plane, total);
  return cudaGetLastError();
}

cudaError_t max_pool(cudaStream_t st, const PoolArgs& a, const float* x, float* y, int64_t* argmax) {
  const int64_t total = a.planes * a.oh * a.ow;
  if (total == 0) return cudaSuccess;
  max_pool_k<<<blocks_for(total), kThreads, 0, st>>>(a, x, y, argmax);
  return cudaGetLastError();
}

cudaError_t max_pool_grad(cudaStream_t st, const PoolArgs& a, const float* dy, const int64_t* argmax, float* dx,
                          int opcode, int* err) {
  const int64_t total = a.planes * a.oh * a.ow;
  if (a.planes * a.h * a.w > 0) {
    const cudaError_t e = cudaMemsetAsync(dx, 0, size_t(a.planes * a.h * a.w) * sizeof(float), st);
    if (e != cudaSuccess) return e;
  }
  if (total == 0) return cudaSuccess;
  max_pool_grad_k<<<blocks_for(total), kThreads, 0, st>>>(a, dy, argmax, dx, kErrIndex * 1024 + opcode, err);
  return cudaGetLastError();
}

cudaError_t average_pool(cudaStream_t st, const PoolArgs& a, const float* x, float* y) {
  const int64_t total = a.planes * a.oh * a.ow;
  if (total == 0) return cudaSuccess;
  average_pool_k<<<blocks_for(total), kThreads, 0, st>>>(a, x, y);
  return cudaGetLastError();
}

cudaError_t average_pool_grad(cudaStream_t st, const PoolArgs& a, const float* dy, float* dx) {
  const int64_t total = a.planes * a.h * a.w;
  if (total == 0) return cudaSuccess;
  average_pool_grad_k<<<blocks_for(total), kThreads, 0, st>>>(a, dy, dx);
  return cudaGetLastError();
}

}  // namespace zero::cuda
