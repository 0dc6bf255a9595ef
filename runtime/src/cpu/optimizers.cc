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
#include "zero/training_math.h"

namespace zero {
namespace {

// ---- optimizers ----------------------------------------------------------

// torch.optim.SGD (single tensor, dampening 0, no nesterov).
// The plan's scheduled rate or the attribute's, and the gradient's scale (1
// unless clipping).
float rate(const OptimizerScalars& s, float lr) { return s.lr ? *s.lr : lr; }
float scale(const OptimizerScalars& s) { return s.grad_scale ? *s.grad_scale : 1.f; }

Status sgd_update(const KernelContext&, const KernelCall& call, const SgdGeom& s) {
  const Tensor &p = call.in[0], &g = call.in[1];
  float* buf = s.momentum_buffer;
  const float lr = rate(s.scalars, s.attrs->lr()), momentum = s.attrs->momentum(), wd = s.attrs->weight_decay();
  const float gs = scale(s.scalars);
  float* pp = p.f32();
  const float* pg = g.f32();
  for (int64_t i = 0; i < p.numel; ++i) {
    const float gi = pg[i] * gs;  // exact when gs is 1
    float d = wd != 0.f ? gi + wd * pp[i] : gi;
    if (buf) d = buf[i] = momentum * buf[i] + d;
    pp[i] += -lr * d;
  }
  return Status();
}

// torch.optim.AdamW (single tensor, no amsgrad). Bias corrections in double
// like PyTorch's Python floats; exp_avg uses lerp as PyTorch does.
Status adamw_update(const KernelContext&, const KernelCall& call, const AdamWGeom& geom) {
  const Tensor &p = call.in[0], &g = call.in[1], &m = call.in[2], &v = call.in[3], &step = call.in[4];
  const plan::AdamWAttrs* attrs = geom.attrs;
  const int64_t t = step.i64()[0];
  if (t < 1) return fail_data(call, "step must be >= 1 (missing IncrementStep?)");
  const double lr = rate(geom.scalars, attrs->lr()), b1 = attrs->beta1(), b2 = attrs->beta2();
  const float gs = scale(geom.scalars);
  const float decay = float(1.0 - lr * double(attrs->weight_decay()));
  const float w1 = float(1.0 - b1), fb2 = float(b2), w2 = float(1.0 - b2);
  const double bc1 = 1.0 - std::pow(b1, double(t)), bc2 = 1.0 - std::pow(b2, double(t));
  const float step_size = float(lr / bc1), bc2_sqrt = float(std::sqrt(bc2)), eps = attrs->eps();
  float *pp = p.f32(), *pm = m.f32(), *pv = v.f32();
  const float* pg = g.f32();
  for (int64_t i = 0; i < p.numel; ++i) {
    const float gi = pg[i] * gs;
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

Status learning_rate(const KernelContext&, const KernelCall& call, const plan::ScheduleAttrs* const& a) {
  call.out[0].f32()[0] = float(training::scheduled_rate(int(a->schedule()), a->lr(), a->warmup_steps(),
                                                         a->total_steps(), a->min_lr_ratio(), call.in[0].i64()[0]));
  return Status();
}

Status sum_squares(const KernelContext&, const KernelCall& call, const NoState&) {
  const float* x = call.in[0].f32();
  double sum = 0;
  for (int64_t i = 0; i < call.in[0].numel; ++i) sum += double(x[i]) * double(x[i]);
  call.out[0].f32()[0] = float(sum);
  return Status();
}

Status clip_coefficient(const KernelContext&, const KernelCall& call, const float& max_norm) {
  const training::Clip clip = training::clip_coefficient(call.in[0].f32()[0], max_norm);
  call.out[0].f32()[0] = float(clip.coefficient);
  call.out[1].f32()[0] = float(clip.norm);
  return Status();
}

}  // namespace

void add_cpu_optimizers_kernels(TableBackend& backend) {
  using plan::Opcode;
  backend.set(Opcode::SgdUpdate, define_kernel<sgd_geometry, sgd_update>());
  backend.set(Opcode::AdamWUpdate, define_kernel<adamw_geometry, adamw_update>());
  backend.set(Opcode::IncrementStep, define_kernel<check_only<check_step_counter>, increment_step>());
  backend.set(Opcode::LearningRate, define_kernel<learning_rate_geometry, learning_rate>());
  backend.set(Opcode::SumSquares, define_kernel<check_only<check_sum_squares>, sum_squares>());
  backend.set(Opcode::ClipCoefficient, define_kernel<clip_geometry, clip_coefficient>());
}

}  // namespace zero
