// The CUDA backend's host side for LayerNormalization and training-mode BatchNormalization: operand checks
// (kernel_checks.h, run at load with kRun = false) and the launches
// (kernels.h); the device side is normalization.cu.
#include <algorithm>
#include <climits>
#include <string>

#include "cuda/backend_internal.h"

namespace zero {
namespace cuda_backend {
namespace {

// ---- LayerNormalization -----------------------------------------------------------

template <bool kRun>
Status layer_norm(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(validate_layer_norm(call));
  LayerNormSplit s;
  ZERO_RETURN_IF_ERROR(layer_norm_split(call, call.in[0], &s));
  ZERO_RETURN_IF_ERROR(check_grid(call, s.outer));
  if (!kRun) return Status();
  return launched(call, cuda::layer_norm(g_dev->stream, call.in[0].f32(), call.in[1].f32(), call.in[2].f32(),
                                         call.out[0].f32(), call.num_out > 1 ? call.out[1].f32() : nullptr,
                                         call.num_out > 2 ? call.out[2].f32() : nullptr, s.outer, s.inner, s.eps));
}

template <bool kRun>
Status layer_norm_grad(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(validate_layer_norm_grad(call));
  LayerNormSplit s;
  ZERO_RETURN_IF_ERROR(layer_norm_split(call, call.in[1], &s));
  ZERO_RETURN_IF_ERROR(check_grid(call, s.outer));
  if (!kRun) return Status();
  void* partial = nullptr;
  if (call.num_out > 1)
    ZERO_RETURN_IF_ERROR(scratch(size_t(cuda::layer_norm_grad_scratch(s.outer, s.inner)) * sizeof(double), &partial));
  return launched(
      call, cuda::layer_norm_grad(g_dev->stream, call.in[0].f32(), call.in[1].f32(), call.in[2].f32(), call.in[3].f32(),
                                  call.in[4].f32(), call.out[0].f32(), call.num_out > 1 ? call.out[1].f32() : nullptr,
                                  call.num_out > 2 ? call.out[2].f32() : nullptr, s.outer, s.inner,
                                  static_cast<double*>(partial)));
}

// ---- BatchNormalization (training mode) ------------------------------------

template <bool kRun>
Status batch_norm(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(validate_batch_norm(call));
  BatchNormGeom g;
  ZERO_RETURN_IF_ERROR(batch_norm_geometry(call, call.in[0], &g));
  ZERO_RETURN_IF_ERROR(check_grid(call, g.c));
  if (!kRun) return Status();
  return launched(
      call, cuda::batch_norm(g_dev->stream, call.in[0].f32(), call.in[1].f32(), call.in[2].f32(), call.in[3].f32(),
                             call.in[4].f32(), call.out[0].f32(), call.num_out > 1 ? call.out[1].f32() : nullptr,
                             call.num_out > 2 ? call.out[2].f32() : nullptr, g.n, g.c, g.inner, g.eps, g.momentum));
}

template <bool kRun>
Status batch_norm_grad(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(validate_batch_norm_grad(call));
  BatchNormGeom g;
  ZERO_RETURN_IF_ERROR(batch_norm_geometry(call, call.in[1], &g));
  ZERO_RETURN_IF_ERROR(check_grid(call, g.c));
  if (!kRun) return Status();
  return launched(
      call, cuda::batch_norm_grad(g_dev->stream, call.in[0].f32(), call.in[1].f32(), call.in[2].f32(), call.in[3].f32(),
                                  call.in[4].f32(), call.out[0].f32(), call.num_out > 1 ? call.out[1].f32() : nullptr,
                                  call.num_out > 2 ? call.out[2].f32() : nullptr, g.n, g.c, g.inner));
}

}  // namespace

void add_cuda_normalization_kernels(TableBackend& backend) {
  ZERO_CUDA_SET(LayerNormalization, layer_norm);
  ZERO_CUDA_SET(LayerNormalizationGrad, layer_norm_grad);
  ZERO_CUDA_SET(BatchNormalization, batch_norm);
  ZERO_CUDA_SET(BatchNormalizationGrad, batch_norm_grad);
}

}  // namespace cuda_backend

}  // namespace zero
