// CUDA kernels: Conv (im2col / col2im around cuBLAS) and pooling over 1 to 3 spatial dimensions. Semantics follow the
// CPU kernels of the same family (runtime/src/cpu/) operation by operation; see kernels.h for the launchers' contracts.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "cuda/kernels.h"
#include "cuda/launch.cuh"

namespace zero::cuda {
namespace {

// ---- Conv (im2col / col2im), pooling, BatchNormalization ---------------------

using sliding_window::kMaxSpatial;
using sliding_window::Taps;
using sliding_window::Window;

// col[(c*kD + a)*kH*kW + i*kW + j][nn*P + (od*OH + oh)*OW + ow] =
// x[n0 + nn, gi*Cg + c, id, ih, iw] (0 in the padding), P = OD*OH*OW: one
// thread per column element.
__global__ void im2col_k(ConvArgs a, const float* x, int64_t n0, int64_t nc, int64_t gi, float* col) {
  const Window& w = a.win;
  const int64_t cg = a.c / a.group, P = a.out[0] * a.out[1] * a.out[2], ld = nc * P, kvol = w.volume();
  const int64_t total = cg * kvol * ld;
  GRID_STRIDE(e, total) {
    const int64_t r = e / ld, q = e % ld, nn = q / P, p = q % P;
    const int64_t o[kMaxSpatial] = {p / (a.out[1] * a.out[2]), (p / a.out[2]) % a.out[1], p % a.out[2]};
    const int64_t c = r / kvol, rem = r % kvol;
    const int64_t j[kMaxSpatial] = {rem / (w.k[1] * w.k[2]), (rem / w.k[2]) % w.k[1], rem % w.k[2]};
    int64_t src = (n0 + nn) * a.c + gi * cg + c;
    bool inside = true;
    for (int ax = 0; ax < kMaxSpatial; ++ax) {
      const int64_t i = o[ax] * w.s[ax] - w.p[ax] + j[ax] * w.d[ax];
      inside = inside && i >= 0 && i < a.in[ax];
      src = src * a.in[ax] + i;
    }
    col[e] = inside ? x[src] : 0.f;
  }
}

// The adjoint of im2col as a gather: one thread per element of dx (images
// [n0, n0 + nc), group gi) sums the columns that read it in kernel-tap order
// -- the order in which the CPU's col2im adds them -- and overwrites dx.
__global__ void col2im_k(ConvArgs a, const float* col, int64_t n0, int64_t nc, int64_t gi, float* dx) {
  const Window& w = a.win;
  const int64_t cg = a.c / a.group, P = a.out[0] * a.out[1] * a.out[2], ld = nc * P;
  const int64_t in_plane = a.in[0] * a.in[1] * a.in[2], total = nc * cg * in_plane;
  GRID_STRIDE(e, total) {
    const int64_t q = e % in_plane, c = (e / in_plane) % cg, nn = e / (in_plane * cg);
    const int64_t i[kMaxSpatial] = {q / (a.in[1] * a.in[2]), (q / a.in[2]) % a.in[1], q % a.in[2]};
    // The output position along each axis that tap j reads i from, or -1.
    auto out_of = [&](int ax, int64_t j) -> int64_t {
      const int64_t t = i[ax] + w.p[ax] - j * w.d[ax];
      return t < 0 || t % w.s[ax] != 0 || t / w.s[ax] >= a.out[ax] ? -1 : t / w.s[ax];
    };
    float sum = 0.f;
    for (int64_t ja = 0; ja < w.k[0]; ++ja) {
      const int64_t od = out_of(0, ja);
      if (od < 0) continue;
      for (int64_t jh = 0; jh < w.k[1]; ++jh) {
        const int64_t oh = out_of(1, jh);
        if (oh < 0) continue;
        for (int64_t jw = 0; jw < w.k[2]; ++jw) {
          const int64_t ow = out_of(2, jw);
          if (ow < 0) continue;
          const int64_t r = c * w.volume() + (ja * w.k[1] + jh) * w.k[2] + jw;
          sum += col[r * ld + nn * P + (od * a.out[1] + oh) * a.out[2] + ow];
        }
      }
    }
    dx[((n0 + nn) * a.c + gi * cg + c) * in_plane + q] = sum;
  }
}

// y[n, m, p] += b[m].
__global__ void conv_bias_k(float* y, const float* b, int64_t m, int64_t plane, int64_t total) {
  GRID_STRIDE(e, total) y[e] += b[(e / plane) % m];
}

// The taps of output position o (within a plane) along each axis.
__device__ __forceinline__ void window_of(const PoolArgs& a, int64_t o, Taps* t) {
  const int64_t pos[kMaxSpatial] = {o / (a.out[1] * a.out[2]), (o / a.out[2]) % a.out[1], o % a.out[2]};
  for (int ax = 0; ax < kMaxSpatial; ++ax) t[ax] = sliding_window::window_taps(a.win, ax, a.in[ax], pos[ax]);
}

// The first maximum in row-major window order wins; a NaN wins over numbers
// (the first NaN). Padding never wins: only input elements are compared.
__global__ void max_pool_k(PoolArgs a, const float* x, float* y, int64_t* argmax) {
  const int64_t P = a.out[0] * a.out[1] * a.out[2], in_plane = a.in[0] * a.in[1] * a.in[2], total = a.planes * P;
  const int64_t* d = a.win.d;
  GRID_STRIDE(e, total) {
    Taps t[kMaxSpatial];
    window_of(a, e % P, t);
    const float* xp = x + (e / P) * in_plane;
    int64_t best_i = -1;
    float best = 0.f;
    for (int64_t ja = t[0].j0; ja < t[0].j1; ++ja)
      for (int64_t jh = t[1].j0; jh < t[1].j1; ++jh) {
        const int64_t row = ((t[0].start + ja * d[0]) * a.in[1] + t[1].start + jh * d[1]) * a.in[2] + t[2].start;
        for (int64_t jw = t[2].j0; jw < t[2].j1; ++jw) {
          const int64_t i = row + jw * d[2];
          const float v = xp[i];
          if (best_i < 0 || v > best || (v != v && best == best)) {
            best = v;
            best_i = i;
          }
        }
      }
    y[e] = best;
    if (argmax) argmax[e] = best_i;
  }
}

// dx (zeroed by the caller) += dy at each window's argmax (atomicAdd:
// overlapping windows may share one).
__global__ void max_pool_grad_k(PoolArgs a, const float* dy, const int64_t* argmax, float* dx, int code, int* err) {
  const int64_t P = a.out[0] * a.out[1] * a.out[2], in_plane = a.in[0] * a.in[1] * a.in[2], total = a.planes * P;
  GRID_STRIDE(e, total) {
    const int64_t i = argmax[e];
    if (i < 0 || i >= in_plane) {
      report(err, code);
      continue;
    }
    atomicAdd(dx + (e / P) * in_plane + i, dy[e]);
  }
}

__global__ void average_pool_k(PoolArgs a, const float* x, float* y) {
  const int64_t P = a.out[0] * a.out[1] * a.out[2], in_plane = a.in[0] * a.in[1] * a.in[2], total = a.planes * P;
  const int64_t* d = a.win.d;
  GRID_STRIDE(e, total) {
    Taps t[kMaxSpatial];
    window_of(a, e % P, t);
    const float* xp = x + (e / P) * in_plane;
    float sum = 0.f;
    for (int64_t ja = t[0].j0; ja < t[0].j1; ++ja)
      for (int64_t jh = t[1].j0; jh < t[1].j1; ++jh) {
        const int64_t row = ((t[0].start + ja * d[0]) * a.in[1] + t[1].start + jh * d[1]) * a.in[2] + t[2].start;
        for (int64_t jw = t[2].j0; jw < t[2].j1; ++jw) sum += xp[row + jw * d[2]];
      }
    y[e] = sum / sliding_window::pool_divisor(t, a.include_pad);
  }
}

// The output positions [o0, o1) along axis ax whose window may hold input
// position i (those with a tap on it, where the dilation allows).
__device__ __forceinline__ void windows_holding(const PoolArgs& a, int ax, int64_t i, int64_t* o0, int64_t* o1) {
  const Window& w = a.win;
  const int64_t t = i + w.p[ax], reach = (w.k[ax] - 1) * w.d[ax];
  *o0 = t - reach > 0 ? (t - reach + w.s[ax] - 1) / w.s[ax] : 0;
  *o1 = t / w.s[ax] + 1 < a.out[ax] ? t / w.s[ax] + 1 : a.out[ax];
}

// A gather: one thread per element of dx sums dy[o] / divisor over the
// windows containing it in increasing o, the CPU's order; overwrites dx.
__global__ void average_pool_grad_k(PoolArgs a, const float* dy, float* dx) {
  const int64_t P = a.out[0] * a.out[1] * a.out[2], in_plane = a.in[0] * a.in[1] * a.in[2], total = a.planes * in_plane;
  const Window& w = a.win;
  GRID_STRIDE(e, total) {
    const int64_t q = e % in_plane;
    const int64_t i[kMaxSpatial] = {q / (a.in[1] * a.in[2]), (q / a.in[2]) % a.in[1], q % a.in[2]};
    int64_t lo[kMaxSpatial], hi[kMaxSpatial];
    for (int ax = 0; ax < kMaxSpatial; ++ax) windows_holding(a, ax, i[ax], &lo[ax], &hi[ax]);
    const float* dyp = dy + (e / in_plane) * P;
    float sum = 0.f;
    Taps t[kMaxSpatial];
    for (int64_t od = lo[0]; od < hi[0]; ++od) {
      if ((i[0] + w.p[0] - od * w.s[0]) % w.d[0] != 0) continue;
      t[0] = sliding_window::window_taps(w, 0, a.in[0], od);
      for (int64_t oh = lo[1]; oh < hi[1]; ++oh) {
        if ((i[1] + w.p[1] - oh * w.s[1]) % w.d[1] != 0) continue;
        t[1] = sliding_window::window_taps(w, 1, a.in[1], oh);
        for (int64_t ow = lo[2]; ow < hi[2]; ++ow) {
          if ((i[2] + w.p[2] - ow * w.s[2]) % w.d[2] != 0) continue;
          t[2] = sliding_window::window_taps(w, 2, a.in[2], ow);
          sum += dyp[(od * a.out[1] + oh) * a.out[2] + ow] / sliding_window::pool_divisor(t, a.include_pad);
        }
      }
    }
    dx[e] = sum;
  }
}

}  // namespace

cudaError_t im2col(cudaStream_t st, const ConvArgs& a, const float* x, int64_t n0, int64_t nc, int64_t gi, float* col) {
  const int64_t total = (a.c / a.group) * a.win.volume() * nc * a.out[0] * a.out[1] * a.out[2];
  if (total == 0) return cudaSuccess;
  im2col_k<<<blocks_for(total), kThreads, 0, st>>>(a, x, n0, nc, gi, col);
  return cudaGetLastError();
}

cudaError_t col2im(cudaStream_t st, const ConvArgs& a, const float* col, int64_t n0, int64_t nc, int64_t gi,
                   float* dx) {
  const int64_t total = nc * (a.c / a.group) * a.in[0] * a.in[1] * a.in[2];
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
  const int64_t total = a.planes * a.out[0] * a.out[1] * a.out[2];
  if (total == 0) return cudaSuccess;
  max_pool_k<<<blocks_for(total), kThreads, 0, st>>>(a, x, y, argmax);
  return cudaGetLastError();
}

cudaError_t max_pool_grad(cudaStream_t st, const PoolArgs& a, const float* dy, const int64_t* argmax, float* dx,
                          int opcode, int* err) {
  const int64_t total = a.planes * a.out[0] * a.out[1] * a.out[2];
  if (a.planes * a.in[0] * a.in[1] * a.in[2] > 0) {
    const cudaError_t e = cudaMemsetAsync(dx, 0, size_t(a.planes * a.in[0] * a.in[1] * a.in[2]) * sizeof(float), st);
    if (e != cudaSuccess) return e;
  }
  if (total == 0) return cudaSuccess;
  max_pool_grad_k<<<blocks_for(total), kThreads, 0, st>>>(a, dy, argmax, dx, kErrIndex * 1024 + opcode, err);
  return cudaGetLastError();
}

cudaError_t average_pool(cudaStream_t st, const PoolArgs& a, const float* x, float* y) {
  const int64_t total = a.planes * a.out[0] * a.out[1] * a.out[2];
  if (total == 0) return cudaSuccess;
  average_pool_k<<<blocks_for(total), kThreads, 0, st>>>(a, x, y);
  return cudaGetLastError();
}

cudaError_t average_pool_grad(cudaStream_t st, const PoolArgs& a, const float* dy, float* dx) {
  const int64_t total = a.planes * a.in[0] * a.in[1] * a.in[2];
  if (total == 0) return cudaSuccess;
  average_pool_grad_k<<<blocks_for(total), kThreads, 0, st>>>(a, dy, dx);
  return cudaGetLastError();
}

}  // namespace zero::cuda
