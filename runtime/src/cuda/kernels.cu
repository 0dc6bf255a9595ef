// CUDA kernels of the CUDA backend. Semantics follow the CPU kernels
// (runtime/src/cpu/) operation by operation: the same float
// expressions, double accumulators where the CPU uses them, and -fmad=false
// (CMakeLists.txt) so elementwise results match bit for bit. Reductions differ
// from the CPU only in summation order. Outputs may alias inputs exactly:
// every kernel reads an element before it writes it, and kernels that reduce
// first finish the reduction (a barrier) before writing.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "cuda/launch.cuh"
#include "kernels.h"

namespace zero::cuda {
namespace {

// Block-wide reductions (blockDim.x a power of two <= 256); every thread gets
// the result.
__device__ double block_sum(double v) {
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

__device__ float block_max(float v) {
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

// ---- elementwise (the rest: elementwise.cu) ------------------------------

__global__ void cast_i64_f32_k(const int64_t* x, float* y, int64_t n) { GRID_STRIDE(i, n) y[i] = float(x[i]); }

__global__ void cast_f32_i64_k(const float* x, int64_t* y, int64_t n) {
  GRID_STRIDE(i, n) {
    const float v = x[i];
    int64_t r;
    if (isnan(v)) r = 0;
    else if (v >= 9.2233720368547758e18f) r = INT64_MAX;
    else if (v <= -9.2233720368547758e18f) r = INT64_MIN;
    else r = int64_t(v);
    y[i] = r;
  }
}

template <class T>
__global__ void fill_k(T* y, T v, int64_t n) {
  GRID_STRIDE(i, n) y[i] = v;
}

__global__ void scale_k(float* y, float v, int64_t n) { GRID_STRIDE(i, n) y[i] = v * y[i]; }

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

// One block per output element.
__global__ void reduce_k(const float* x, float* y, Strided kept, Strided red, int64_t count, bool mean) {
  const int64_t o = blockIdx.x;
  const int64_t base = offset_of(kept, 0, o);
  double acc = 0;
  for (int64_t r = threadIdx.x; r < count; r += blockDim.x) acc += x[base + offset_of(red, 0, r)];
  acc = block_sum(acc);
  if (threadIdx.x == 0) y[o] = float(mean ? acc / double(count) : acc);
}

// One thread per output element, for few elements per output (a block per
// output would leave most of its threads idle).
__global__ void reduce_rows_k(const float* x, float* y, Strided kept, Strided red, int64_t out_numel, int64_t count,
                              bool mean) {
  GRID_STRIDE(o, out_numel) {
    const int64_t base = offset_of(kept, 0, o);
    double acc = 0;
    for (int64_t r = 0; r < count; ++r) acc += x[base + offset_of(red, 0, r)];
    y[o] = float(mean ? acc / double(count) : acc);
  }
}

// Few outputs over many elements: block b sums slice b % slices of output
// b / slices into partial[b]; reduce_finish_k adds the slices in order.
__global__ void reduce_partial_k(const float* x, double* partial, Strided kept, Strided red, int64_t count,
                                 int64_t slices) {
  const int64_t b = blockIdx.x, o = b / slices, len = (count + slices - 1) / slices;
  const int64_t r0 = (b % slices) * len, r1 = r0 + len < count ? r0 + len : count;
  const int64_t base = offset_of(kept, 0, o);
  double acc = 0;
  for (int64_t r = r0 + threadIdx.x; r < r1; r += blockDim.x) acc += x[base + offset_of(red, 0, r)];
  acc = block_sum(acc);
  if (threadIdx.x == 0) partial[b] = acc;
}

__global__ void reduce_finish_k(const double* partial, float* y, int64_t out_numel, int64_t slices, int64_t count,
                                bool mean) {
  GRID_STRIDE(o, out_numel) {
    double acc = 0;
    for (int64_t s = 0; s < slices; ++s) acc += partial[o * slices + s];
    y[o] = float(mean ? acc / double(count) : acc);
  }
}

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
      if (label < 0 || label >= a.c) report(err, kErrLabel * 1024 + a.opcode);
      else v = -(double(x[base + label * a.inner]) - lse) * counted_weight(a, weights, label);
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
__global__ void count_k(LossArgs a, const int64_t* labels, const float* weights, int64_t positions,
                        double* count_out) {
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
  return Clipped{hs > 0 ? hs : 0, hs + a.kh < a.h ? hs + a.kh : a.h, ws > 0 ? ws : 0, ws + a.kw < a.w ? ws + a.kw : a.w};
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

// One block per channel of x viewed as [n, c, inner]; two passes in double
// (the mean, then the biased variance around it) as on the CPU.
__global__ void batch_norm_k(const float* x, const float* scale, const float* bias, float* rmean, float* rvar,
                             float* y, float* smean, float* sinv, int64_t n, int64_t ch, int64_t inner, double eps,
                             double mom) {
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

// ---- optimizers -------------------------------------------------------------

__global__ void sgd_k(float* p, const float* g, float* buf, int64_t n, float lr, float momentum, float wd) {
  GRID_STRIDE(i, n) {
    float d = wd != 0.f ? g[i] + wd * p[i] : g[i];
    if (buf) d = buf[i] = momentum * buf[i] + d;
    p[i] += -lr * d;
  }
}

__global__ void adamw_k(float* p, const float* g, float* m, float* v, const int64_t* step, int64_t n, double lr,
                        double b1, double b2, float eps, float decay, float w1, float fb2, float w2, int code,
                        int* err) {
  __shared__ float step_size, bc2_sqrt;
  __shared__ bool bad;
  if (threadIdx.x == 0) {
    const int64_t t = *step;
    bad = t < 1;
    if (bad) {
      report(err, code);
    } else {
      const double bc1 = 1.0 - ::pow(b1, double(t)), bc2 = 1.0 - ::pow(b2, double(t));
      step_size = float(lr / bc1);
      bc2_sqrt = float(::sqrt(bc2));
    }
  }
  __syncthreads();
  if (bad) return;
  GRID_STRIDE(i, n) {
    const float gi = g[i];
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

}  // namespace

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

cudaError_t strided_gather(cudaStream_t st, const void* src, void* dst, int elem, const Strided& g, int64_t n) {
  if (n == 0) return cudaSuccess;
  if (elem == 8)
    strided_gather_k<int64_t><<<blocks_for(n), kThreads, 0, st>>>(static_cast<const int64_t*>(src),
                                                                   static_cast<int64_t*>(dst), g, n);
  else
    strided_gather_k<float><<<blocks_for(n), kThreads, 0, st>>>(static_cast<const float*>(src),
                                                                 static_cast<float*>(dst), g, n);
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
    where_k<int64_t><<<blocks_for(n), kThreads, 0, st>>>(cond, static_cast<const int64_t*>(x),
                                                          static_cast<const int64_t*>(y), static_cast<int64_t*>(out),
                                                          g, n);
  else
    where_k<float><<<blocks_for(n), kThreads, 0, st>>>(cond, static_cast<const float*>(x),
                                                        static_cast<const float*>(y), static_cast<float*>(out), g, n);
  return cudaGetLastError();
}

// Split reductions aim at this many blocks (a few per SM) with at least
// kSliceLen elements per block.
constexpr int64_t kReduceBlocks = 1024, kSliceLen = 4096;
// At most this many elements per output: one thread per output.
constexpr int64_t kRowsMax = 32;

int64_t reduce_slices(int64_t out_numel, int64_t count) {
  if (out_numel <= 0 || out_numel >= kReduceBlocks || count < 2 * kSliceLen) return 1;
  return std::min((count + kSliceLen - 1) / kSliceLen, (kReduceBlocks + out_numel - 1) / out_numel);
}

cudaError_t reduce(cudaStream_t st, const float* x, float* y, const Strided& kept, int64_t out_numel,
                   const Strided& red, int64_t count, bool mean, double* partial) {
  if (out_numel == 0) return cudaSuccess;
  const int64_t slices = reduce_slices(out_numel, count);
  if (slices > 1) {
    reduce_partial_k<<<unsigned(out_numel * slices), kThreads, 0, st>>>(x, partial, kept, red, count, slices);
    reduce_finish_k<<<blocks_for(out_numel), kThreads, 0, st>>>(partial, y, out_numel, slices, count, mean);
  } else if (count <= kRowsMax) {
    reduce_rows_k<<<blocks_for(out_numel), kThreads, 0, st>>>(x, y, kept, red, out_numel, count, mean);
  } else {
    reduce_k<<<unsigned(out_numel), row_threads(count), 0, st>>>(x, y, kept, red, count, mean);
  }
  return cudaGetLastError();
}

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

cudaError_t layer_norm(cudaStream_t st, const float* x, const float* scale, const float* bias, float* y, float* mean,
                       float* inv, int64_t outer, int64_t inner, float eps) {
  if (outer == 0) return cudaSuccess;
  layer_norm_k<<<unsigned(outer), row_threads(inner), 0, st>>>(x, scale, bias, y, mean, inv, inner, eps);
  return cudaGetLastError();
}

// Rows per chunk of the LayerNormalizationGrad parameter sums (at least).
constexpr int64_t kParamRows = 64;

// Chunks of rows for the parameter sums: enough threads to fill the GPU, at
// most 2^20 doubles of partial sums per parameter.
int64_t layer_norm_chunks(int64_t outer, int64_t inner) {
  const int64_t cap = std::max<int64_t>(1, (int64_t(1) << 20) / std::max<int64_t>(1, inner));
  return std::max<int64_t>(1, std::min((outer + kParamRows - 1) / kParamRows, cap));
}

int64_t layer_norm_grad_scratch(int64_t outer, int64_t inner) { return 2 * layer_norm_chunks(outer, inner) * inner; }

cudaError_t layer_norm_grad(cudaStream_t st, const float* dy, const float* x, const float* scale, const float* mean,
                            const float* inv, float* dx, float* dscale, float* dbias, int64_t outer, int64_t inner,
                            double* partial) {
  // Parameter gradients first: dx may alias dy or x.
  if ((dscale || dbias) && inner > 0) {
    const int64_t chunks = layer_norm_chunks(outer, inner), rows = (outer + chunks - 1) / chunks;
    double *ps = partial, *pb = partial + chunks * inner;
    layer_norm_params_partial_k<<<blocks_for(chunks * inner), kThreads, 0, st>>>(dy, x, mean, inv, ps, pb, outer,
                                                                                  inner, chunks, rows);
    layer_norm_params_finish_k<<<blocks_for(inner), kThreads, 0, st>>>(ps, pb, dscale, dbias, inner, chunks);
  }
  if (outer > 0)
    layer_norm_grad_k<<<unsigned(outer), row_threads(inner), 0, st>>>(dy, x, scale, mean, inv, dx, inner);
  return cudaGetLastError();
}

cudaError_t sgd(cudaStream_t st, float* p, const float* g, float* buf, int64_t n, float lr, float momentum, float wd) {
  if (n == 0) return cudaSuccess;
  sgd_k<<<blocks_for(n), kThreads, 0, st>>>(p, g, buf, n, lr, momentum, wd);
  return cudaGetLastError();
}

cudaError_t adamw(cudaStream_t st, float* p, const float* g, float* m, float* v, const int64_t* step, int64_t n,
                  double lr, double b1, double b2, float eps, double wd, int opcode, int* err) {
  const float decay = float(1.0 - lr * wd);
  const float w1 = float(1.0 - b1), fb2 = float(b2), w2 = float(1.0 - b2);
  adamw_k<<<blocks_for(n), kThreads, 0, st>>>(p, g, m, v, step, n, lr, b1, b2, eps, decay, w1, fb2, w2,
                                              kErrStep * 1024 + opcode, err);
  return cudaGetLastError();
}

cudaError_t increment(cudaStream_t st, int64_t* step) {
  increment_k<<<1, 1, 0, st>>>(step);
  return cudaGetLastError();
}

cudaError_t im2col(cudaStream_t st, const ConvArgs& a, const float* x, int64_t n0, int64_t nc, int64_t gi,
                   float* col) {
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

cudaError_t batch_norm(cudaStream_t st, const float* x, const float* scale, const float* bias, float* rmean,
                       float* rvar, float* y, float* smean, float* sinv, int64_t n, int64_t c, int64_t inner,
                       double eps, double momentum) {
  if (c == 0) return cudaSuccess;
  batch_norm_k<<<unsigned(c), row_threads(n * inner), 0, st>>>(x, scale, bias, rmean, rvar, y, smean, sinv, n, c,
                                                               inner, eps, momentum);
  return cudaGetLastError();
}

cudaError_t batch_norm_grad(cudaStream_t st, const float* dy, const float* x, const float* scale, const float* mean,
                            const float* inv, float* dx, float* dscale, float* dbias, int64_t n, int64_t c,
                            int64_t inner) {
  if (c == 0) return cudaSuccess;
  batch_norm_grad_k<<<unsigned(c), row_threads(n * inner), 0, st>>>(dy, x, scale, mean, inv, dx, dscale, dbias, n,
                                                                    c, inner);
  return cudaGetLastError();
}

}  // namespace zero::cuda
