// CPU kernels: the optimizer updates (SGD, AdamW) and the step counter. Each kernel's prepare checks its operands at
// load (the shared checks of kernel_checks.h) and keeps the geometry its execute runs from.
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
Status sgd_update(const KernelContext&, const KernelCall& call, const SgdGeom& s) {
  const Tensor &p = call.in[0], &g = call.in[1];
  float* buf = s.momentum_buffer;
  const float lr = s.attrs->lr(), momentum = s.attrs->momentum(), wd = s.attrs->weight_decay();
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
Status adamw_update(const KernelContext&, const KernelCall& call, const plan::AdamWAttrs* const& attrs) {
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

Status increment_step(const KernelContext&, const KernelCall& call, const NoState&) {
  call.in[0].i64()[0] += 1;
  return Status();
}

}  // namespace

void add_cpu_optimizers_kernels(TableBackend& backend) {
  using plan::Opcode;
  backend.set(Opcode::SgdUpdate, define_kernel<sgd_geometry, sgd_update>());
  backend.set(Opcode::AdamWUpdate, define_kernel<adamw_geometry, adamw_update>());
  backend.set(Opcode::IncrementStep, define_kernel<check_only<check_step_counter>, increment_step>());
}

}  // namespace zero
