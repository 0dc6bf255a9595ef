// Operand checks and geometry shared by the CPU and CUDA backends: the shared helpers and the elementwise ops.
#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <string>

#include "kernel_checks.h"
#include "zero/shape_rules.h"

namespace zero {

namespace {

Status fail_with(StatusCode code, const KernelCall& call, const std::string& what) {
  const char* op = plan::EnumNameOpcode(call.inst->opcode());
  std::string msg = std::string(op && *op ? op : "unknown opcode");
  if (call.inst->loc() && call.inst->loc()->size() > 0) msg += " (" + call.inst->loc()->str() + ")";
  return Status(code, msg + ": " + what);
}

}  // namespace

Status fail(const KernelCall& call, const std::string& what) {
  return fail_with(StatusCode::kInvalidArgument, call, what);
}

Status fail_data(const KernelCall& call, const std::string& what) {
  return fail_with(StatusCode::kOutOfRange, call, what);
}

Status expect_f32(const KernelCall& call, const Tensor& t, const char* role) {
  if (t.dtype != DType::F32) return fail(call, std::string(role) + " must be F32");
  return Status();
}

Status expect_same_numel(const KernelCall& call, const Tensor& a, const Tensor& b, const char* what) {
  if (a.numel != b.numel)
    return fail(call,
                std::string(what) + " shapes differ: " + tensor_shape_string(a) + " vs " + tensor_shape_string(b));
  return Status();
}

Status expect_numel(const KernelCall& call, const Tensor& t, int64_t n, const char* role, const char* what) {
  ZERO_RETURN_IF_ERROR(expect_f32(call, t, role));
  if (t.numel != n)
    return fail(call, std::string(role) + " " + tensor_shape_string(t) + " must have " + std::to_string(n) +
                          " elements (" + what + ")");
  return Status();
}

Status expect_step_scalar(const KernelCall& call, const Tensor& step) {
  if (step.dtype != DType::I64 || step.numel != 1) return fail(call, "step must be an I64 scalar");
  return Status();
}

bool normalize_axis(int64_t axis, int ndim, int* out) {
  int64_t normalized;
  if (!shape_rules::normalize_axis(axis, ndim, &normalized)) return false;
  *out = static_cast<int>(normalized);
  return true;
}

bool broadcast_strides(const Tensor& t, const Tensor& shape, int64_t* strides) {
  if (t.ndim > shape.ndim) return false;
  int64_t stride = 1;
  for (int i = shape.ndim - 1; i >= 0; --i) {
    int j = i - (shape.ndim - t.ndim);
    if (j < 0) {
      strides[i] = 0;
      continue;
    }
    // t must broadcast to exactly shape's dimension.
    if (shape_rules::broadcast_dim(t.dims[j], shape.dims[i]) != shape.dims[i]) return false;
    strides[i] = t.dims[j] == 1 ? 0 : stride;
    stride *= t.dims[j];
  }
  return true;
}

bool same_shape(const Tensor& a, const Tensor& b) {
  if (a.ndim != b.ndim) return false;
  for (int i = 0; i < a.ndim; ++i)
    if (a.dims[i] != b.dims[i]) return false;
  return true;
}

void contiguous_strides(const Tensor& t, int64_t* strides) {
  int64_t s = 1;
  for (int i = t.ndim - 1; i >= 0; --i) {
    strides[i] = s;
    s *= t.dims[i];
  }
}

bool fits_int(int64_t v) { return v >= 0 && v <= 0x7fffffff; }

int64_t axis_attr_or(const KernelCall& call, int64_t def) {
  const auto* attrs = call.inst->attrs_as_AxisAttrs();
  return attrs ? attrs->axis() : def;
}

// ---- elementwise ---------------------------------------------------------

Status binary_geometry(const KernelCall& call, int64_t* sa, int64_t* sb) {
  const Tensor &a = call.in[0], &b = call.in[1], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(expect_f32(call, a, "a"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, b, "b"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, y, "output"));
  if (!broadcast_strides(a, y, sa) || !broadcast_strides(b, y, sb))
    return fail(call, "cannot broadcast " + tensor_shape_string(a) + " and " + tensor_shape_string(b) + " to " +
                          tensor_shape_string(y));
  return Status();
}

Status predicate_geometry(const KernelCall& call, bool logical, int64_t* sa, int64_t* sb) {
  const Tensor &a = call.in[0], &b = call.in[1], &y = call.out[0];
  if (logical && (a.dtype != DType::I64 || b.dtype != DType::I64)) return fail(call, "a and b must be I64");
  if (a.dtype != b.dtype) return fail(call, "a and b must have one dtype");
  if (y.dtype != DType::I64) return fail(call, "output must be I64");
  if (!broadcast_strides(a, y, sa) || !broadcast_strides(b, y, sb))
    return fail(call, "cannot broadcast " + tensor_shape_string(a) + " and " + tensor_shape_string(b) + " to " +
                          tensor_shape_string(y));
  return Status();
}

Status typed_binary_geometry(const KernelCall& call, int64_t* sa, int64_t* sb) {
  const Tensor &a = call.in[0], &b = call.in[1], &y = call.out[0];
  if (a.dtype != b.dtype || a.dtype != y.dtype) return fail(call, "a, b and output must have one dtype");
  if (!broadcast_strides(a, y, sa) || !broadcast_strides(b, y, sb))
    return fail(call, "cannot broadcast " + tensor_shape_string(a) + " and " + tensor_shape_string(b) + " to " +
                          tensor_shape_string(y));
  return Status();
}

Status check_logical_unary(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  if (x.dtype != DType::I64 || y.dtype != DType::I64) return fail(call, "x and output must be I64");
  return expect_same_numel(call, x, y, "input and output");
}

Status check_unary(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(expect_f32(call, x, "x"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, y, "output"));
  return expect_same_numel(call, x, y, "input and output");
}

Status check_unary_grad(const KernelCall& call) {
  const Tensor &dy = call.in[0], &x = call.in[1], &dx = call.out[0];
  ZERO_RETURN_IF_ERROR(expect_f32(call, dy, "dy"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, x, "x"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, dx, "dx"));
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, dy, x, "dy and x"));
  return expect_same_numel(call, dy, dx, "dy and dx");
}

namespace {

elementwise::Params elementwise_params(const KernelCall& call) {
  const plan::ElementwiseAttrs* attrs = call.inst->attrs_as_ElementwiseAttrs();
  return {attrs->alpha(), attrs->beta(), attrs->gamma(), attrs->min(), attrs->max()};
}

}  // namespace

Status prepare_parameterized_unary(const KernelCall& call, elementwise::Params* p) {
  ZERO_RETURN_IF_ERROR(check_unary(call));
  *p = elementwise_params(call);
  return Status();
}

Status prepare_parameterized_derivative(const KernelCall& call, elementwise::Params* p) {
  ZERO_RETURN_IF_ERROR(check_unary_grad(call));
  *p = elementwise_params(call);
  return Status();
}

Status check_copy(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  if (x.dtype != y.dtype) return fail(call, "input and output dtypes differ");
  return expect_same_numel(call, x, y, "input and output");
}

Status check_cast(const KernelCall& call) {
  return expect_same_numel(call, call.in[0], call.out[0], "input and output");
}

}  // namespace zero
