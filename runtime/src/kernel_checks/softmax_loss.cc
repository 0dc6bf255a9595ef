// Operand checks and geometry shared by the CPU and CUDA backends: the softmax family and the losses.
#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <string>

#include "kernel_checks.h"

namespace zero {

// ---- softmax family, losses ----------------------------------------------

Status split_axis(const KernelCall& call, const Tensor& t, int64_t axis, AxisSplit* s) {
  int ax;
  if (!normalize_axis(axis, t.ndim, &ax))
    return fail(call, "axis " + std::to_string(axis) + " out of range for " + tensor_shape_string(t));
  for (int i = 0; i < ax; ++i) s->outer *= t.dims[i];
  s->n = t.dims[ax];
  for (int i = ax + 1; i < t.ndim; ++i) s->inner *= t.dims[i];
  return Status();
}

Status softmax_geometry(const KernelCall& call, AxisSplit* s) {
  const Tensor &x = call.in[0], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(expect_f32(call, x, "x"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, y, "y"));
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, x, y, "input and output"));
  return split_axis(call, x, axis_attr(call), s);
}

Status softmax_grad_geometry(const KernelCall& call, AxisSplit* s) {
  const Tensor &dy = call.in[0], &y = call.in[1], &dx = call.out[0];
  ZERO_RETURN_IF_ERROR(expect_f32(call, dy, "dy"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, y, "y"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, dx, "dx"));
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, dy, y, "dy and y"));
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, dy, dx, "dy and dx"));
  return split_axis(call, y, axis_attr(call), s);
}

Status loss_geometry(const KernelCall& call, const Tensor& scores, const Tensor& labels, LossGeometry* g) {
  ZERO_RETURN_IF_ERROR(expect_f32(call, scores, "scores"));
  if (labels.dtype != DType::I64) return fail(call, "labels must be I64");
  bool ok = scores.ndim >= 2 && labels.ndim == scores.ndim - 1 && labels.dims[0] == scores.dims[0];
  for (int i = 2; ok && i < scores.ndim; ++i) ok = labels.dims[i - 1] == scores.dims[i];
  if (!ok)
    return fail(
        call, "scores " + tensor_shape_string(scores) + " and labels " + tensor_shape_string(labels) + " do not match");
  g->n = scores.dims[0];
  g->c = scores.dims[1];
  for (int i = 2; i < scores.ndim; ++i) g->inner *= scores.dims[i];
  if (const auto* attrs = call.inst->attrs_as_LossAttrs()) {
    g->reduction = attrs->reduction();
    g->has_ignore = attrs->has_ignore_index();
    g->ignore_index = attrs->ignore_index();
  }
  if (g->reduction != plan::Reduction::Sum && g->reduction != plan::Reduction::Mean &&
      g->reduction != plan::Reduction::None)
    return fail(call, "unknown reduction");
  return Status();
}

Status check_loss_output(const KernelCall& call, const LossGeometry& g, const Tensor& loss, const Tensor& labels,
                         const char* role) {
  ZERO_RETURN_IF_ERROR(expect_f32(call, loss, role));
  const int64_t want = g.reduction == plan::Reduction::None ? labels.numel : 1;
  if (loss.numel != want)
    return fail(
        call, std::string(role) + " has " + std::to_string(loss.numel) + " elements, expected " + std::to_string(want));
  return Status();
}

Status check_loss_weights(const KernelCall& call, const LossGeometry& g, const Tensor* weights) {
  if (!weights) return Status();
  ZERO_RETURN_IF_ERROR(expect_f32(call, *weights, "weights"));
  if (weights->ndim != 1 || weights->dims[0] != g.c)
    return fail(call, "weights " + tensor_shape_string(*weights) + " must be [" + std::to_string(g.c) + "]");
  return Status();
}

Status check_log_prob(const KernelCall& call, const Tensor& scores, const Tensor* log_prob) {
  if (!log_prob) return Status();
  ZERO_RETURN_IF_ERROR(expect_f32(call, *log_prob, "log_prob"));
  return expect_same_numel(call, scores, *log_prob, "scores and log_prob");
}

Status validate_loss(const KernelCall& call, bool softmax, LossGeometry* g) {
  const Tensor &scores = call.in[0], &labels = call.in[1];
  ZERO_RETURN_IF_ERROR(loss_geometry(call, scores, labels, g));
  ZERO_RETURN_IF_ERROR(check_loss_output(call, *g, call.out[0], labels, "loss"));
  ZERO_RETURN_IF_ERROR(check_loss_weights(call, *g, call.num_in > 2 ? &call.in[2] : nullptr));
  return check_log_prob(call, scores, softmax && call.num_out > 1 ? &call.out[1] : nullptr);
}

Status validate_loss_grad(const KernelCall& call, LossGeometry* g) {
  const Tensor &dloss = call.in[0], &x = call.in[1], &labels = call.in[2], &dx = call.out[0];
  ZERO_RETURN_IF_ERROR(loss_geometry(call, x, labels, g));
  ZERO_RETURN_IF_ERROR(check_loss_output(call, *g, dloss, labels, "dloss"));
  ZERO_RETURN_IF_ERROR(check_loss_weights(call, *g, call.num_in > 3 ? &call.in[3] : nullptr));
  ZERO_RETURN_IF_ERROR(expect_f32(call, dx, "dinput"));
  return expect_same_numel(call, x, dx, "input and dinput");
}

}  // namespace zero
