// CPU kernels: LayerNormalization and training-mode BatchNormalization. Each kernel's prepare checks its operands at
// load (the shared checks of kernel_checks.h) and keeps the geometry its execute runs from.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "backend.h"
#include "cpu/kernels.h"
#include "kernel_checks.h"

namespace zero {
namespace {

// ---- LayerNormalization --------------------------------------------------

Status layer_norm(const KernelContext&, const KernelCall& call, const LayerNormSplit& s) {
  const Tensor& x = call.in[0];
  const float *px = x.f32(), *pscale = call.in[1].f32(), *pbias = call.in[2].f32();
  float* py = call.out[0].f32();
  float* pmean = call.num_out > 1 ? call.out[1].f32() : nullptr;
  float* pinv = call.num_out > 2 ? call.out[2].f32() : nullptr;
  for (int64_t o = 0; o < s.outer; ++o) {
    const float* row = px + o * s.inner;
    // Two passes in double: mean, then the biased variance around it.
    double sum = 0;
    for (int64_t i = 0; i < s.inner; ++i) sum += row[i];
    const double mean = s.inner ? sum / double(s.inner) : 0.0;
    double sq = 0;
    for (int64_t i = 0; i < s.inner; ++i) sq += (row[i] - mean) * (row[i] - mean);
    const double var = s.inner ? sq / double(s.inner) : 0.0;
    const double inv = 1.0 / std::sqrt(var + double(s.eps));
    // y may alias x exactly: each element is read before it is written.
    float* out = py + o * s.inner;
    for (int64_t i = 0; i < s.inner; ++i)
      out[i] = float((double(row[i]) - mean) * inv * double(pscale[i]) + double(pbias[i]));
    if (pmean) pmean[o] = float(mean);
    if (pinv) pinv[o] = float(inv);
  }
  return Status();
}

size_t layer_norm_grad_scratch_bytes(const LayerNormSplit& s) {
  return size_t(kernel_scratch::cpu_layer_norm_grad_bytes(s.inner));
}

Status layer_norm_grad(const KernelContext& ctx, const KernelCall& call, const LayerNormSplit& s) {
  const Tensor &dy = call.in[0], &x = call.in[1];
  const float *pdy = dy.f32(), *px = x.f32(), *pscale = call.in[2].f32(), *pmean = call.in[3].f32(),
              *pinv = call.in[4].f32();
  float* pdx = call.out[0].f32();
  double *dscale = static_cast<double*>(ctx.scratch), *dbias = dscale + s.inner;
  std::fill(dscale, dbias + s.inner, 0.0);
  for (int64_t o = 0; o < s.outer; ++o) {
    const float *dyr = pdy + o * s.inner, *xr = px + o * s.inner;
    const double mean = pmean[o], inv = pinv[o];
    // g = dy * scale; dx = inv * (g - mean(g) - xhat * mean(g * xhat)).
    double sum_g = 0, sum_gx = 0;
    for (int64_t i = 0; i < s.inner; ++i) {
      const double xhat = (double(xr[i]) - mean) * inv, d = dyr[i];
      const double g = d * double(pscale[i]);
      sum_g += g;
      sum_gx += g * xhat;
      dscale[i] += d * xhat;
      dbias[i] += d;
    }
    const double mg = s.inner ? sum_g / double(s.inner) : 0.0, mgx = s.inner ? sum_gx / double(s.inner) : 0.0;
    // dx may alias dy or x exactly: read both before writing element i.
    float* dxr = pdx + o * s.inner;
    for (int64_t i = 0; i < s.inner; ++i) {
      const double xhat = (double(xr[i]) - mean) * inv;
      const double g = double(dyr[i]) * double(pscale[i]);
      dxr[i] = float(inv * (g - mg - xhat * mgx));
    }
  }
  if (call.num_out > 1)
    for (int64_t i = 0; i < s.inner; ++i) call.out[1].f32()[i] = float(dscale[i]);
  if (call.num_out > 2)
    for (int64_t i = 0; i < s.inner; ++i) call.out[2].f32()[i] = float(dbias[i]);
  return Status();
}

// ---- BatchNormalization (training mode) ----------------------------------

Status batch_norm(const KernelContext&, const KernelCall& call, const BatchNormGeom& g) {
  const Tensor& x = call.in[0];
  const float *px = x.f32(), *scale = call.in[1].f32(), *bias = call.in[2].f32();
  float *rmean = call.in[3].f32(), *rvar = call.in[4].f32(), *py = call.out[0].f32();
  float* smean = call.num_out > 1 ? call.out[1].f32() : nullptr;
  float* sinv = call.num_out > 2 ? call.out[2].f32() : nullptr;
  const double count = double(g.count()), mom = g.momentum;
  for (int64_t c = 0; c < g.c; ++c) {
    // Two passes in double: the mean, then the biased variance around it.
    double sum = 0;
    for (int64_t n = 0; n < g.n; ++n) {
      const float* p = px + (n * g.c + c) * g.inner;
      for (int64_t i = 0; i < g.inner; ++i) sum += p[i];
    }
    const double mean = sum / count;
    double sq = 0;
    for (int64_t n = 0; n < g.n; ++n) {
      const float* p = px + (n * g.c + c) * g.inner;
      for (int64_t i = 0; i < g.inner; ++i) sq += (p[i] - mean) * (p[i] - mean);
    }
    const double var = sq / count, inv = 1.0 / std::sqrt(var + g.eps);
    const double k = inv * double(scale[c]), b = double(bias[c]);
    for (int64_t n = 0; n < g.n; ++n) {
      const float* p = px + (n * g.c + c) * g.inner;
      float* q = py + (n * g.c + c) * g.inner;  // may be p
      for (int64_t i = 0; i < g.inner; ++i) q[i] = float((double(p[i]) - mean) * k + b);
    }
    rmean[c] = float((1.0 - mom) * double(rmean[c]) + mom * mean);
    rvar[c] = float((1.0 - mom) * double(rvar[c]) + mom * var * count / (count - 1.0));
    if (smean) smean[c] = float(mean);
    if (sinv) sinv[c] = float(inv);
  }
  return Status();
}

Status batch_norm_grad(const KernelContext&, const KernelCall& call, const BatchNormGeom& g) {
  const Tensor &dy = call.in[0], &x = call.in[1];
  const float *pdy = dy.f32(), *px = x.f32(), *scale = call.in[2].f32(), *pmean = call.in[3].f32(),
              *pinv = call.in[4].f32();
  float* pdx = call.out[0].f32();
  const double count = double(g.count());
  for (int64_t c = 0; c < g.c; ++c) {
    const double mean = pmean[c], inv = pinv[c];
    double sum_dy = 0, sum_dy_xhat = 0;
    for (int64_t n = 0; n < g.n; ++n) {
      const int64_t at = (n * g.c + c) * g.inner;
      for (int64_t i = 0; i < g.inner; ++i) {
        const double d = pdy[at + i];
        sum_dy += d;
        sum_dy_xhat += d * (double(px[at + i]) - mean) * inv;
      }
    }
    // dx = scale * inv * (dy - mean(dy) - xhat * mean(dy * xhat)).
    const double k = double(scale[c]) * inv, mdy = count > 0 ? sum_dy / count : 0.0,
                 mdx = count > 0 ? sum_dy_xhat / count : 0.0;
    for (int64_t n = 0; n < g.n; ++n) {
      const int64_t at = (n * g.c + c) * g.inner;
      for (int64_t i = 0; i < g.inner; ++i) {
        const double xhat = (double(px[at + i]) - mean) * inv;
        pdx[at + i] = float(k * (double(pdy[at + i]) - mdy - xhat * mdx));
      }
    }
    if (call.num_out > 1) call.out[1].f32()[c] = float(sum_dy_xhat);
    if (call.num_out > 2) call.out[2].f32()[c] = float(sum_dy);
  }
  return Status();
}

}  // namespace

void add_cpu_normalization_kernels(TableBackend& backend) {
  using plan::Opcode;
  backend.set(Opcode::LayerNormalization, define_kernel<validate_layer_norm, layer_norm>());
  backend.set(Opcode::LayerNormalizationGrad,
              define_kernel<validate_layer_norm_grad, layer_norm_grad, layer_norm_grad_scratch_bytes>());
  backend.set(Opcode::BatchNormalization, define_kernel<validate_batch_norm, batch_norm>());
  backend.set(Opcode::BatchNormalizationGrad, define_kernel<validate_batch_norm_grad, batch_norm_grad>());
}

}  // namespace zero
