// CPU kernels: the optimizer updates (SGD, AdamW) and the step counter. Every kernel checks its operands (the
// shared checks of kernel_checks.h) before touching memory.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "backend.h"
#include "cpu/kernels.h"
#include "kernel_checks.h"

namespace zero {
namespace {

// ---- optimizers ----------------------------------------------------------

// torch.optim.SGD (single tensor, dampening 0, no nesterov).
template <bool kRun>
Status sgd_update(const KernelCall& call) {
  const plan::SgdAttrs* attrs;
  float* buf;
  ZERO_RETURN_IF_ERROR(sgd_geometry(call, &attrs, &buf));
  if (!kRun) return Status();
  const Tensor &p = call.in[0], &g = call.in[1];
  const float lr = attrs->lr(), momentum = attrs->momentum(), wd = attrs->weight_decay();
  float* pp = p.f32();
  const float* pg = g.f32();
  for (int64_t i = 0; i < p.numel; ++i) {
    float d = wd != 0.f ? pg[i] + wd * pp[i] : pg[i];
    if (buf) d = buf[i] = momentum * buf[i] + d;
    pp[i] += -lr * d;
  }
  return Status();
}

// torch.optim.AdamW (single tensor, no amsgrad). Bias corrections in double
// like PyTorch's Python floats; exp_avg uses lerp as PyTorch does.
template <bool kRun>
Status adamw_update(const KernelCall& call) {
  const plan::AdamWAttrs* attrs;
  ZERO_RETURN_IF_ERROR(adamw_geometry(call, &attrs));
  if (!kRun) return Status();
  const Tensor &p = call.in[0], &g = call.in[1], &m = call.in[2], &v = call.in[3], &step = call.in[4];
  const int64_t t = step.i64()[0];
  if (t < 1) return fail_data(call, "step must be >= 1 (missing IncrementStep?)");
  const double lr = attrs->lr(), b1 = attrs->beta1(), b2 = attrs->beta2();
  const float decay = float(1.0 - lr * double(attrs->weight_decay()));
  const float w1 = float(1.0 - b1), fb2 = float(b2), w2 = float(1.0 - b2);
  const double bc1 = 1.0 - std::pow(b1, double(t)), bc2 = 1.0 - std::pow(b2, double(t));
  const float step_size = float(lr / bc1), bc2_sqrt = float(std::sqrt(bc2)), eps = attrs->eps();
  float *pp = p.f32(), *pm = m.f32(), *pv = v.f32();
  const float* pg = g.f32();
  for (int64_t i = 0; i < p.numel; ++i) {
    const float gi = pg[i];
    pp[i] *= decay;
    pm[i] = w1 < 0.5f ? pm[i] + w1 * (gi - pm[i]) : gi - (gi - pm[i]) * (1.f - w1);
    pv[i] = pv[i] * fb2 + w2 * gi * gi;
    const float denom = std::sqrt(pv[i]) / bc2_sqrt + eps;
    pp[i] += -step_size * (pm[i] / denom);
  }
  return Status();
}

template <bool kRun>
Status increment_step(const KernelCall& call) {
  const Tensor& s = call.in[0];
  ZERO_RETURN_IF_ERROR(expect_step_scalar(call, s));
  if (!kRun) return Status();
  s.i64()[0] += 1;
  return Status();
}

}  // namespace

void add_cpu_optimizers_kernels(TableBackend& backend) {
  using plan::Opcode;
  backend.set(Opcode::SgdUpdate, sgd_update<true>, sgd_update<false>);
  backend.set(Opcode::AdamWUpdate, adamw_update<true>, adamw_update<false>);
  backend.set(Opcode::IncrementStep, increment_step<true>, increment_step<false>);
}

}  // namespace zero
