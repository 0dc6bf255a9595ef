// CPU kernels: Conv (im2col + GEMM) and pooling over 1 to 3 spatial dimensions. Each kernel's prepare checks its
// operands at load (the shared checks of kernel_checks.h) and keeps the geometry its execute runs from.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "backend.h"
#include "cpu/kernels.h"
#include "kernel_checks.h"

namespace zero {
namespace {

// ---- Conv, pooling (1-D to 3-D, held as 3-D: zero/sliding_window.h) -------
//
// Conv and its gradients are im2col + GEMM over chunks of images: the
// columns of a chunk of nc images form one [C/group * kD * kH * kW,
// nc * OD * OH * OW] matrix, so small late-layer feature maps still make
// wide GEMMs. The checks (validate_conv, pool_geometry, ...) are in
// kernel_checks/, shared with the CUDA backend; the scratch is the
// session's, sized at prepare.

// The cap on the floats of one im2col chunk (zero/kernel_scratch.h).
int64_t conv_scratch_limit = kernel_scratch::kCpuConvChunkFloats;

// A conv's geometry and its chunking, fixed at prepare: the chunk and the
// session's scratch are sized by the same cap.
struct ConvState {
  ConvGeom g;
  int64_t chunk;  // images per im2col chunk
};

// Conv, ConvGradInput or ConvGradWeight by its validate_conv*.
template <Status (*kValidate)(const KernelCall&, ConvGeom*)>
Status prepare_conv(const KernelCall& call, ConvState* s) {
  ZERO_RETURN_IF_ERROR(kValidate(call, &s->g));
  s->chunk = kernel_scratch::conv_chunk(conv_dims(s->g), s->g.kdim(), conv_scratch_limit);
  return Status();
}

size_t conv_scratch_bytes(const ConvState& s) {
  return size_t(kernel_scratch::cpu_conv_bytes(conv_dims(s.g), conv_scratch_limit));
}

// The kernel scratch as cpu_conv_bytes lays it out: a chunk's columns, then
// one group's y or dy of a chunk (used only for chunks of several images).
struct ConvScratch {
  float* col;
  float* group_rows;
};

ConvScratch conv_scratch(const KernelContext& ctx, const ConvState& s) {
  float* col = static_cast<float*>(ctx.scratch);
  return {col, s.chunk > 1 ? col + s.g.kdim() * s.chunk * s.g.plane() : nullptr};
}

// Valid output positions [lo, hi) along spatial axis `axis` of kernel tap
// j: those reading inside x.
void valid_range(const ConvGeom& g, int axis, int64_t j, int64_t* lo, int64_t* hi) {
  const int64_t off = j * g.win.d[axis] - g.win.p[axis], st = g.win.s[axis], out = g.out[axis];
  *lo = off >= 0 ? 0 : std::min(out, (-off + st - 1) / st);
  *hi = g.in[axis] - 1 - off < 0 ? 0 : std::min(out, (g.in[axis] - 1 - off) / st + 1);
  if (*hi < *lo) *hi = *lo;
}

// The im2col correspondence, row by row: col[(c*kD + a)*kH*kW + i*kW + j]
// [nn*P + (od*OH + oh)*OW + ow] is x[n0 + nn, gi*Cg + c, id, ih, iw] (0 in
// the padding), P = OD*OH*OW. Calls f(dst, src, lo, hi, off_w) for each
// output row of OW columns, dst its start in col and src the x row it reads
// (nullptr where the row lies in the padding), with [lo, hi) its columns
// reading x at src[ow * stride + off_w]. im2col writes col from x, col2im
// x (dx) from col.
template <class Col, class X, class F>
void for_each_col_row(const ConvGeom& g, int64_t n0, int64_t nc, int64_t gi, Col* col, X* x, F f) {
  const Window& win = g.win;
  const int64_t cg = g.cg(), P = g.plane(), ld = nc * P, in_plane = g.in_plane();
  int64_t r = 0;
  for (int64_t c = 0; c < cg; ++c)
    for (int64_t a = 0; a < win.k[0]; ++a)
      for (int64_t i = 0; i < win.k[1]; ++i)
        for (int64_t j = 0; j < win.k[2]; ++j, ++r) {
          int64_t lo, hi;
          valid_range(g, 2, j, &lo, &hi);
          const int64_t off_w = j * win.d[2] - win.p[2];
          for (int64_t nn = 0; nn < nc; ++nn) {
            X* vol = x + ((n0 + nn) * g.c + gi * cg + c) * in_plane;
            Col* dst = col + r * ld + nn * P;
            for (int64_t od = 0; od < g.out[0]; ++od) {
              const int64_t id = od * win.s[0] - win.p[0] + a * win.d[0];
              for (int64_t oh = 0; oh < g.out[1]; ++oh, dst += g.out[2]) {
                const int64_t ih = oh * win.s[1] - win.p[1] + i * win.d[1];
                const bool inside = id >= 0 && id < g.in[0] && ih >= 0 && ih < g.in[1];
                f(dst, inside ? vol + (id * g.in[1] + ih) * g.in[2] : nullptr, lo, hi, off_w);
              }
            }
          }
        }
}

// col = im2col(x) of images [n0, n0 + nc), group gi.
void im2col(const ConvGeom& g, const float* x, int64_t n0, int64_t nc, int64_t gi, float* col) {
  const int64_t ow_end = g.out[2], sw = g.win.s[2];
  for_each_col_row(g, n0, nc, gi, col, x, [&](float* dst, const float* src, int64_t lo, int64_t hi, int64_t off_w) {
    if (!src) {
      std::fill(dst, dst + ow_end, 0.f);
      return;
    }
    std::fill(dst, dst + lo, 0.f);
    if (sw == 1) {
      if (hi > lo) std::memcpy(dst + lo, src + lo + off_w, size_t(hi - lo) * sizeof(float));
    } else {
      for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow * sw + off_w];
    }
    std::fill(dst + hi, dst + ow_end, 0.f);
  });
}

// The adjoint of im2col: dx[...] += col[...] over the valid positions.
void col2im(const ConvGeom& g, const float* col, int64_t n0, int64_t nc, int64_t gi, float* dx) {
  const int64_t sw = g.win.s[2];
  for_each_col_row(g, n0, nc, gi, col, dx, [&](const float* src, float* dst, int64_t lo, int64_t hi, int64_t off_w) {
    if (!dst) return;
    if (sw == 1) {
      for (int64_t ow = lo; ow < hi; ++ow) dst[ow + off_w] += src[ow];
    } else {
      for (int64_t ow = lo; ow < hi; ++ow) dst[ow * sw + off_w] += src[ow];
    }
  });
}

Status conv(const KernelContext& ctx, const KernelCall& call, const ConvState& s) {
  const Tensor &x = call.in[0], &w = call.in[1], &y = call.out[0];
  const ConvGeom& g = s.g;
  const float* bias = call.num_in > 2 ? call.in[2].f32() : nullptr;
  const int64_t K = g.kdim(), P = g.plane(), mg = g.mg(), nc = s.chunk;
  const ConvScratch scratch = conv_scratch(ctx, s);
  float* col = scratch.col;
  for (int64_t n0 = 0; n0 < g.n; n0 += nc) {
    const int64_t cur = std::min(nc, g.n - n0), ld = cur * P;
    for (int64_t gi = 0; gi < g.group; ++gi) {
      im2col(g, x.f32(), n0, cur, gi, col);
      // One image: the GEMM writes y's [mg, P] block directly.
      float* out = cur == 1 ? y.f32() + (n0 * g.m + gi * mg) * P : scratch.group_rows;
      sgemm(false, false, mg, ld, K, 1.f, w.f32() + gi * mg * K, col, 0.f, out);
      for (int64_t nn = 0; nn < cur; ++nn)
        for (int64_t m = 0; m < mg; ++m) {
          float* dst = y.f32() + ((n0 + nn) * g.m + gi * mg + m) * P;
          const float* src = out + m * ld + nn * P;
          const float b = bias ? bias[gi * mg + m] : 0.f;
          if (src == dst) {
            if (bias)
              for (int64_t p = 0; p < P; ++p) dst[p] += b;
          } else {
            for (int64_t p = 0; p < P; ++p) dst[p] = src[p] + b;
          }
        }
    }
  }
  return Status();
}

// dy [mg, cur*P] of group gi for images [n0, n0 + cur), gathered from
// [N, M, P] into `out` (or dy itself for one image).
const float* gather_dy(const ConvGeom& g, const float* dy, int64_t n0, int64_t cur, int64_t gi, float* out) {
  const int64_t P = g.plane(), mg = g.mg();
  if (cur == 1) return dy + (n0 * g.m + gi * mg) * P;
  for (int64_t m = 0; m < mg; ++m)
    for (int64_t nn = 0; nn < cur; ++nn)
      std::memcpy(out + (m * cur + nn) * P, dy + ((n0 + nn) * g.m + gi * mg + m) * P, size_t(P) * sizeof(float));
  return out;
}

Status conv_grad_input(const KernelContext& ctx, const KernelCall& call, const ConvState& s) {
  const Tensor &dy = call.in[0], &w = call.in[1], &dx = call.out[0];
  const ConvGeom& g = s.g;
  std::fill(dx.f32(), dx.f32() + dx.numel, 0.f);
  const int64_t K = g.kdim(), P = g.plane(), mg = g.mg(), nc = s.chunk;
  const ConvScratch scratch = conv_scratch(ctx, s);
  float* col = scratch.col;
  for (int64_t n0 = 0; n0 < g.n; n0 += nc) {
    const int64_t cur = std::min(nc, g.n - n0);
    for (int64_t gi = 0; gi < g.group; ++gi) {
      const float* dyb = gather_dy(g, dy.f32(), n0, cur, gi, scratch.group_rows);
      sgemm(true, false, K, cur * P, mg, 1.f, w.f32() + gi * mg * K, dyb, 0.f, col);
      col2im(g, col, n0, cur, gi, dx.f32());
    }
  }
  return Status();
}

Status conv_grad_weight(const KernelContext& ctx, const KernelCall& call, const ConvState& s) {
  const Tensor &dy = call.in[0], &x = call.in[1], &dw = call.out[0];
  const ConvGeom& g = s.g;
  std::fill(dw.f32(), dw.f32() + dw.numel, 0.f);
  const int64_t K = g.kdim(), P = g.plane(), mg = g.mg(), nc = s.chunk;
  const ConvScratch scratch = conv_scratch(ctx, s);
  float* col = scratch.col;
  for (int64_t n0 = 0; n0 < g.n; n0 += nc) {
    const int64_t cur = std::min(nc, g.n - n0);
    for (int64_t gi = 0; gi < g.group; ++gi) {
      im2col(g, x.f32(), n0, cur, gi, col);
      const float* dyb = gather_dy(g, dy.f32(), n0, cur, gi, scratch.group_rows);
      // dw_g [mg, K] += dy_g [mg, cur*P] . col^T
      sgemm(false, true, mg, K, cur * P, 1.f, dyb, col, 1.f, dw.f32() + gi * mg * K);
    }
  }
  return Status();
}

// ---- pooling -------------------------------------------------------------

using sliding_window::Taps;

// Calls f(out_index, taps) for each output position of one plane, taps
// being its window's along D, H and W.
template <class F>
void for_each_window(const PoolGeom& g, F f) {
  Taps t[kMaxSpatial];
  int64_t o = 0;
  for (int64_t od = 0; od < g.out[0]; ++od) {
    t[0] = sliding_window::window_taps(g.win, 0, g.in[0], od);
    for (int64_t oh = 0; oh < g.out[1]; ++oh) {
      t[1] = sliding_window::window_taps(g.win, 1, g.in[1], oh);
      for (int64_t ow = 0; ow < g.out[2]; ++ow) {
        t[2] = sliding_window::window_taps(g.win, 2, g.in[2], ow);
        f(o++, t);
      }
    }
  }
}

// Calls v(i) for the index i within the plane of each element of x a window
// reads, in row-major window order.
template <class V>
void for_each_tap(const PoolGeom& g, const Taps* t, V v) {
  const int64_t* d = g.win.d;
  for (int64_t a = t[0].j0; a < t[0].j1; ++a)
    for (int64_t i = t[1].j0; i < t[1].j1; ++i) {
      const int64_t row = ((t[0].start + a * d[0]) * g.in[1] + t[1].start + i * d[1]) * g.in[2] + t[2].start;
      for (int64_t j = t[2].j0; j < t[2].j1; ++j) v(row + j * d[2]);
    }
}

// The first maximum in row-major window order wins; a NaN wins over numbers
// (the first NaN), so NaN propagates.
Status max_pool(const KernelContext&, const KernelCall& call, const PoolGeom& g) {
  const int64_t in_plane = g.in_plane(), P = g.plane();
  for (int64_t pl = 0; pl < g.planes; ++pl) {
    const float* x = call.in[0].f32() + pl * in_plane;
    float* y = call.out[0].f32() + pl * P;
    int64_t* am = call.num_out > 1 ? call.out[1].i64() + pl * P : nullptr;
    for_each_window(g, [&](int64_t o, const Taps* t) {
      int64_t best_i = -1;
      float best = 0.f;
      for_each_tap(g, t, [&](int64_t i) {
        const float v = x[i];
        if (best_i < 0 || v > best || (v != v && best == best)) {
          best = v;
          best_i = i;
        }
      });
      y[o] = best;
      if (am) am[o] = best_i;
    });
  }
  return Status();
}

Status max_pool_grad(const KernelContext&, const KernelCall& call, const PoolGeom& g) {
  const int64_t in_plane = g.in_plane(), P = g.plane();
  float* dx = call.out[0].f32();
  std::fill(dx, dx + call.out[0].numel, 0.f);
  const float* dy = call.in[0].f32();
  const int64_t* am = call.in[1].i64();
  for (int64_t pl = 0; pl < g.planes; ++pl)
    for (int64_t o = 0; o < P; ++o) {
      const int64_t i = am[pl * P + o];
      if (i < 0 || i >= in_plane)
        return fail_data(call, "argmax " + std::to_string(i) + " out of range [0, " + std::to_string(in_plane) + ")");
      dx[pl * in_plane + i] += dy[pl * P + o];
    }
  return Status();
}

Status average_pool(const KernelContext&, const KernelCall& call, const PoolGeom& g) {
  const int64_t in_plane = g.in_plane(), P = g.plane();
  for (int64_t pl = 0; pl < g.planes; ++pl) {
    const float* x = call.in[0].f32() + pl * in_plane;
    float* y = call.out[0].f32() + pl * P;
    for_each_window(g, [&](int64_t o, const Taps* t) {
      float sum = 0.f;
      for_each_tap(g, t, [&](int64_t i) { sum += x[i]; });
      y[o] = sum / sliding_window::pool_divisor(t, g.include_pad);
    });
  }
  return Status();
}

Status average_pool_grad(const KernelContext&, const KernelCall& call, const PoolGeom& g) {
  const int64_t in_plane = g.in_plane(), P = g.plane();
  float* pdx = call.out[0].f32();
  std::fill(pdx, pdx + call.out[0].numel, 0.f);
  for (int64_t pl = 0; pl < g.planes; ++pl) {
    const float* dy = call.in[0].f32() + pl * P;
    float* dx = pdx + pl * in_plane;
    for_each_window(g, [&](int64_t o, const Taps* t) {
      const float v = dy[o] / sliding_window::pool_divisor(t, g.include_pad);
      for_each_tap(g, t, [&](int64_t i) { dx[i] += v; });
    });
  }
  return Status();
}

}  // namespace

int64_t set_cpu_conv_scratch_limit(int64_t floats) {
  const int64_t old = conv_scratch_limit;
  conv_scratch_limit = std::max<int64_t>(1, floats);
  return old;
}

void add_cpu_conv_pool_kernels(TableBackend& backend) {
  using plan::Opcode;
  backend.set(Opcode::Conv, define_kernel<prepare_conv<validate_conv>, conv, conv_scratch_bytes>());
  backend.set(Opcode::ConvGradInput,
              define_kernel<prepare_conv<validate_conv_grad_input>, conv_grad_input, conv_scratch_bytes>());
  backend.set(Opcode::ConvGradWeight,
              define_kernel<prepare_conv<validate_conv_grad_weight>, conv_grad_weight, conv_scratch_bytes>());
  backend.set(Opcode::MaxPool, define_kernel<validate_max_pool, max_pool>());
  backend.set(Opcode::MaxPoolGrad, define_kernel<validate_max_pool_grad, max_pool_grad>());
  backend.set(Opcode::AveragePool, define_kernel<validate_average_pool, average_pool>());
  backend.set(Opcode::AveragePoolGrad, define_kernel<validate_average_pool_grad, average_pool_grad>());
}

}  // namespace zero
