// The CUDA backend's host side for the softmax family and the losses: the prepares
// (operand checks of kernel_checks.h, at load) and the launches (kernels.h); the device side is softmax_loss.cu.
#include <algorithm>
#include <climits>
#include <string>

#include "cuda/backend_internal.h"

namespace zero {
namespace cuda_backend {
namespace {

// ---- softmax family and losses --------------------------------------------------

template <Status (*kGeometry)(const KernelCall&, AxisSplit*)>
Status prepare_softmax(const KernelCall& call, AxisSplit* s) {
  ZERO_RETURN_IF_ERROR(kGeometry(call, s));
  return check_grid(call, s->outer * s->inner);
}

template <bool kLog>
Status softmax(const KernelContext& ctx, const KernelCall& call, const AxisSplit& s) {
  const Tensor &x = call.in[0], &y = call.out[0];
  return launched(call, cuda::softmax(ctx.device->stream, x.f32(), y.f32(), s.outer, s.n, s.inner, kLog));
}

template <bool kLog>
Status softmax_grad(const KernelContext& ctx, const KernelCall& call, const AxisSplit& s) {
  const Tensor &dy = call.in[0], &y = call.in[1], &dx = call.out[0];
  return launched(call,
                  cuda::softmax_grad(ctx.device->stream, dy.f32(), y.f32(), dx.f32(), s.outer, s.n, s.inner, kLog));
}

// The kernels' arguments from the shared loss geometry.
Status loss_args(const KernelCall& call, const LossGeometry& lg, cuda::LossArgs* g) {
  g->n = lg.n;
  g->c = lg.c;
  g->inner = lg.inner;
  g->has_ignore = lg.has_ignore;
  g->ignore_index = lg.ignore_index;
  g->reduction = lg.reduction == plan::Reduction::Sum ? 0 : lg.reduction == plan::Reduction::Mean ? 1 : 2;
  g->opcode = int(call.inst->opcode());
  return check_grid(call, g->n * g->inner);
}

template <bool kSoftmax>
Status prepare_loss(const KernelCall& call, cuda::LossArgs* g) {
  LossGeometry lg;
  ZERO_RETURN_IF_ERROR(validate_loss(call, kSoftmax, &lg));
  return loss_args(call, lg, g);
}

Status prepare_loss_grad(const KernelCall& call, cuda::LossArgs* g) {
  LossGeometry lg;
  ZERO_RETURN_IF_ERROR(validate_loss_grad(call, &lg));
  return loss_args(call, lg, g);
}

size_t loss_scratch_bytes(const cuda::LossArgs& g) { return size_t(kernel_scratch::cuda_loss_bytes(g.n * g.inner)); }
size_t loss_grad_scratch_bytes(const cuda::LossArgs&) { return size_t(kernel_scratch::cuda_loss_grad_bytes()); }

template <bool kSoftmax>
Status loss(const KernelContext& ctx, const KernelCall& call, const cuda::LossArgs& g) {
  const Tensor &scores = call.in[0], &labels = call.in[1], &out = call.out[0];
  const Tensor* weights = call.num_in > 2 ? &call.in[2] : nullptr;
  const Tensor* log_prob = kSoftmax && call.num_out > 1 ? &call.out[1] : nullptr;
  return launched(call, cuda::loss(ctx.device->stream, g, kSoftmax, scores.f32(), labels.i64(),
                                   weights ? weights->f32() : nullptr, out.f32(), log_prob ? log_prob->f32() : nullptr,
                                   static_cast<double*>(ctx.scratch), ctx.device->err));
}

template <bool kSoftmax>
Status loss_grad(const KernelContext& ctx, const KernelCall& call, const cuda::LossArgs& g) {
  const Tensor &dloss = call.in[0], &x = call.in[1], &labels = call.in[2], &dx = call.out[0];
  const Tensor* weights = call.num_in > 3 ? &call.in[3] : nullptr;
  return launched(call, cuda::loss_grad(ctx.device->stream, g, kSoftmax, dloss.f32(), x.f32(), labels.i64(),
                                        weights ? weights->f32() : nullptr, dx.f32(), static_cast<double*>(ctx.scratch),
                                        ctx.device->err));
}

}  // namespace

void add_cuda_softmax_loss_kernels(TableBackend& backend) {
  backend.set(Opcode::Softmax, define_kernel<prepare_softmax<softmax_geometry>, softmax<false>>());
  backend.set(Opcode::LogSoftmax, define_kernel<prepare_softmax<softmax_geometry>, softmax<true>>());
  backend.set(Opcode::SoftmaxGrad, define_kernel<prepare_softmax<softmax_grad_geometry>, softmax_grad<false>>());
  backend.set(Opcode::LogSoftmaxGrad, define_kernel<prepare_softmax<softmax_grad_geometry>, softmax_grad<true>>());
  backend.set(Opcode::SoftmaxCrossEntropyLoss, define_kernel<prepare_loss<true>, loss<true>, loss_scratch_bytes>());
  backend.set(Opcode::NegativeLogLikelihoodLoss, define_kernel<prepare_loss<false>, loss<false>, loss_scratch_bytes>());
  backend.set(Opcode::SoftmaxCrossEntropyLossGrad,
              define_kernel<prepare_loss_grad, loss_grad<true>, loss_grad_scratch_bytes>());
  backend.set(Opcode::NegativeLogLikelihoodLossGrad,
              define_kernel<prepare_loss_grad, loss_grad<false>, loss_grad_scratch_bytes>());
}

}  // namespace cuda_backend

}  // namespace zero
