// CPU kernels: Conv (im2col + GEMM) and pooling, 2-D NCHW. Each kernel's prepare checks its operands at load (the
// shared checks of kernel_checks.h) and keeps the geometry its execute runs from.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "backend.h"
#include "cpu/kernels.h"
#include "kernel_checks.h"

namespace zero {
namespace {

// ---- Conv, pooling, BatchNormalization (2-D NCHW, F32) -------------------
//
// Conv and its gradients are im2col + GEMM over chunks of images: the
// columns of a chunk of nc images form one [C/group * kH * kW, nc * OH * OW]
// matrix, so small late-layer feature maps still make wide GEMMs. The
// checks (validate_conv, pool_geometry, ...) are in kernel_checks/, shared
// with the CUDA backend; the scratch is the session's, sized at prepare.

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

// Valid output columns [lo, hi) of kernel column j: those reading inside x.
void valid_cols(const ConvGeom& g, int64_t j, int64_t* lo, int64_t* hi) {
  const int64_t off = j * g.win.d[1] - g.win.p[1], sw = g.win.s[1];
  *lo = off >= 0 ? 0 : std::min(g.ow, (-off + sw - 1) / sw);
  *hi = g.w - 1 - off < 0 ? 0 : std::min(g.ow, (g.w - 1 - off) / sw + 1);
  if (*hi < *lo) *hi = *lo;
}

// col[(c*kH + i)*kW + j][nn*P + oh*OW + ow] = x[n0 + nn, gi*Cg + c, ih, iw]
// (0 in the padding), P = OH*OW.
void im2col(const ConvGeom& g, const float* x, int64_t n0, int64_t nc, int64_t gi, float* col) {
  const int64_t cg = g.cg(), kh = g.win.k[0], kw = g.win.k[1], P = g.plane(), ld = nc * P, hw = g.h * g.w;
  const int64_t sh = g.win.s[0], sw = g.win.s[1];
  for (int64_t c = 0; c < cg; ++c)
    for (int64_t i = 0; i < kh; ++i)
      for (int64_t j = 0; j < kw; ++j) {
        float* row = col + ((c * kh + i) * kw + j) * ld;
        int64_t lo, hi;
        valid_cols(g, j, &lo, &hi);
        const int64_t off_w = j * g.win.d[1] - g.win.p[1];
        for (int64_t nn = 0; nn < nc; ++nn) {
          const float* plane = x + ((n0 + nn) * g.c + gi * cg + c) * hw;
          for (int64_t oh = 0; oh < g.oh; ++oh) {
            float* dst = row + nn * P + oh * g.ow;
            const int64_t ih = oh * sh - g.win.p[0] + i * g.win.d[0];
            if (ih < 0 || ih >= g.h) {
              std::fill(dst, dst + g.ow, 0.f);
              continue;
            }
            const float* src = plane + ih * g.w;
            std::fill(dst, dst + lo, 0.f);
            if (sw == 1) {
              if (hi > lo) std::memcpy(dst + lo, src + lo + off_w, size_t(hi - lo) * sizeof(float));
            } else {
              for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow * sw + off_w];
            }
            std::fill(dst + hi, dst + g.ow, 0.f);
          }
        }
      }
}

// The adjoint of im2col: dx[...] += col[...] over the valid positions.
void col2im(const ConvGeom& g, const float* col, int64_t n0, int64_t nc, int64_t gi, float* dx) {
  const int64_t cg = g.cg(), kh = g.win.k[0], kw = g.win.k[1], P = g.plane(), ld = nc * P, hw = g.h * g.w;
  const int64_t sh = g.win.s[0], sw = g.win.s[1];
  for (int64_t c = 0; c < cg; ++c)
    for (int64_t i = 0; i < kh; ++i)
      for (int64_t j = 0; j < kw; ++j) {
        const float* row = col + ((c * kh + i) * kw + j) * ld;
        int64_t lo, hi;
        valid_cols(g, j, &lo, &hi);
        const int64_t off_w = j * g.win.d[1] - g.win.p[1];
        for (int64_t nn = 0; nn < nc; ++nn) {
          float* plane = dx + ((n0 + nn) * g.c + gi * cg + c) * hw;
          for (int64_t oh = 0; oh < g.oh; ++oh) {
            const int64_t ih = oh * sh - g.win.p[0] + i * g.win.d[0];
            if (ih < 0 || ih >= g.h) continue;
            const float* src = row + nn * P + oh * g.ow;
            float* dst = plane + ih * g.w;
            if (sw == 1) {
              for (int64_t ow = lo; ow < hi; ++ow) dst[ow + off_w] += src[ow];
            } else {
              for (int64_t ow = lo; ow < hi; ++ow) dst[ow * sw + off_w] += src[ow];
            }
          }
        }
      }
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

// Calls f(out_index, h0, h1, w0, w1, padded) for each output position of one
// plane with its window clipped to the input; padded counts the window's
// positions inside the padded input (the kernel size but where a ceil_mode
// window reaches past the bottom/right padding), the count_include_pad
// divisor.
template <class F>
void for_each_window(const PoolGeom& g, F f) {
  for (int64_t oh = 0; oh < g.oh; ++oh) {
    const int64_t hs = oh * g.win.s[0] - g.win.p[0];
    const int64_t h0 = std::max<int64_t>(hs, 0), h1 = std::min(hs + g.win.k[0], g.h);
    const int64_t ph = std::min(hs + g.win.k[0], g.h + g.win.p[2]) - hs;
    for (int64_t ow = 0; ow < g.ow; ++ow) {
      const int64_t ws = ow * g.win.s[1] - g.win.p[1];
      const int64_t pw = std::min(ws + g.win.k[1], g.w + g.win.p[3]) - ws;
      f(oh * g.ow + ow, h0, h1, std::max<int64_t>(ws, 0), std::min(ws + g.win.k[1], g.w), ph * pw);
    }
  }
}

// The first maximum in row-major window order wins; a NaN wins over numbers
// (the first NaN), so NaN propagates.
Status max_pool(const KernelContext&, const KernelCall& call, const PoolGeom& g) {
  const int64_t hw = g.h * g.w, ohw = g.oh * g.ow;
  for (int64_t pl = 0; pl < g.planes; ++pl) {
    const float* x = call.in[0].f32() + pl * hw;
    float* y = call.out[0].f32() + pl * ohw;
    int64_t* am = call.num_out > 1 ? call.out[1].i64() + pl * ohw : nullptr;
    for_each_window(g, [&](int64_t o, int64_t h0, int64_t h1, int64_t w0, int64_t w1, int64_t) {
      int64_t best_i = h0 * g.w + w0;
      float best = x[best_i];
      for (int64_t ih = h0; ih < h1; ++ih)
        for (int64_t iw = w0; iw < w1; ++iw) {
          const float v = x[ih * g.w + iw];
          if (v > best || (v != v && best == best)) {
            best = v;
            best_i = ih * g.w + iw;
          }
        }
      y[o] = best;
      if (am) am[o] = best_i;
    });
  }
  return Status();
}

Status max_pool_grad(const KernelContext&, const KernelCall& call, const PoolGeom& g) {
  const int64_t hw = g.h * g.w, ohw = g.oh * g.ow;
  float* dx = call.out[0].f32();
  std::fill(dx, dx + call.out[0].numel, 0.f);
  const float* dy = call.in[0].f32();
  const int64_t* am = call.in[1].i64();
  for (int64_t pl = 0; pl < g.planes; ++pl)
    for (int64_t o = 0; o < ohw; ++o) {
      const int64_t i = am[pl * ohw + o];
      if (i < 0 || i >= hw)
        return fail_data(call, "argmax " + std::to_string(i) + " out of range [0, " + std::to_string(hw) + ")");
      dx[pl * hw + i] += dy[pl * ohw + o];
    }
  return Status();
}

Status average_pool(const KernelContext&, const KernelCall& call, const PoolGeom& g) {
  const int64_t hw = g.h * g.w, ohw = g.oh * g.ow;
  for (int64_t pl = 0; pl < g.planes; ++pl) {
    const float* x = call.in[0].f32() + pl * hw;
    float* y = call.out[0].f32() + pl * ohw;
    for_each_window(g, [&](int64_t o, int64_t h0, int64_t h1, int64_t w0, int64_t w1, int64_t padded) {
      float sum = 0.f;
      for (int64_t ih = h0; ih < h1; ++ih)
        for (int64_t iw = w0; iw < w1; ++iw) sum += x[ih * g.w + iw];
      y[o] = sum / float(g.include_pad ? padded : (h1 - h0) * (w1 - w0));
    });
  }
  return Status();
}

Status average_pool_grad(const KernelContext&, const KernelCall& call, const PoolGeom& g) {
  const int64_t hw = g.h * g.w, ohw = g.oh * g.ow;
  float* pdx = call.out[0].f32();
  std::fill(pdx, pdx + call.out[0].numel, 0.f);
  for (int64_t pl = 0; pl < g.planes; ++pl) {
    const float* dy = call.in[0].f32() + pl * ohw;
    float* dx = pdx + pl * hw;
    for_each_window(g, [&](int64_t o, int64_t h0, int64_t h1, int64_t w0, int64_t w1, int64_t padded) {
      const float v = dy[o] / float(g.include_pad ? padded : (h1 - h0) * (w1 - w0));
      for (int64_t ih = h0; ih < h1; ++ih)
        for (int64_t iw = w0; iw < w1; ++iw) dx[ih * g.w + iw] += v;
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
