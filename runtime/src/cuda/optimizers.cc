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
                                  s.attrs->momentum(), s.attrs->weight_decay(), s.scalars.lr, s.scalars.grad_scale));
}

Status adamw_update(const KernelContext& ctx, const KernelCall& call, const AdamWGeom& geom) {
  const Tensor &p = call.in[0], &g = call.in[1], &m = call.in[2], &v = call.in[3], &step = call.in[4];
  const plan::AdamWAttrs* attrs = geom.attrs;
  return launched(call, cuda::adamw(ctx.device->stream, p.f32(), g.f32(), m.f32(), v.f32(), step.i64(), p.numel,
                                    double(attrs->lr()), double(attrs->beta1()), double(attrs->beta2()), attrs->eps(),
                                    double(attrs->weight_decay()), geom.scalars.lr, geom.scalars.grad_scale,
                                    int(Opcode::AdamWUpdate), ctx.device->err));
}

Status increment_step(const KernelContext& ctx, const KernelCall& call, const NoState&) {
  return launched(call, cuda::increment(ctx.device->stream, call.in[0].i64()));
}

Status learning_rate(const KernelContext& ctx, const KernelCall& call, const plan::ScheduleAttrs* const& a) {
  return launched(call, cuda::learning_rate(ctx.device->stream, call.in[0].i64(), call.out[0].f32(),
                                            int(a->schedule()), a->lr(), a->warmup_steps(), a->total_steps(),
                                            a->min_lr_ratio()));
}

// cuBLAS's dot of x with itself, written to the device scalar (device
// pointer mode, so the host never waits).
Status sum_squares_prepare(const KernelCall& call, NoState*) {
  ZERO_RETURN_IF_ERROR(check_sum_squares(call));
  if (!fits_int(call.in[0].numel)) return fail(call, "x exceeds the BLAS int range");
  return Status();
}

Status sum_squares(const KernelContext& ctx, const KernelCall& call, const NoState&) {
  const Tensor& x = call.in[0];
  float* y = call.out[0].f32();
  if (x.numel == 0) return launched(call, cudaMemsetAsync(y, 0, sizeof(float), ctx.device->stream));
  cublasHandle_t blas = ctx.device->blas;
  ZERO_RETURN_IF_ERROR(blas_status(cublasSetPointerMode(blas, CUBLAS_POINTER_MODE_DEVICE), "cublasSetPointerMode"));
  const cublasStatus_t dot = cublasSdot(blas, int(x.numel), x.f32(), 1, x.f32(), 1, y);
  ZERO_RETURN_IF_ERROR(blas_status(cublasSetPointerMode(blas, CUBLAS_POINTER_MODE_HOST), "cublasSetPointerMode"));
  return blas_status(dot, "cublasSdot");
}

Status clip_coefficient(const KernelContext& ctx, const KernelCall& call, const float& max_norm) {
  return launched(call, cuda::clip_coefficient(ctx.device->stream, call.in[0].f32(), call.out[0].f32(),
                                               call.out[1].f32(), max_norm));
}

}  // namespace

void add_cuda_optimizers_kernels(TableBackend& backend) {
  backend.set(Opcode::SgdUpdate, define_kernel<sgd_geometry, sgd_update>());
  backend.set(Opcode::AdamWUpdate, define_kernel<adamw_geometry, adamw_update>());
  backend.set(Opcode::IncrementStep, define_kernel<check_only<check_step_counter>, increment_step>());
  backend.set(Opcode::LearningRate, define_kernel<learning_rate_geometry, learning_rate>());
  backend.set(Opcode::SumSquares, define_kernel<sum_squares_prepare, sum_squares>());
  backend.set(Opcode::ClipCoefficient, define_kernel<clip_geometry, clip_coefficient>());
}

}  // namespace cuda_backend

}  // namespace zero
