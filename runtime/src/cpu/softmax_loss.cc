// CPU kernels: the softmax family and the losses. Each kernel's prepare checks its operands at load (the shared checks
// of kernel_checks.h) and keeps the geometry its execute runs from.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "backend.h"
#include "cpu/kernels.h"
#include "kernel_checks.h"

namespace zero {
namespace {

// ---- softmax family ------------------------------------------------------

template <bool kLog>
Status softmax_impl(const KernelContext&, const KernelCall& call, const AxisSplit& s) {
  const Tensor &x = call.in[0], &y = call.out[0];
  const float* px = x.f32();
  float* py = y.f32();
  for (int64_t o = 0; o < s.outer; ++o)
    for (int64_t in = 0; in < s.inner; ++in) {
      const int64_t base = o * s.n * s.inner + in;
      float mx = -INFINITY;
      for (int64_t i = 0; i < s.n; ++i) mx = std::max(mx, px[base + i * s.inner]);
      double sum = 0;
      for (int64_t i = 0; i < s.n; ++i) sum += std::exp(px[base + i * s.inner] - mx);
      if (kLog) {
        const float lse = mx + float(std::log(sum));
        for (int64_t i = 0; i < s.n; ++i) py[base + i * s.inner] = px[base + i * s.inner] - lse;
      } else {
        const float inv = float(1.0 / sum);
        for (int64_t i = 0; i < s.n; ++i) py[base + i * s.inner] = std::exp(px[base + i * s.inner] - mx) * inv;
      }
    }
  return Status();
}

// SoftmaxGrad: dx = y * (dy - sum(dy * y)); LogSoftmaxGrad: dx = dy - exp(y) * sum(dy).
template <bool kLog>
Status softmax_grad_impl(const KernelContext&, const KernelCall& call, const AxisSplit& s) {
  const Tensor &dy = call.in[0], &y = call.in[1], &dx = call.out[0];
  const float *pdy = dy.f32(), *py = y.f32();
  float* pdx = dx.f32();
  for (int64_t o = 0; o < s.outer; ++o)
    for (int64_t in = 0; in < s.inner; ++in) {
      const int64_t base = o * s.n * s.inner + in;
      double sum = 0;
      for (int64_t i = 0; i < s.n; ++i) {
        const int64_t j = base + i * s.inner;
        sum += kLog ? pdy[j] : double(pdy[j]) * py[j];
      }
      const float fs = float(sum);
      for (int64_t i = 0; i < s.n; ++i) {
        const int64_t j = base + i * s.inner;
        pdx[j] = kLog ? pdy[j] - std::exp(py[j]) * fs : py[j] * (pdy[j] - fs);
      }
    }
  return Status();
}

// ---- losses --------------------------------------------------------------

Status check_labels(const KernelCall& call, const LossGeometry& g, const Tensor& labels) {
  const int64_t* pl = labels.i64();
  for (int64_t i = 0; i < labels.numel; ++i)
    if (!g.ignored(pl[i]) && (pl[i] < 0 || pl[i] >= g.c))
      return fail_data(call, "label " + std::to_string(pl[i]) + " out of range [0, " + std::to_string(g.c) + ")");
  return Status();
}

// Writes the reduced or per-position loss from per-position values; Mean
// divides by `total`, the summed weight of the counted labels.
void reduce_loss(const LossGeometry& g, const double* per, double total, float* out) {
  const int64_t positions = g.n * g.inner;
  if (g.reduction == plan::Reduction::None) {
    for (int64_t i = 0; i < positions; ++i) out[i] = float(per[i]);
    return;
  }
  double sum = 0;
  for (int64_t i = 0; i < positions; ++i) sum += per[i];
  // Mean over zero counted labels is 0/0 = NaN, as in PyTorch and ONNX.
  out[0] = float(g.reduction == plan::Reduction::Mean ? sum / total : sum);
}

// A label's class weight (1 without weights); only for counted labels.
inline double class_weight(const float* weights, int64_t label) { return weights ? double(weights[label]) : 1.0; }

// Shared by both losses: kSoftmax applies log_softmax over the class axis
// first (optionally storing it in a second output).
size_t loss_scratch_bytes(const LossGeometry& g) { return size_t(kernel_scratch::cpu_loss_bytes(g.n * g.inner)); }

template <bool kSoftmax>
Status loss_impl(const KernelContext& ctx, const KernelCall& call, const LossGeometry& g) {
  const Tensor &scores = call.in[0], &labels = call.in[1], &loss = call.out[0];
  const Tensor* weights = call.num_in > 2 ? &call.in[2] : nullptr;
  const Tensor* log_prob = kSoftmax && call.num_out > 1 ? &call.out[1] : nullptr;
  ZERO_RETURN_IF_ERROR(check_labels(call, g, labels));  // the data, known only at run time
  const float* px = scores.f32();
  const float* pw = weights ? weights->f32() : nullptr;
  const int64_t* pl = labels.i64();
  double* per = static_cast<double*>(ctx.scratch);  // the loss per position
  std::fill(per, per + g.n * g.inner, 0.0);
  double total = 0;
  for (int64_t b = 0; b < g.n; ++b)
    for (int64_t in = 0; in < g.inner; ++in) {
      const int64_t pos = b * g.inner + in, base = b * g.c * g.inner + in;
      const int64_t label = pl[pos];
      float lse = 0.f;
      if (kSoftmax) {
        float mx = -INFINITY;
        for (int64_t c = 0; c < g.c; ++c) mx = std::max(mx, px[base + c * g.inner]);
        double sum = 0;
        for (int64_t c = 0; c < g.c; ++c) sum += std::exp(px[base + c * g.inner] - mx);
        lse = mx + float(std::log(sum));
      }
      if (!g.ignored(label)) {
        const double cw = class_weight(pw, label);
        per[pos] = -(double(px[base + label * g.inner]) - lse) * cw;
        total += cw;
      }
      if (log_prob)
        for (int64_t c = 0; c < g.c; ++c) log_prob->f32()[base + c * g.inner] = px[base + c * g.inner] - lse;
    }
  reduce_loss(g, per, total, loss.f32());
  return Status();
}

// (dloss, scores|log_probs, labels, [weights]) -> dinput.
template <bool kSoftmax>
Status loss_grad_impl(const KernelContext&, const KernelCall& call, const LossGeometry& g) {
  const Tensor &dloss = call.in[0], &x = call.in[1], &labels = call.in[2], &dx = call.out[0];
  const Tensor* weights = call.num_in > 3 ? &call.in[3] : nullptr;
  ZERO_RETURN_IF_ERROR(check_labels(call, g, labels));
  const float *px = x.f32(), *pd = dloss.f32();
  const float* pw = weights ? weights->f32() : nullptr;
  const int64_t* pl = labels.i64();
  float* pdx = dx.f32();
  double total = 0;  // Mean's divisor: the summed weight of the counted labels
  for (int64_t i = 0; i < labels.numel; ++i)
    if (!g.ignored(pl[i])) total += class_weight(pw, pl[i]);
  for (int64_t b = 0; b < g.n; ++b)
    for (int64_t in = 0; in < g.inner; ++in) {
      const int64_t pos = b * g.inner + in, base = b * g.c * g.inner + in;
      const int64_t label = pl[pos];
      float w = 0.f;
      if (!g.ignored(label)) {
        const double cw = class_weight(pw, label);
        w = g.reduction == plan::Reduction::None   ? float(double(pd[pos]) * cw)
            : g.reduction == plan::Reduction::Mean ? float(double(pd[0]) * cw / total)
                                                   : float(double(pd[0]) * cw);
      }
      if (kSoftmax) {
        float mx = -INFINITY;
        for (int64_t c = 0; c < g.c; ++c) mx = std::max(mx, px[base + c * g.inner]);
        double sum = 0;
        for (int64_t c = 0; c < g.c; ++c) sum += std::exp(px[base + c * g.inner] - mx);
        const float inv = float(1.0 / sum);
        for (int64_t c = 0; c < g.c; ++c) {
          const int64_t j = base + c * g.inner;
          const float p = std::exp(px[j] - mx) * inv;
          pdx[j] = w == 0.f ? 0.f : (p - (c == label ? 1.f : 0.f)) * w;
        }
      } else {
        for (int64_t c = 0; c < g.c; ++c) pdx[base + c * g.inner] = c == label ? -w : 0.f;
      }
    }
  return Status();
}

}  // namespace

void add_cpu_softmax_loss_kernels(TableBackend& backend) {
  using plan::Opcode;
  backend.set(Opcode::Softmax, define_kernel<softmax_geometry, softmax_impl<false>>());
  backend.set(Opcode::LogSoftmax, define_kernel<softmax_geometry, softmax_impl<true>>());
  backend.set(Opcode::SoftmaxCrossEntropyLoss,
              define_kernel<prepare_loss<true>, loss_impl<true>, loss_scratch_bytes>());
  backend.set(Opcode::NegativeLogLikelihoodLoss,
              define_kernel<prepare_loss<false>, loss_impl<false>, loss_scratch_bytes>());
  backend.set(Opcode::SoftmaxGrad, define_kernel<softmax_grad_geometry, softmax_grad_impl<false>>());
  backend.set(Opcode::LogSoftmaxGrad, define_kernel<softmax_grad_geometry, softmax_grad_impl<true>>());
  backend.set(Opcode::SoftmaxCrossEntropyLossGrad, define_kernel<validate_loss_grad, loss_grad_impl<true>>());
  backend.set(Opcode::NegativeLogLikelihoodLossGrad, define_kernel<validate_loss_grad, loss_grad_impl<false>>());
}

}  // namespace zero
