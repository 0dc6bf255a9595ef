// Operand checks and geometry shared by the CPU and CUDA backends: the optimizer updates.
#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <string>

#include "kernel_checks.h"

namespace zero {

// ---- optimizers ----------------------------------------------------------

Status sgd_geometry(const KernelCall& call, SgdGeom* geom) {
  const auto* attrs = call.inst->attrs_as_SgdAttrs();
  if (!attrs) return fail(call, "missing SgdAttrs");
  const Tensor &p = call.in[0], &g = call.in[1];
  ZERO_RETURN_IF_ERROR(expect_f32(call, p, "param"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, g, "grad"));
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, p, g, "param and grad"));
  geom->attrs = attrs;
  geom->momentum_buffer = nullptr;
  if (attrs->momentum() != 0.f) {
    if (call.num_in < 3) return fail(call, "momentum needs a momentum buffer operand");
    ZERO_RETURN_IF_ERROR(expect_f32(call, call.in[2], "momentum_buffer"));
    ZERO_RETURN_IF_ERROR(expect_same_numel(call, p, call.in[2], "param and momentum_buffer"));
    geom->momentum_buffer = call.in[2].f32();
  }
  return Status();
}

Status adamw_geometry(const KernelCall& call, const plan::AdamWAttrs** attrs_out) {
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
  *attrs_out = attrs;
  return Status();
}

Status check_step_counter(const KernelCall& call) { return expect_step_scalar(call, call.in[0]); }

}  // namespace zero
