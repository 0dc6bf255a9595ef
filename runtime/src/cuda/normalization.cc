// The CUDA backend's host side for LayerNormalization and training-mode BatchNormalization: the
// prepares (operand checks of kernel_checks.h, at load) and the launches (kernels.h); the device side is
// normalization.cu.
#include <algorithm>
#include <climits>
#include <string>

#include "cuda/backend_internal.h"

namespace zero {
namespace cuda_backend {
namespace {

// ---- LayerNormalization -----------------------------------------------------------

Status prepare_layer_norm(const KernelCall& call, LayerNormSplit* s) {
  ZERO_RETURN_IF_ERROR(validate_layer_norm(call, s));
  return check_grid(call, s->outer);
}

Status layer_norm(const KernelContext& ctx, const KernelCall& call, const LayerNormSplit& s) {
  return launched(call, cuda::layer_norm(ctx.device->stream, call.in[0].f32(), call.in[1].f32(), call.in[2].f32(),
                                         call.out[0].f32(), call.num_out > 1 ? call.out[1].f32() : nullptr,
                                         call.num_out > 2 ? call.out[2].f32() : nullptr, s.outer, s.inner, s.eps));
}

// The split and the partial sums of dscale and dbias, when the instruction
// has them (zero/kernel_scratch.h cuda_layer_norm_grad_bytes).
struct LayerNormGradState {
  LayerNormSplit split;
  size_t scratch_bytes;
};

size_t layer_norm_grad_scratch_bytes(const LayerNormGradState& s) { return s.scratch_bytes; }

Status prepare_layer_norm_grad(const KernelCall& call, LayerNormGradState* s) {
  ZERO_RETURN_IF_ERROR(validate_layer_norm_grad(call, &s->split));
  ZERO_RETURN_IF_ERROR(check_grid(call, s->split.outer));
  s->scratch_bytes =
      size_t(kernel_scratch::cuda_layer_norm_grad_bytes(s->split.outer, s->split.inner, call.num_out > 1));
  return Status();
}

Status layer_norm_grad(const KernelContext& ctx, const KernelCall& call, const LayerNormGradState& state) {
  const LayerNormSplit& s = state.split;
  void* partial = call.num_out > 1 ? ctx.scratch : nullptr;
  return launched(call, cuda::layer_norm_grad(ctx.device->stream, call.in[0].f32(), call.in[1].f32(), call.in[2].f32(),
                                              call.in[3].f32(), call.in[4].f32(), call.out[0].f32(),
                                              call.num_out > 1 ? call.out[1].f32() : nullptr,
                                              call.num_out > 2 ? call.out[2].f32() : nullptr, s.outer, s.inner,
                                              static_cast<double*>(partial)));
}

// ---- BatchNormalization (training mode) ------------------------------------

template <Status (*kValidate)(const KernelCall&, BatchNormGeom*)>
Status prepare_batch_norm(const KernelCall& call, BatchNormGeom* g) {
  ZERO_RETURN_IF_ERROR(kValidate(call, g));
  return check_grid(call, g->c);
}

Status batch_norm(const KernelContext& ctx, const KernelCall& call, const BatchNormGeom& g) {
  return launched(
      call, cuda::batch_norm(ctx.device->stream, call.in[0].f32(), call.in[1].f32(), call.in[2].f32(), call.in[3].f32(),
                             call.in[4].f32(), call.out[0].f32(), call.num_out > 1 ? call.out[1].f32() : nullptr,
                             call.num_out > 2 ? call.out[2].f32() : nullptr, g.n, g.c, g.inner, g.eps, g.momentum));
}

Status batch_norm_grad(const KernelContext& ctx, const KernelCall& call, const BatchNormGeom& g) {
  return launched(call, cuda::batch_norm_grad(ctx.device->stream, call.in[0].f32(), call.in[1].f32(), call.in[2].f32(),
                                              call.in[3].f32(), call.in[4].f32(), call.out[0].f32(),
                                              call.num_out > 1 ? call.out[1].f32() : nullptr,
                                              call.num_out > 2 ? call.out[2].f32() : nullptr, g.n, g.c, g.inner));
}

}  // namespace

void add_cuda_normalization_kernels(TableBackend& backend) {
  backend.set(Opcode::LayerNormalization, define_kernel<prepare_layer_norm, layer_norm>());
  backend.set(Opcode::LayerNormalizationGrad,
              define_kernel<prepare_layer_norm_grad, layer_norm_grad, layer_norm_grad_scratch_bytes>());
  backend.set(Opcode::BatchNormalization, define_kernel<prepare_batch_norm<validate_batch_norm>, batch_norm>());
  backend.set(Opcode::BatchNormalizationGrad,
              define_kernel<prepare_batch_norm<validate_batch_norm_grad>, batch_norm_grad>());
}

}  // namespace cuda_backend

}  // namespace zero
