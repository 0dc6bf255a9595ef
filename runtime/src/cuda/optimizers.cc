// The CUDA backend's host side for the optimizer updates: the prepares
// (operand checks of kernel_checks.h, at load) and the launches (kernels.h); the device side is optimizers.cu.
#include <algorithm>
#include <climits>
#include <string>

#include "cuda/backend_internal.h"

namespace zero {
namespace cuda_backend {
namespace {

// ---- optimizers ---------------------------------------------------------------------

Status sgd_update(const KernelContext& ctx, const KernelCall& call, const SgdGeom& s) {
  const Tensor &p = call.in[0], &g = call.in[1];
  return launched(call, cuda::sgd(ctx.device->stream, p.f32(), g.f32(), s.momentum_buffer, p.numel, s.attrs->lr(),
                                  s.attrs->momentum(), s.attrs->weight_decay()));
}

Status adamw_update(const KernelContext& ctx, const KernelCall& call, const plan::AdamWAttrs* const& attrs) {
  const Tensor &p = call.in[0], &g = call.in[1], &m = call.in[2], &v = call.in[3], &step = call.in[4];
  return launched(call, cuda::adamw(ctx.device->stream, p.f32(), g.f32(), m.f32(), v.f32(), step.i64(), p.numel,
                                    double(attrs->lr()), double(attrs->beta1()), double(attrs->beta2()), attrs->eps(),
                                    double(attrs->weight_decay()), int(Opcode::AdamWUpdate), ctx.device->err));
}

Status increment_step(const KernelContext& ctx, const KernelCall& call, const NoState&) {
  return launched(call, cuda::increment(ctx.device->stream, call.in[0].i64()));
}

}  // namespace

void add_cuda_optimizers_kernels(TableBackend& backend) {
  backend.set(Opcode::SgdUpdate, define_kernel<sgd_geometry, sgd_update>());
  backend.set(Opcode::AdamWUpdate, define_kernel<adamw_geometry, adamw_update>());
  backend.set(Opcode::IncrementStep, define_kernel<check_only<check_step_counter>, increment_step>());
}

}  // namespace cuda_backend

}  // namespace zero
