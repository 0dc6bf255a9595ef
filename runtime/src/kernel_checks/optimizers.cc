// Operand checks and geometry shared by the CPU and CUDA backends: the optimizer updates.
#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <string>

#include "kernel_checks.h"

namespace zero {

// ---- optimizers ----------------------------------------------------------

namespace {

Status expect_f32_scalar(const KernelCall& call, const Tensor& t, const char* role) {
  if (t.dtype != DType::F32 || t.numel != 1)
    return fail(call, std::string(role) + " must be an F32 scalar, got " + tensor_shape_string(t));
  return Status();
}

// The optimizer's `own` inputs are followed by exactly the scalars its flags
// announce, in the order lr, grad_scale.
Status optimizer_scalars(const KernelCall& call, int own, bool has_lr, bool has_scale, OptimizerScalars* out) {
  const int want = own + int(has_lr) + int(has_scale);
  if (call.num_in != want)
    return fail(call, "takes " + std::to_string(want) + " inputs with these attributes, got " +
                          std::to_string(call.num_in));
  int next = own;
  if (has_lr) {
    ZERO_RETURN_IF_ERROR(expect_f32_scalar(call, call.in[next], "the scheduled lr"));
    out->lr = call.in[next++].f32();
  }
  if (has_scale) {
    ZERO_RETURN_IF_ERROR(expect_f32_scalar(call, call.in[next], "grad_scale"));
    out->grad_scale = call.in[next].f32();
  }
  return Status();
}

}  // namespace

Status sgd_geometry(const KernelCall& call, SgdGeom* geom) {
  const auto* attrs = call.inst->attrs_as_SgdAttrs();
  if (!attrs) return fail(call, "missing SgdAttrs");
  const Tensor &p = call.in[0], &g = call.in[1];
  ZERO_RETURN_IF_ERROR(expect_f32(call, p, "param"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, g, "grad"));
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, p, g, "param and grad"));
  geom->attrs = attrs;
  geom->momentum_buffer = nullptr;
  const bool momentum = attrs->momentum() != 0.f;
  if (momentum) {
    if (call.num_in < 3) return fail(call, "momentum needs a momentum buffer operand");
    ZERO_RETURN_IF_ERROR(expect_f32(call, call.in[2], "momentum_buffer"));
    ZERO_RETURN_IF_ERROR(expect_same_numel(call, p, call.in[2], "param and momentum_buffer"));
    geom->momentum_buffer = call.in[2].f32();
  }
  // Without the flags a plan may list an unused momentum buffer (format 1).
  if (!attrs->has_scheduled_lr() && !attrs->has_grad_scale()) return Status();
  return optimizer_scalars(call, momentum ? 3 : 2, attrs->has_scheduled_lr(), attrs->has_grad_scale(),
                           &geom->scalars);
}

Status adamw_geometry(const KernelCall& call, AdamWGeom* geom) {
  const auto* attrs = call.inst->attrs_as_AdamWAttrs();
  if (!attrs) return fail(call, "missing AdamWAttrs");
  const Tensor &p = call.in[0], &g = call.in[1], &m = call.in[2], &v = call.in[3], &step = call.in[4];
  ZERO_RETURN_IF_ERROR(expect_f32(call, p, "param"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, g, "grad"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, m, "exp_avg"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, v, "exp_avg_sq"));
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, p, g, "param and grad"));
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, p, m, "param and exp_avg"));
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, p, v, "param and exp_avg_sq"));
  ZERO_RETURN_IF_ERROR(expect_step_scalar(call, step));
  geom->attrs = attrs;
  return optimizer_scalars(call, 5, attrs->has_scheduled_lr(), attrs->has_grad_scale(), &geom->scalars);
}

Status check_step_counter(const KernelCall& call) { return expect_step_scalar(call, call.in[0]); }

Status learning_rate_geometry(const KernelCall& call, const plan::ScheduleAttrs** attrs_out) {
  const auto* attrs = call.inst->attrs_as_ScheduleAttrs();
  if (!attrs) return fail(call, "missing ScheduleAttrs");
  ZERO_RETURN_IF_ERROR(expect_step_scalar(call, call.in[0]));
  ZERO_RETURN_IF_ERROR(expect_f32_scalar(call, call.out[0], "lr"));
  const auto schedule = attrs->schedule();
  if (schedule != plan::LrSchedule::Constant && schedule != plan::LrSchedule::Linear &&
      schedule != plan::LrSchedule::Cosine)
    return fail(call, "unknown schedule " + std::to_string(int(schedule)));
  const int64_t warmup = attrs->warmup_steps(), total = attrs->total_steps();
  const bool decays = schedule != plan::LrSchedule::Constant;
  if (warmup < 0 || (decays && (total < 1 || warmup > total)))
    return fail(call, "warmup_steps " + std::to_string(warmup) + " and total_steps " + std::to_string(total) +
                          " do not make a schedule");
  if (!std::isfinite(attrs->lr()) || !(attrs->min_lr_ratio() >= 0.f && attrs->min_lr_ratio() <= 1.f))
    return fail(call, "lr must be finite and min_lr_ratio in [0, 1]");
  *attrs_out = attrs;
  return Status();
}

Status check_sum_squares(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(expect_f32(call, call.in[0], "x"));
  return expect_f32_scalar(call, call.out[0], "the sum");
}

Status clip_geometry(const KernelCall& call, float* max_norm) {
  const auto* attrs = call.inst->attrs_as_ClipAttrs();
  if (!attrs) return fail(call, "missing ClipAttrs");
  if (!(attrs->max_norm() > 0.f) || !std::isfinite(attrs->max_norm()))
    return fail(call, "max_norm must be positive and finite");
  ZERO_RETURN_IF_ERROR(expect_f32_scalar(call, call.in[0], "sum_squares"));
  ZERO_RETURN_IF_ERROR(expect_f32_scalar(call, call.out[0], "coefficient"));
  ZERO_RETURN_IF_ERROR(expect_f32_scalar(call, call.out[1], "norm"));
  *max_norm = attrs->max_norm();
  return Status();
}

Status dropout_geometry(const KernelCall& call, DropoutGeom* g) {
  const auto* attrs = call.inst->attrs_as_DropoutAttrs();
  if (!attrs) return fail(call, "missing DropoutAttrs");
  if (!(attrs->ratio() > 0.f && attrs->ratio() < 1.f) || attrs->stream() < 0 || attrs->micro_step() < 0)
    return fail(call, "ratio must be in (0, 1), stream and micro_step not negative");
  ZERO_RETURN_IF_ERROR(expect_f32(call, call.in[0], "x"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, call.out[0], "y"));
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, call.in[0], call.out[0], "input and output"));
  ZERO_RETURN_IF_ERROR(expect_step_scalar(call, call.in[1]));
  g->ratio = attrs->ratio();
  g->scale = 1.f / (1.f - attrs->ratio());
  g->stream = uint64_t(attrs->stream());
  g->micro_step = uint64_t(attrs->micro_step());
  return Status();
}

}  // namespace zero
