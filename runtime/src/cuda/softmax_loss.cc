// The CUDA backend's host side for the softmax family and the losses: operand checks
// (kernel_checks.h, run at load with kRun = false) and the launches
// (kernels.h); the device side is softmax_loss.cu.
#include <algorithm>
#include <climits>
#include <string>

#include "cuda/backend_internal.h"

namespace zero {
namespace cuda_backend {
namespace {

// ---- softmax family and losses --------------------------------------------------

template <bool kLog, bool kRun>
Status softmax(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  AxisSplit s;
  ZERO_RETURN_IF_ERROR(softmax_geometry(call, &s));
  ZERO_RETURN_IF_ERROR(check_grid(call, s.outer * s.inner));
  if (!kRun) return Status();
  return launched(call, cuda::softmax(g_dev->stream, x.f32(), y.f32(), s.outer, s.n, s.inner, kLog));
}

template <bool kLog, bool kRun>
Status softmax_grad(const KernelCall& call) {
  const Tensor &dy = call.in[0], &y = call.in[1], &dx = call.out[0];
  AxisSplit s;
  ZERO_RETURN_IF_ERROR(softmax_grad_geometry(call, &s));
  ZERO_RETURN_IF_ERROR(check_grid(call, s.outer * s.inner));
  if (!kRun) return Status();
  return launched(call, cuda::softmax_grad(g_dev->stream, dy.f32(), y.f32(), dx.f32(), s.outer, s.n, s.inner, kLog));
}

// The shared loss checks, then the kernels' arguments.
Status loss_args(const KernelCall& call, const Tensor& scores, const Tensor& labels, LossGeometry* lg,
                 cuda::LossArgs* g) {
  ZERO_RETURN_IF_ERROR(loss_geometry(call, scores, labels, lg));
  g->n = lg->n;
  g->c = lg->c;
  g->inner = lg->inner;
  g->has_ignore = lg->has_ignore;
  g->ignore_index = lg->ignore_index;
  g->reduction = lg->reduction == plan::Reduction::Sum ? 0 : lg->reduction == plan::Reduction::Mean ? 1 : 2;
  g->opcode = int(call.inst->opcode());
  return check_grid(call, g->n * g->inner);
}

template <bool kSoftmax, bool kRun>
Status loss(const KernelCall& call) {
  const Tensor &scores = call.in[0], &labels = call.in[1], &out = call.out[0];
  const Tensor* weights = call.num_in > 2 ? &call.in[2] : nullptr;
  LossGeometry lg;
  cuda::LossArgs g;
  ZERO_RETURN_IF_ERROR(loss_args(call, scores, labels, &lg, &g));
  ZERO_RETURN_IF_ERROR(check_loss_output(call, lg, out, labels, "loss"));
  ZERO_RETURN_IF_ERROR(check_loss_weights(call, lg, weights));
  const Tensor* log_prob = kSoftmax && call.num_out > 1 ? &call.out[1] : nullptr;
  ZERO_RETURN_IF_ERROR(check_log_prob(call, scores, log_prob));
  if (!kRun) return Status();
  void* s;
  ZERO_RETURN_IF_ERROR(scratch(size_t(g.n * g.inner + 2) * sizeof(double), &s));
  return launched(call,
                  cuda::loss(g_dev->stream, g, kSoftmax, scores.f32(), labels.i64(), weights ? weights->f32() : nullptr,
                             out.f32(), log_prob ? log_prob->f32() : nullptr, static_cast<double*>(s), g_dev->err));
}

template <bool kSoftmax, bool kRun>
Status loss_grad(const KernelCall& call) {
  const Tensor &dloss = call.in[0], &x = call.in[1], &labels = call.in[2], &dx = call.out[0];
  const Tensor* weights = call.num_in > 3 ? &call.in[3] : nullptr;
  LossGeometry lg;
  cuda::LossArgs g;
  ZERO_RETURN_IF_ERROR(loss_args(call, x, labels, &lg, &g));
  ZERO_RETURN_IF_ERROR(check_loss_output(call, lg, dloss, labels, "dloss"));
  ZERO_RETURN_IF_ERROR(check_loss_weights(call, lg, weights));
  ZERO_RETURN_IF_ERROR(expect_f32(call, dx, "dinput"));
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, x, dx, "input and dinput"));
  if (!kRun) return Status();
  void* s;
  ZERO_RETURN_IF_ERROR(scratch(2 * sizeof(double), &s));
  return launched(call,
                  cuda::loss_grad(g_dev->stream, g, kSoftmax, dloss.f32(), x.f32(), labels.i64(),
                                  weights ? weights->f32() : nullptr, dx.f32(), static_cast<double*>(s), g_dev->err));
}

}  // namespace

void add_cuda_softmax_loss_kernels(TableBackend& backend) {
  ZERO_CUDA_SET_T(Softmax, softmax, false);
  ZERO_CUDA_SET_T(LogSoftmax, softmax, true);
  ZERO_CUDA_SET_T(SoftmaxGrad, softmax_grad, false);
  ZERO_CUDA_SET_T(LogSoftmaxGrad, softmax_grad, true);
  ZERO_CUDA_SET_T(SoftmaxCrossEntropyLoss, loss, true);
  ZERO_CUDA_SET_T(NegativeLogLikelihoodLoss, loss, false);
  ZERO_CUDA_SET_T(SoftmaxCrossEntropyLossGrad, loss_grad, true);
  ZERO_CUDA_SET_T(NegativeLogLikelihoodLossGrad, loss_grad, false);
}

}  // namespace cuda_backend

}  // namespace zero
