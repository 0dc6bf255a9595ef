// Operand checks and geometry shared by the CPU and CUDA backends.
#include "kernel_checks.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>

namespace zero {
namespace {

std::string shape_of(const Tensor& t) { return tensor_shape_string(t); }

}  // namespace

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
    return fail(call, std::string(what) + " shapes differ: " + tensor_shape_string(a) + " vs " +
                          tensor_shape_string(b));
  return Status();
}

Status expect_numel(const KernelCall& call, const Tensor& t, int64_t n, const char* role, const char* what) {
  ZERO_RETURN_IF_ERROR(expect_f32(call, t, role));
  if (t.numel != n)
    return fail(call, std::string(role) + " " + shape_of(t) + " must have " + std::to_string(n) + " elements (" +
                          what + ")");
  return Status();
}

Status expect_step_scalar(const KernelCall& call, const Tensor& step) {
  if (step.dtype != DType::I64 || step.numel != 1) return fail(call, "step must be an I64 scalar");
  return Status();
}

bool normalize_axis(int64_t axis, int ndim, int* out) {
  if (axis < -ndim || axis >= ndim) return false;
  *out = static_cast<int>(axis < 0 ? axis + ndim : axis);
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
    if (t.dims[j] == shape.dims[i]) {
      strides[i] = shape.dims[i] == 1 ? 0 : stride;
    } else if (t.dims[j] == 1) {
      strides[i] = 0;
    } else {
      return false;
    }
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

Status check_copy(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  if (x.dtype != y.dtype) return fail(call, "input and output dtypes differ");
  return expect_same_numel(call, x, y, "input and output");
}

// ---- Gemm / MatMul -------------------------------------------------------

Status gemm_geometry(const KernelCall& call, GemmGeom* g, int64_t* sc) {
  const Tensor &a = call.in[0], &b = call.in[1], &y = call.out[0];
  const auto* attrs = call.inst->attrs_as_GemmAttrs();
  g->ta = attrs && attrs->trans_a();
  g->tb = attrs && attrs->trans_b();
  g->alpha = attrs ? attrs->alpha() : 1.f;
  g->beta = attrs ? attrs->beta() : 1.f;
  ZERO_RETURN_IF_ERROR(expect_f32(call, a, "A"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, b, "B"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, y, "Y"));
  if (a.ndim != 2 || b.ndim != 2 || y.ndim != 2)
    return fail(call, "A, B and Y must be 2-D, got " + tensor_shape_string(a) + ", " + tensor_shape_string(b) +
                          ", " + tensor_shape_string(y));
  const bool ta = g->ta, tb = g->tb;
  const int64_t m = ta ? a.dims[1] : a.dims[0], k = ta ? a.dims[0] : a.dims[1];
  const int64_t kb = tb ? b.dims[1] : b.dims[0], n = tb ? b.dims[0] : b.dims[1];
  if (k != kb || y.dims[0] != m || y.dims[1] != n)
    return fail(call, "shapes " + tensor_shape_string(a) + " x " + tensor_shape_string(b) + " -> " +
                          tensor_shape_string(y) + " do not match");
  if (!fits_int(m) || !fits_int(n) || !fits_int(k)) return fail(call, "dimensions exceed BLAS int range");
  g->m = m;
  g->n = n;
  g->k = k;
  g->with_c = call.num_in > 2 && g->beta != 0.f;
  if (g->with_c) {
    const Tensor& c = call.in[2];
    ZERO_RETURN_IF_ERROR(expect_f32(call, c, "C"));
    if (!broadcast_strides(c, y, sc))
      return fail(call, "C " + tensor_shape_string(c) + " does not broadcast to " + tensor_shape_string(y));
  }
  return Status();
}

Status matmul_geometry(const KernelCall& call, MatMulGeom* g) {
  const Tensor &a = call.in[0], &b = call.in[1], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(expect_f32(call, a, "A"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, b, "B"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, y, "Y"));
  const auto mismatch = [&] {
    return fail(call, "shapes " + tensor_shape_string(a) + " x " + tensor_shape_string(b) + " -> " +
                          tensor_shape_string(y) + " do not match");
  };
  if (a.ndim < 1 || b.ndim < 1) return mismatch();
  // numpy: a 1-D A is a row vector, a 1-D B a column vector; both extra
  // dimensions are dropped from the result.
  g->m = a.ndim == 1 ? 1 : a.dims[a.ndim - 2];
  g->k = a.dims[a.ndim - 1];
  const int64_t kb = b.ndim == 1 ? b.dims[0] : b.dims[b.ndim - 2];
  g->n = b.ndim == 1 ? 1 : b.dims[b.ndim - 1];
  if (g->k != kb) return mismatch();
  // Batch dims: A's and B's leading dims broadcast against each other.
  Tensor ba, bb;
  ba.ndim = std::max(a.ndim - 2, 0);
  bb.ndim = std::max(b.ndim - 2, 0);
  std::copy(a.dims, a.dims + ba.ndim, ba.dims);
  std::copy(b.dims, b.dims + bb.ndim, bb.dims);
  Tensor& batch = g->batch;
  batch.ndim = std::max(ba.ndim, bb.ndim);
  batch.numel = 1;
  for (int i = 0; i < batch.ndim; ++i) {
    int ia = i - (batch.ndim - ba.ndim), ib = i - (batch.ndim - bb.ndim);
    int64_t da = ia >= 0 ? ba.dims[ia] : 1, db = ib >= 0 ? bb.dims[ib] : 1;
    if (da != db && da != 1 && db != 1) return mismatch();
    batch.dims[i] = std::max(da, db);
    if (da == 0 || db == 0) batch.dims[i] = 0;
    batch.numel *= batch.dims[i];
  }
  // Expected output shape.
  Tensor expect;
  expect.ndim = batch.ndim;
  std::copy(batch.dims, batch.dims + batch.ndim, expect.dims);
  if (a.ndim > 1) expect.dims[expect.ndim++] = g->m;
  if (b.ndim > 1) expect.dims[expect.ndim++] = g->n;
  if (expect.ndim > kMaxRank || !same_shape(expect, y)) return mismatch();
  if (!fits_int(g->m) || !fits_int(g->n) || !fits_int(g->k)) return fail(call, "dimensions exceed BLAS int range");
  g->batch_a = g->batch_b = 1;
  for (int i = 0; i < ba.ndim; ++i) g->batch_a *= ba.dims[i];
  for (int i = 0; i < bb.ndim; ++i) g->batch_b *= bb.dims[i];
  ba.numel = g->batch_a;
  bb.numel = g->batch_b;
  broadcast_strides(ba, batch, g->sa);
  broadcast_strides(bb, batch, g->sb);
  return Status();
}

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
    return fail(call, "scores " + tensor_shape_string(scores) + " and labels " + tensor_shape_string(labels) +
                          " do not match");
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
    return fail(call, std::string(role) + " has " + std::to_string(loss.numel) + " elements, expected " +
                          std::to_string(want));
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

// ---- reductions, layout --------------------------------------------------

Status reduce_geometry(const KernelCall& call, bool* reduced, int64_t* out_numel, int64_t* count) {
  const Tensor &x = call.in[0], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(expect_f32(call, x, "x"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, y, "y"));
  std::fill(reduced, reduced + kMaxRank, false);
  const auto* attrs = call.inst->attrs_as_ReduceAttrs();
  const bool all = !attrs || !attrs->axes() || attrs->axes()->size() == 0;
  for (int i = 0; all && i < x.ndim; ++i) reduced[i] = true;
  if (!all)
    for (int64_t axis : *attrs->axes()) {
      int ax;
      if (!normalize_axis(axis, x.ndim, &ax))
        return fail(call, "axis " + std::to_string(axis) + " out of range for " + tensor_shape_string(x));
      reduced[ax] = true;
    }
  // The output layout is the input's with reduced dims dropped or kept as 1
  // (keepdims); either way the element order is the same, so only the count
  // must match.
  *out_numel = *count = 1;
  for (int i = 0; i < x.ndim; ++i) (reduced[i] ? *count : *out_numel) *= x.dims[i];
  if (y.numel != *out_numel)
    return fail(call, "output " + tensor_shape_string(y) + " does not match reducing " + tensor_shape_string(x));
  return Status();
}

Status transpose_geometry(const KernelCall& call, int64_t* src_strides) {
  const Tensor &x = call.in[0], &y = call.out[0];
  if (x.dtype != y.dtype) return fail(call, "input and output dtypes differ");
  if (x.data == y.data && x.numel > 1) return fail(call, "transpose cannot run in place");
  int perm[kMaxRank];
  const auto* attrs = call.inst->attrs_as_PermAttrs();
  if (!attrs || !attrs->perm() || attrs->perm()->size() == 0) {
    for (int i = 0; i < x.ndim; ++i) perm[i] = x.ndim - 1 - i;  // ONNX default: reverse
  } else {
    if (int(attrs->perm()->size()) != x.ndim) return fail(call, "perm length differs from rank");
    bool seen[kMaxRank] = {};
    for (int i = 0; i < x.ndim; ++i) {
      int64_t p = attrs->perm()->Get(i);
      if (p < 0 || p >= x.ndim || seen[p]) return fail(call, "perm is not a permutation");
      seen[p] = true;
      perm[i] = int(p);
    }
  }
  int64_t in_strides[kMaxRank];
  contiguous_strides(x, in_strides);
  bool ok = y.ndim == x.ndim;
  for (int i = 0; ok && i < x.ndim; ++i) {
    ok = y.dims[i] == x.dims[perm[i]];
    src_strides[i] = in_strides[perm[i]];
  }
  if (!ok) return fail(call, "output " + tensor_shape_string(y) + " is not a permutation of " + tensor_shape_string(x));
  return Status();
}

Status expand_geometry(const KernelCall& call, int64_t* strides) {
  const Tensor &x = call.in[0], &y = call.out[0];
  if (x.dtype != y.dtype) return fail(call, "input and output dtypes differ");
  if (!broadcast_strides(x, y, strides))
    return fail(call, "cannot broadcast " + tensor_shape_string(x) + " to " + tensor_shape_string(y));
  if (x.data == y.data && x.numel != y.numel) return fail(call, "expand cannot run in place");
  return Status();
}

// ---- Gather, Slice, Concat, Where, LayerNormalization ----------------------

Status gather_geometry(const KernelCall& call, const Tensor& data, const Tensor& indices, const Tensor& y,
                       const char* data_role, const char* y_role, GatherSplit* g) {
  if (indices.dtype != DType::I64) return fail(call, "indices must be I64");
  if (data.dtype != y.dtype) return fail(call, std::string(data_role) + " and " + y_role + " dtypes differ");
  int ax;
  const int64_t axis = axis_attr_or(call, 0);
  if (!normalize_axis(axis, data.ndim, &ax))
    return fail(call, "axis " + std::to_string(axis) + " out of range for " + data_role + " " + shape_of(data));
  // y's shape is data[:axis] + indices + data[axis+1:].
  Tensor want;
  want.ndim = data.ndim - 1 + indices.ndim;
  bool ok = want.ndim <= kMaxRank;
  if (ok) {
    int k = 0;
    for (int i = 0; i < ax; ++i) want.dims[k++] = data.dims[i];
    for (int i = 0; i < indices.ndim; ++i) want.dims[k++] = indices.dims[i];
    for (int i = ax + 1; i < data.ndim; ++i) want.dims[k++] = data.dims[i];
    ok = same_shape(want, y);
  }
  if (!ok)
    return fail(call, std::string(y_role) + " " + shape_of(y) + " does not match gathering " + data_role + " " +
                          shape_of(data) + " along axis " + std::to_string(axis) + " with indices " +
                          shape_of(indices));
  for (int i = 0; i < ax; ++i) g->outer *= data.dims[i];
  g->n = data.dims[ax];
  for (int i = ax + 1; i < data.ndim; ++i) g->inner *= data.dims[i];
  g->q = indices.numel;
  return Status();
}

Status validate_gather(const KernelCall& call) {
  GatherSplit g;
  return gather_geometry(call, call.in[0], call.in[1], call.out[0], "data", "output", &g);
}

Status gather_grad_geometry(const KernelCall& call, GatherSplit* g) {
  ZERO_RETURN_IF_ERROR(expect_f32(call, call.in[0], "dy"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, call.out[0], "ddata"));
  return gather_geometry(call, call.out[0], call.in[1], call.in[0], "ddata", "dy", g);
}

Status validate_gather_grad(const KernelCall& call) {
  GatherSplit g;
  return gather_grad_geometry(call, &g);
}

Status slice_geometry(const KernelCall& call, const Tensor& x, const Tensor& y, int64_t* strides, int64_t* base) {
  if (x.dtype != y.dtype) return fail(call, "input and output dtypes differ");
  const auto* attrs = call.inst->attrs_as_SliceAttrs();
  if (!attrs || !attrs->starts() || !attrs->steps()) return fail(call, "missing SliceAttrs (starts and steps)");
  if (x.ndim != y.ndim || int(attrs->starts()->size()) != x.ndim || int(attrs->steps()->size()) != x.ndim)
    return fail(call, "starts (" + std::to_string(attrs->starts()->size()) + ") and steps (" +
                          std::to_string(attrs->steps()->size()) + ") must give every dimension of " +
                          shape_of(x) + " -> " + shape_of(y));
  int64_t xs[kMaxRank];
  contiguous_strides(x, xs);
  *base = 0;
  for (int d = 0; d < x.ndim; ++d) {
    const int64_t start = attrs->starts()->Get(flatbuffers::uoffset_t(d));
    const int64_t step = attrs->steps()->Get(flatbuffers::uoffset_t(d));
    const int64_t n = y.dims[d], size = x.dims[d];
    if (step == 0) return fail(call, "step 0 in dimension " + std::to_string(d));
    strides[d] = step * xs[d];
    if (n == 0) continue;  // nothing accessed along this dimension
    // Every accessed index start + i*step, i < n, must be in [0, size); it
    // suffices to check both ends (overflow-safe: |step| * (n-1) bounded).
    __int128 last = __int128(start) + __int128(step) * __int128(n - 1);
    if (start < 0 || start >= size || last < 0 || last >= size)
      return fail(call, "dimension " + std::to_string(d) + ": start " + std::to_string(start) + " step " +
                            std::to_string(step) + " for " + std::to_string(n) + " elements leaves [0, " +
                            std::to_string(size) + ")");
    *base += start * xs[d];
  }
  if (y.numel == 0) *base = 0;
  return Status();
}

Status validate_slice(const KernelCall& call) {
  int64_t strides[kMaxRank], base;
  return slice_geometry(call, call.in[0], call.out[0], strides, &base);
}

Status slice_grad_geometry(const KernelCall& call, int64_t* strides, int64_t* base) {
  ZERO_RETURN_IF_ERROR(expect_f32(call, call.in[0], "dy"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, call.out[0], "dx"));
  return slice_geometry(call, call.out[0], call.in[0], strides, base);
}

Status validate_slice_grad(const KernelCall& call) {
  int64_t strides[kMaxRank], base;
  return slice_grad_geometry(call, strides, &base);
}

Status concat_geometry(const KernelCall& call, int* axis_out) {
  const Tensor& y = call.out[0];
  const int64_t axis = axis_attr_or(call, 0);
  int ax;
  if (!normalize_axis(axis, y.ndim, &ax))
    return fail(call, "axis " + std::to_string(axis) + " out of range for output " + shape_of(y));
  int64_t total = 0;
  for (int k = 0; k < call.num_in; ++k) {
    const Tensor& x = call.in[k];
    if (x.dtype != y.dtype) return fail(call, "input " + std::to_string(k) + " and output dtypes differ");
    bool ok = x.ndim == y.ndim;
    for (int d = 0; ok && d < y.ndim; ++d) ok = d == ax || x.dims[d] == y.dims[d];
    if (!ok)
      return fail(call, "input " + std::to_string(k) + " " + shape_of(x) + " does not fit output " + shape_of(y) +
                            " along axis " + std::to_string(axis));
    if (x.numel > 0 && x.data == y.data) return fail(call, "concat cannot run in place");
    total += x.dims[ax];
  }
  if (total != y.dims[ax])
    return fail(call, "inputs add up to " + std::to_string(total) + " along axis " + std::to_string(axis) +
                          ", output has " + std::to_string(y.dims[ax]));
  *axis_out = ax;
  return Status();
}

Status validate_concat(const KernelCall& call) {
  int ax;
  return concat_geometry(call, &ax);
}

Status where_geometry(const KernelCall& call, int64_t* sc, int64_t* sx, int64_t* sy) {
  const Tensor &c = call.in[0], &x = call.in[1], &y = call.in[2], &out = call.out[0];
  if (c.dtype != DType::I64) return fail(call, "cond must be I64");
  if (x.dtype != out.dtype || y.dtype != out.dtype) return fail(call, "x, y and output dtypes differ");
  if (!broadcast_strides(c, out, sc) || !broadcast_strides(x, out, sx) || !broadcast_strides(y, out, sy))
    return fail(call, "cannot broadcast " + shape_of(c) + ", " + shape_of(x) + " and " + shape_of(y) + " to " +
                          shape_of(out));
  // The output must be exactly the broadcast shape of the three operands.
  for (int d = 0; d < out.ndim; ++d) {
    int64_t want = 1;
    for (const Tensor* t : {&c, &x, &y}) {
      const int j = d - (out.ndim - t->ndim);
      if (j >= 0 && t->dims[j] != 1) want = t->dims[j];
    }
    if (want != out.dims[d])
      return fail(call, "output " + shape_of(out) + " is not the broadcast shape of " + shape_of(c) + ", " +
                            shape_of(x) + " and " + shape_of(y));
  }
  // Exact aliasing of the output with a full-size operand is an
  // elementwise read-before-write; partial overlaps are not supported.
  for (const Tensor* t : {&x, &y})
    if (t->data == out.data && t->numel != out.numel && out.numel > 0) return fail(call, "where cannot run in place");
  return Status();
}

Status validate_where(const KernelCall& call) {
  int64_t sc[kMaxRank], sx[kMaxRank], sy[kMaxRank];
  return where_geometry(call, sc, sx, sy);
}

Status layer_norm_split(const KernelCall& call, const Tensor& x, LayerNormSplit* s) {
  const auto* attrs = call.inst->attrs_as_LayerNormAttrs();
  if (!attrs) return fail(call, "missing LayerNormAttrs");
  int ax;
  if (!normalize_axis(attrs->axis(), x.ndim, &ax))
    return fail(call, "axis " + std::to_string(attrs->axis()) + " out of range for " + shape_of(x));
  for (int d = 0; d < ax; ++d) s->outer *= x.dims[d];
  for (int d = ax; d < x.ndim; ++d) s->inner *= x.dims[d];
  s->eps = attrs->epsilon();
  if (!(s->eps >= 0.f)) return fail(call, "epsilon must be >= 0");
  return Status();
}

Status validate_layer_norm(const KernelCall& call) {
  const Tensor& x = call.in[0];
  ZERO_RETURN_IF_ERROR(expect_f32(call, x, "x"));
  LayerNormSplit s;
  ZERO_RETURN_IF_ERROR(layer_norm_split(call, x, &s));
  ZERO_RETURN_IF_ERROR(expect_numel(call, call.in[1], s.inner, "scale", "the normalized dimensions"));
  ZERO_RETURN_IF_ERROR(expect_numel(call, call.in[2], s.inner, "bias", "the normalized dimensions"));
  ZERO_RETURN_IF_ERROR(expect_numel(call, call.out[0], x.numel, "y", "x's shape"));
  if (call.num_out > 1) ZERO_RETURN_IF_ERROR(expect_numel(call, call.out[1], s.outer, "mean", "the leading dimensions"));
  if (call.num_out > 2)
    ZERO_RETURN_IF_ERROR(expect_numel(call, call.out[2], s.outer, "inv_std_dev", "the leading dimensions"));
  return Status();
}

Status validate_layer_norm_grad(const KernelCall& call) {
  const Tensor &dy = call.in[0], &x = call.in[1];
  ZERO_RETURN_IF_ERROR(expect_f32(call, x, "x"));
  LayerNormSplit s;
  ZERO_RETURN_IF_ERROR(layer_norm_split(call, x, &s));
  ZERO_RETURN_IF_ERROR(expect_numel(call, dy, x.numel, "dy", "x's shape"));
  ZERO_RETURN_IF_ERROR(expect_numel(call, call.in[2], s.inner, "scale", "the normalized dimensions"));
  ZERO_RETURN_IF_ERROR(expect_numel(call, call.in[3], s.outer, "mean", "the leading dimensions"));
  ZERO_RETURN_IF_ERROR(expect_numel(call, call.in[4], s.outer, "inv_std_dev", "the leading dimensions"));
  ZERO_RETURN_IF_ERROR(expect_numel(call, call.out[0], x.numel, "dx", "x's shape"));
  if (call.num_out > 1) ZERO_RETURN_IF_ERROR(expect_numel(call, call.out[1], s.inner, "dscale", "scale's shape"));
  if (call.num_out > 2) ZERO_RETURN_IF_ERROR(expect_numel(call, call.out[2], s.inner, "dbias", "bias's shape"));
  for (int k = 1; k < call.num_out; ++k)
    if (call.out[k].data == call.out[0].data || (call.out[k].numel > 0 && call.out[k].data == x.data))
      return fail(call, "dscale and dbias cannot alias dx or x");
  return Status();
}

// ---- Conv, pooling, BatchNormalization (2-D NCHW, F32) -------------------

// True when the byte ranges of a and b intersect.
bool overlaps(const Tensor& a, const Tensor& b) {
  if (a.numel == 0 || b.numel == 0) return false;
  const uint8_t *a0 = static_cast<const uint8_t*>(a.data), *b0 = static_cast<const uint8_t*>(b.data);
  const uint8_t *a1 = a0 + size_t(a.numel) * dtype_size(a.dtype), *b1 = b0 + size_t(b.numel) * dtype_size(b.dtype);
  return a0 < b1 && b0 < a1;
}

namespace {

std::string list_string(const int64_t* v, int n) {
  std::string s = "[";
  for (int i = 0; i < n; ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// Output size along one axis, -1 when the window does not fit the padded
// input. ceil rounds up as PyTorch does, but the last window must start
// inside x or the begin padding.
int64_t window_out(int64_t in, int64_t pad0, int64_t pad1, int64_t k, int64_t d, int64_t s, bool ceil = false) {
  const int64_t span = in + pad0 + pad1 - d * (k - 1) - 1;
  if (span < 0) return -1;
  int64_t out = (ceil ? (span + s - 1) / s : span / s) + 1;
  if (ceil && (out - 1) * s >= in + pad0) --out;
  return out;
}

// Reads an optional attribute list of `n` entries each >= `min` into out
// (absent or empty keeps the defaults).
Status read_list(const KernelCall& call, const flatbuffers::Vector<int64_t>* v, int n, int64_t min, const char* name,
                 int64_t* out) {
  if (!v || v->size() == 0) return Status();
  if (int(v->size()) != n)
    return fail(call, std::string(name) + " must have " + std::to_string(n) + " entries (2-D), got " +
                          std::to_string(v->size()));
  for (int i = 0; i < n; ++i) {
    if (v->Get(i) < min || v->Get(i) > (int64_t(1) << 32))
      return fail(call, std::string(name) + " " + list_string(v->data(), n) + " must be >= " + std::to_string(min));
    out[i] = v->Get(i);
  }
  return Status();
}

Status expect_4d(const KernelCall& call, const Tensor& t, const char* role) {
  ZERO_RETURN_IF_ERROR(expect_f32(call, t, role));
  if (t.ndim != 4) return fail(call, std::string(role) + " must be 4-D (NCHW), got " + shape_of(t));
  return Status();
}

}  // namespace

// Checks x [N,C,H,W] * w [M,C/group,kH,kW] -> y [N,M,OH,OW] against
// ConvAttrs; the roles name the operands as the instruction has them
// (x or dx, w or dw, y or dy).
Status conv_geometry(const KernelCall& call, const Tensor& x, const Tensor& w, const Tensor& y, const char* xr,
                     const char* wr, const char* yr, ConvGeom* g) {
  ZERO_RETURN_IF_ERROR(expect_4d(call, x, xr));
  ZERO_RETURN_IF_ERROR(expect_4d(call, w, wr));
  ZERO_RETURN_IF_ERROR(expect_4d(call, y, yr));
  Window2d& win = g->win;
  if (const auto* a = call.inst->attrs_as_ConvAttrs()) {
    ZERO_RETURN_IF_ERROR(read_list(call, a->strides(), 2, 1, "strides", win.s));
    ZERO_RETURN_IF_ERROR(read_list(call, a->pads(), 4, 0, "pads", win.p));
    ZERO_RETURN_IF_ERROR(read_list(call, a->dilations(), 2, 1, "dilations", win.d));
    g->group = a->group();
    if (g->group < 1) return fail(call, "group " + std::to_string(g->group) + " must be >= 1");
  }
  g->n = x.dims[0], g->c = x.dims[1], g->h = x.dims[2], g->w = x.dims[3];
  g->m = w.dims[0];
  win.k[0] = w.dims[2], win.k[1] = w.dims[3];
  const std::string desc = std::string(xr) + " " + shape_of(x) + " and " + wr + " " + shape_of(w) + " (strides " +
                           list_string(win.s, 2) + ", pads " + list_string(win.p, 4) + ", dilations " +
                           list_string(win.d, 2) + ", group " + std::to_string(g->group) + ")";
  if (g->c % g->group != 0 || g->m % g->group != 0)
    return fail(call, "group " + std::to_string(g->group) + " does not divide the channels of " + desc);
  if (w.dims[1] != g->c / g->group)
    return fail(call, std::string(wr) + " dimension 1 must be C/group = " + std::to_string(g->c / g->group) + " for " +
                          desc);
  if (win.k[0] < 1 || win.k[1] < 1) return fail(call, "empty kernel in " + desc);
  g->oh = window_out(g->h, win.p[0], win.p[2], win.k[0], win.d[0], win.s[0]);
  g->ow = window_out(g->w, win.p[1], win.p[3], win.k[1], win.d[1], win.s[1]);
  if (g->oh < 1 || g->ow < 1) return fail(call, "the dilated kernel is larger than the padded input for " + desc);
  const int64_t want[4] = {g->n, g->m, g->oh, g->ow};
  for (int i = 0; i < 4; ++i)
    if (y.dims[i] != want[i])
      return fail(call, std::string(yr) + " " + shape_of(y) + " does not match the convolution of " + desc +
                            ": expected " + list_string(want, 4));
  if (!fits_int(g->kdim()) || !fits_int(g->m) || g->plane() > 0x7fffffff)
    return fail(call, "dimensions exceed BLAS int range");
  return Status();
}

Status validate_conv(const KernelCall& call) {
  const Tensor &x = call.in[0], &w = call.in[1], &y = call.out[0];
  ConvGeom g;
  ZERO_RETURN_IF_ERROR(conv_geometry(call, x, w, y, "x", "w", "y", &g));
  if (call.num_in > 2) {
    const Tensor& b = call.in[2];
    ZERO_RETURN_IF_ERROR(expect_f32(call, b, "b"));
    if (b.ndim != 1 || b.dims[0] != g.m)
      return fail(call, "b " + shape_of(b) + " must be [" + std::to_string(g.m) + "] (w's output channels)");
  }
  for (int k = 0; k < call.num_in; ++k)
    if (overlaps(call.in[k], y)) return fail(call, "y cannot overlap an input (not in place)");
  return Status();
}

Status validate_conv_grad_input(const KernelCall& call) {
  const Tensor &dy = call.in[0], &w = call.in[1], &dx = call.out[0];
  ConvGeom g;
  ZERO_RETURN_IF_ERROR(conv_geometry(call, dx, w, dy, "dx", "w", "dy", &g));
  if (overlaps(dx, dy) || overlaps(dx, w)) return fail(call, "dx cannot overlap an input (not in place)");
  return Status();
}

Status validate_conv_grad_weight(const KernelCall& call) {
  const Tensor &dy = call.in[0], &x = call.in[1], &dw = call.out[0];
  ConvGeom g;
  ZERO_RETURN_IF_ERROR(conv_geometry(call, x, dw, dy, "x", "dw", "dy", &g));
  if (overlaps(dw, dy) || overlaps(dw, x)) return fail(call, "dw cannot overlap an input (not in place)");
  return Status();
}

// Checks x [N,C,H,W] pooled to y [N,C,OH,OW] against PoolAttrs.
Status pool_geometry(const KernelCall& call, const Tensor& x, const Tensor& y, const char* xr, const char* yr,
                     PoolGeom* g) {
  ZERO_RETURN_IF_ERROR(expect_4d(call, x, xr));
  ZERO_RETURN_IF_ERROR(expect_4d(call, y, yr));
  const auto* a = call.inst->attrs_as_PoolAttrs();
  if (!a) return fail(call, "missing PoolAttrs");
  Window2d& win = g->win;
  if (!a->kernel_shape() || a->kernel_shape()->size() != 2) return fail(call, "kernel_shape must have 2 entries (2-D)");
  ZERO_RETURN_IF_ERROR(read_list(call, a->kernel_shape(), 2, 1, "kernel_shape", win.k));
  ZERO_RETURN_IF_ERROR(read_list(call, a->strides(), 2, 1, "strides", win.s));
  ZERO_RETURN_IF_ERROR(read_list(call, a->pads(), 4, 0, "pads", win.p));
  g->include_pad = a->count_include_pad();
  g->ceil_mode = a->ceil_mode();
  // Every window then holds at least one element of x (in ceil mode too: the
  // last window starts inside x or the begin padding).
  for (int i = 0; i < 4; ++i)
    if (win.p[i] >= win.k[i % 2])
      return fail(call, "pads " + list_string(win.p, 4) + " must be smaller than kernel_shape " + list_string(win.k, 2));
  g->planes = x.dims[0] * x.dims[1], g->h = x.dims[2], g->w = x.dims[3];
  g->oh = window_out(g->h, win.p[0], win.p[2], win.k[0], 1, win.s[0], g->ceil_mode);
  g->ow = window_out(g->w, win.p[1], win.p[3], win.k[1], 1, win.s[1], g->ceil_mode);
  const std::string desc = std::string(xr) + " " + shape_of(x) + " (kernel_shape " + list_string(win.k, 2) +
                           ", strides " + list_string(win.s, 2) + ", pads " + list_string(win.p, 4) +
                           (g->ceil_mode ? ", ceil_mode" : "") + ")";
  if (g->oh < 1 || g->ow < 1) return fail(call, "the kernel is larger than the padded input for " + desc);
  const int64_t want[4] = {x.dims[0], x.dims[1], g->oh, g->ow};
  for (int i = 0; i < 4; ++i)
    if (y.dims[i] != want[i])
      return fail(call, std::string(yr) + " " + shape_of(y) + " does not match pooling " + desc + ": expected " +
                            list_string(want, 4));
  return Status();
}

Status validate_max_pool(const KernelCall& call) {
  PoolGeom g;
  ZERO_RETURN_IF_ERROR(pool_geometry(call, call.in[0], call.out[0], "x", "y", &g));
  if (call.num_out > 1) {
    const Tensor& am = call.out[1];
    if (am.dtype != DType::I64) return fail(call, "argmax must be I64");
    if (!same_shape(am, call.out[0]))
      return fail(call, "argmax " + shape_of(am) + " must have y's shape " + shape_of(call.out[0]));
  }
  for (int k = 0; k < call.num_out; ++k)
    if (overlaps(call.out[k], call.in[0])) return fail(call, "outputs cannot overlap x (not in place)");
  if (call.num_out > 1 && overlaps(call.out[0], call.out[1])) return fail(call, "y and argmax overlap");
  return Status();
}

Status validate_max_pool_grad(const KernelCall& call) {
  const Tensor &dy = call.in[0], &am = call.in[1], &dx = call.out[0];
  PoolGeom g;
  ZERO_RETURN_IF_ERROR(pool_geometry(call, dx, dy, "dx", "dy", &g));
  if (am.dtype != DType::I64) return fail(call, "argmax must be I64");
  if (!same_shape(am, dy)) return fail(call, "argmax " + shape_of(am) + " must have dy's shape " + shape_of(dy));
  if (overlaps(dx, dy) || overlaps(dx, am)) return fail(call, "dx cannot overlap an input (not in place)");
  return Status();
}

Status validate_average_pool(const KernelCall& call) {
  PoolGeom g;
  ZERO_RETURN_IF_ERROR(pool_geometry(call, call.in[0], call.out[0], "x", "y", &g));
  if (overlaps(call.in[0], call.out[0])) return fail(call, "y cannot overlap x (not in place)");
  return Status();
}

Status validate_average_pool_grad(const KernelCall& call) {
  PoolGeom g;
  ZERO_RETURN_IF_ERROR(pool_geometry(call, call.out[0], call.in[0], "dx", "dy", &g));
  if (overlaps(call.in[0], call.out[0])) return fail(call, "dx cannot overlap dy (not in place)");
  return Status();
}

namespace {

// Operands t[0, n_read) are only read and may overlap each other; every other
// pair must be disjoint, except that t[alias] may be exactly (same address
// and size) one of t[alias_ins]. Null entries are absent operands.
Status check_disjoint(const KernelCall& call, const Tensor* const* t, const char* const* names, int n, int n_read,
                      int alias, std::initializer_list<int> alias_ins) {
  for (int a = 0; a < n; ++a)
    for (int b = a + 1; b < n; ++b) {
      if (!t[a] || !t[b] || b < n_read || !overlaps(*t[a], *t[b])) continue;
      bool ok = false;
      for (int k : alias_ins)
        if (b == alias && a == k && t[a]->data == t[b]->data && t[a]->numel == t[b]->numel) ok = true;
      if (!ok) return fail(call, std::string(names[a]) + " and " + names[b] + " overlap");
    }
  return Status();
}

}  // namespace

Status batch_norm_geometry(const KernelCall& call, const Tensor& x, BatchNormGeom* g) {
  ZERO_RETURN_IF_ERROR(expect_f32(call, x, "x"));
  if (x.ndim < 2) return fail(call, "x must be at least 2-D ([N, C, ...]), got " + shape_of(x));
  const auto* a = call.inst->attrs_as_BatchNormAttrs();
  if (!a) return fail(call, "missing BatchNormAttrs");
  g->eps = a->epsilon();
  g->momentum = a->momentum();
  if (!(g->eps >= 0.0) || !std::isfinite(g->eps)) return fail(call, "epsilon must be >= 0");
  if (!std::isfinite(g->momentum)) return fail(call, "momentum must be finite");
  g->n = x.dims[0];
  g->c = x.dims[1];
  g->inner = 1;
  for (int d = 2; d < x.ndim; ++d) g->inner *= x.dims[d];
  return Status();
}

Status validate_batch_norm(const KernelCall& call) {
  const Tensor& x = call.in[0];
  BatchNormGeom g;
  ZERO_RETURN_IF_ERROR(batch_norm_geometry(call, x, &g));
  if (g.count() < 2)
    return fail(call, "x " + shape_of(x) + " has " + std::to_string(g.count()) +
                          " value(s) per channel; training-mode batch normalization needs more than 1");
  const char* roles[] = {"x", "scale", "bias", "running_mean", "running_var"};
  for (int k = 1; k < 5; ++k) ZERO_RETURN_IF_ERROR(expect_numel(call, call.in[k], g.c, roles[k], "x's channels"));
  ZERO_RETURN_IF_ERROR(expect_numel(call, call.out[0], x.numel, "y", "x's shape"));
  const char* out_roles[] = {"y", "saved_mean", "saved_inv_std"};
  for (int k = 1; k < call.num_out; ++k)
    ZERO_RETURN_IF_ERROR(expect_numel(call, call.out[k], g.c, out_roles[k], "x's channels"));
  // y may be x exactly; the running statistics are updated in place.
  const Tensor* t[] = {&x, &call.in[1], &call.in[2], &call.in[3], &call.in[4], &call.out[0],
                       call.num_out > 1 ? &call.out[1] : nullptr, call.num_out > 2 ? &call.out[2] : nullptr};
  const char* names[] = {"x", "scale", "bias", "running_mean", "running_var", "y", "saved_mean", "saved_inv_std"};
  return check_disjoint(call, t, names, 8, 3, 5, {0});
}

Status validate_batch_norm_grad(const KernelCall& call) {
  const Tensor &dy = call.in[0], &x = call.in[1];
  BatchNormGeom g;
  ZERO_RETURN_IF_ERROR(batch_norm_geometry(call, x, &g));
  ZERO_RETURN_IF_ERROR(expect_numel(call, dy, x.numel, "dy", "x's shape"));
  ZERO_RETURN_IF_ERROR(expect_numel(call, call.in[2], g.c, "scale", "x's channels"));
  ZERO_RETURN_IF_ERROR(expect_numel(call, call.in[3], g.c, "saved_mean", "x's channels"));
  ZERO_RETURN_IF_ERROR(expect_numel(call, call.in[4], g.c, "saved_inv_std", "x's channels"));
  ZERO_RETURN_IF_ERROR(expect_numel(call, call.out[0], x.numel, "dx", "x's shape"));
  if (call.num_out > 1) ZERO_RETURN_IF_ERROR(expect_numel(call, call.out[1], g.c, "dscale", "x's channels"));
  if (call.num_out > 2) ZERO_RETURN_IF_ERROR(expect_numel(call, call.out[2], g.c, "dbias", "x's channels"));
  // dx may be dy or x exactly.
  const Tensor* t[] = {&dy, &x, &call.in[2], &call.in[3], &call.in[4], &call.out[0],
                       call.num_out > 1 ? &call.out[1] : nullptr, call.num_out > 2 ? &call.out[2] : nullptr};
  const char* names[] = {"dy", "x", "scale", "saved_mean", "saved_inv_std", "dx", "dscale", "dbias"};
  return check_disjoint(call, t, names, 8, 5, 5, {0, 1});
}

// ---- optimizers ----------------------------------------------------------

Status sgd_geometry(const KernelCall& call, const plan::SgdAttrs** attrs_out, float** buf) {
  const auto* attrs = call.inst->attrs_as_SgdAttrs();
  if (!attrs) return fail(call, "missing SgdAttrs");
  const Tensor &p = call.in[0], &g = call.in[1];
  ZERO_RETURN_IF_ERROR(expect_f32(call, p, "param"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, g, "grad"));
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, p, g, "param and grad"));
  *attrs_out = attrs;
  *buf = nullptr;
  if (attrs->momentum() != 0.f) {
    if (call.num_in < 3) return fail(call, "momentum needs a momentum buffer operand");
    ZERO_RETURN_IF_ERROR(expect_f32(call, call.in[2], "momentum_buffer"));
    ZERO_RETURN_IF_ERROR(expect_same_numel(call, p, call.in[2], "param and momentum_buffer"));
    *buf = call.in[2].f32();
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

}  // namespace zero
