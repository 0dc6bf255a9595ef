// The CUDA backend's host side for the optimizer updates: operand checks
// (kernel_checks.h, run at load with kRun = false) and the launches
// (kernels.h); the device side is optimizers.cu.
#include <algorithm>
#include <climits>
#include <string>

#include "cuda/backend_internal.h"

namespace zero {
namespace cuda_backend {
namespace {

// ---- optimizers ---------------------------------------------------------------------

template <bool kRun>
Status sgd_update(const KernelCall& call) {
  const plan::SgdAttrs* attrs;
  float* buf;
  ZERO_RETURN_IF_ERROR(sgd_geometry(call, &attrs, &buf));
  if (!kRun) return Status();
  const Tensor &p = call.in[0], &g = call.in[1];
  return launched(call, cuda::sgd(g_dev->stream, p.f32(), g.f32(), buf, p.numel, attrs->lr(), attrs->momentum(),
                                  attrs->weight_decay()));
}

template <bool kRun>
Status adamw_update(const KernelCall& call) {
  const plan::AdamWAttrs* attrs;
  ZERO_RETURN_IF_ERROR(adamw_geometry(call, &attrs));
  const Tensor &p = call.in[0], &g = call.in[1], &m = call.in[2], &v = call.in[3], &step = call.in[4];
  if (!kRun) return Status();
  return launched(call, cuda::adamw(g_dev->stream, p.f32(), g.f32(), m.f32(), v.f32(), step.i64(), p.numel,
                                    double(attrs->lr()), double(attrs->beta1()), double(attrs->beta2()), attrs->eps(),
                                    double(attrs->weight_decay()), int(Opcode::AdamWUpdate), g_dev->err));
}

template <bool kRun>
Status increment_step(const KernelCall& call) {
  const Tensor& s = call.in[0];
  ZERO_RETURN_IF_ERROR(expect_step_scalar(call, s));
  if (!kRun) return Status();
  return launched(call, cuda::increment(g_dev->stream, s.i64()));
}

}  // namespace

void add_cuda_optimizers_kernels(TableBackend& backend) {
  ZERO_CUDA_SET(SgdUpdate, sgd_update);
  ZERO_CUDA_SET(AdamWUpdate, adamw_update);
  ZERO_CUDA_SET(IncrementStep, increment_step);
}

}  // namespace cuda_backend

}  // namespace zero
