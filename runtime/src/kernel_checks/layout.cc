// Operand checks and geometry shared by the CPU and CUDA backends: reductions, layout, indexing and LayerNormalization.
#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <string>

#include "kernel_checks.h"
#include "zero/shape_rules.h"

namespace zero {

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

Status arg_reduce_geometry(const KernelCall& call, ArgReduceGeom* g) {
  const Tensor &x = call.in[0], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(expect_f32(call, x, "x"));
  if (y.dtype != DType::I64) return fail(call, "y must be I64");
  const auto* attrs = call.inst->attrs_as_ArgReduceAttrs();
  if (!attrs) return fail(call, "missing ArgReduceAttrs");
  AxisSplit s;
  ZERO_RETURN_IF_ERROR(split_axis(call, x, attrs->axis(), &s));
  if (s.n == 0) return fail(call, "cannot reduce an empty axis of " + tensor_shape_string(x));
  if (y.numel != s.outer * s.inner)
    return fail(call, "output " + tensor_shape_string(y) + " does not match reducing " + tensor_shape_string(x));
  *g = {s.outer, s.n, s.inner, attrs->select_last_index()};
  return Status();
}

Status cumsum_geometry(const KernelCall& call, CumSumGeom* g) {
  const Tensor &x = call.in[0], &y = call.out[0];
  if (x.dtype != y.dtype) return fail(call, "input and output dtypes differ");
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, x, y, "input and output"));
  const auto* attrs = call.inst->attrs_as_CumSumAttrs();
  if (!attrs) return fail(call, "missing CumSumAttrs");
  AxisSplit s;
  ZERO_RETURN_IF_ERROR(split_axis(call, x, attrs->axis(), &s));
  *g = {s.outer, s.n, s.inner, attrs->exclusive(), attrs->reverse()};
  return Status();
}

Status fill_value(const KernelCall& call, float* value) {
  const auto* attrs = call.inst->attrs_as_FillAttrs();
  *value = attrs ? attrs->value() : 0.f;
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
    return fail(call,
                "axis " + std::to_string(axis) + " out of range for " + data_role + " " + tensor_shape_string(data));
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
    return fail(call, std::string(y_role) + " " + tensor_shape_string(y) + " does not match gathering " + data_role +
                          " " + tensor_shape_string(data) + " along axis " + std::to_string(axis) + " with indices " +
                          tensor_shape_string(indices));
  for (int i = 0; i < ax; ++i) g->outer *= data.dims[i];
  g->n = data.dims[ax];
  for (int i = ax + 1; i < data.ndim; ++i) g->inner *= data.dims[i];
  g->q = indices.numel;
  return Status();
}

Status validate_gather(const KernelCall& call, GatherSplit* g) {
  const Tensor &data = call.in[0], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(gather_geometry(call, data, call.in[1], y, "data", "output", g));
  if (data.data == y.data && y.numel > 0) return fail(call, "gather cannot run in place");
  return Status();
}

Status gather_grad_geometry(const KernelCall& call, GatherSplit* g) {
  ZERO_RETURN_IF_ERROR(expect_f32(call, call.in[0], "dy"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, call.out[0], "ddata"));
  return gather_geometry(call, call.out[0], call.in[1], call.in[0], "ddata", "dy", g);
}

Status validate_gather_grad(const KernelCall& call, GatherSplit* g) {
  ZERO_RETURN_IF_ERROR(gather_grad_geometry(call, g));
  const Tensor &dy = call.in[0], &dd = call.out[0];
  if (dd.data == dy.data && dd.numel > 0) return fail(call, "gather grad cannot run in place");
  return Status();
}

// ---- GatherElements, ScatterElements, GatherND, ScatterND, TopK -----------

namespace {

// The dtype (F32 or I64) of data, the result and updates, which must agree.
Status expect_data_dtypes(const KernelCall& call, std::initializer_list<const Tensor*> ts) {
  const DType d = (*ts.begin())->dtype;
  if (d != DType::F32 && d != DType::I64) return fail(call, "data must be F32 or I64");
  for (const Tensor* t : ts)
    if (t->dtype != d) return fail(call, "data, updates and output dtypes differ");
  return Status();
}

// `out` may be `in` exactly, but must not overlap any of `others`.
Status expect_no_overlap(const KernelCall& call, const Tensor& out, std::initializer_list<const Tensor*> others,
                         const char* what) {
  for (const Tensor* t : others)
    if (overlaps(out, *t)) return fail(call, std::string(what) + " overlaps an input it does not replace");
  return Status();
}

Status expect_same_shape(const KernelCall& call, const Tensor& a, const Tensor& b, const char* what) {
  if (!same_shape(a, b))
    return fail(call,
                std::string(what) + " shapes differ: " + tensor_shape_string(a) + " vs " + tensor_shape_string(b));
  return Status();
}

// An exact alias or no overlap at all.
Status expect_alias_or_apart(const KernelCall& call, const Tensor& out, const Tensor& in, const char* what) {
  if (overlaps(out, in) && out.data != in.data) return fail(call, std::string(what) + " overlap partially");
  return Status();
}

}  // namespace

Status elements_geometry(const KernelCall& call, const Tensor& data, const Tensor& indices, const char* data_role,
                         ElementsGeom* g) {
  if (indices.dtype != DType::I64) return fail(call, "indices must be I64");
  int ax;
  const int64_t axis = axis_attr_or(call, 0);
  if (data.ndim < 1 || !normalize_axis(axis, data.ndim, &ax))
    return fail(call,
                "axis " + std::to_string(axis) + " out of range for " + data_role + " " + tensor_shape_string(data));
  bool ok = indices.ndim == data.ndim;
  for (int d = 0; ok && d < data.ndim; ++d) ok = d == ax || indices.dims[d] <= data.dims[d];
  if (!ok)
    return fail(call, "indices " + tensor_shape_string(indices) + " must have the rank of " + data_role + " " +
                          tensor_shape_string(data) + " and at most its sizes but along axis " + std::to_string(ax));
  int64_t is[kMaxRank], ds[kMaxRank];
  contiguous_strides(indices, is);
  contiguous_strides(data, ds);
  g->rows = Tensor();
  g->rows.ndim = data.ndim;
  for (int d = 0; d < data.ndim; ++d) {
    g->rows.dims[d] = d == ax ? 1 : indices.dims[d];
    g->rows.numel *= g->rows.dims[d];
    g->istrides[d] = d == ax ? 0 : is[d];
    g->dstrides[d] = d == ax ? 0 : ds[d];
  }
  if (indices.numel == 0) g->rows.numel = 0;
  g->len = indices.dims[ax];
  g->istep = is[ax];
  g->n = data.dims[ax];
  g->dstep = ds[ax];
  return Status();
}

Status validate_gather_elements(const KernelCall& call, ElementsGeom* g) {
  const Tensor &data = call.in[0], &indices = call.in[1], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(expect_data_dtypes(call, {&data, &y}));
  ZERO_RETURN_IF_ERROR(elements_geometry(call, data, indices, "data", g));
  ZERO_RETURN_IF_ERROR(expect_same_shape(call, indices, y, "indices and output"));
  return expect_no_overlap(call, y, {&data, &indices}, "output");
}

Status validate_scatter_elements(const KernelCall& call, ElementsGeom* g) {
  const Tensor &data = call.in[0], &indices = call.in[1], &updates = call.in[2], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(expect_data_dtypes(call, {&data, &updates, &y}));
  ZERO_RETURN_IF_ERROR(elements_geometry(call, data, indices, "data", g));
  ZERO_RETURN_IF_ERROR(expect_same_shape(call, indices, updates, "indices and updates"));
  ZERO_RETURN_IF_ERROR(expect_same_shape(call, data, y, "data and output"));
  ZERO_RETURN_IF_ERROR(expect_alias_or_apart(call, y, data, "data and output"));
  return expect_no_overlap(call, y, {&indices, &updates}, "output");
}

Status validate_gather_elements_grad(const KernelCall& call, ElementsGeom* g) {
  const Tensor &dy = call.in[0], &indices = call.in[1], &dd = call.out[0];
  ZERO_RETURN_IF_ERROR(expect_f32(call, dy, "dy"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, dd, "ddata"));
  ZERO_RETURN_IF_ERROR(elements_geometry(call, dd, indices, "ddata", g));
  ZERO_RETURN_IF_ERROR(expect_same_shape(call, indices, dy, "indices and dy"));
  return expect_no_overlap(call, dd, {&dy, &indices}, "ddata");
}

Status validate_scatter_elements_grad(const KernelCall& call, ElementsGeom* g) {
  const Tensor &dy = call.in[0], &indices = call.in[1], &dd = call.out[0];
  ZERO_RETURN_IF_ERROR(expect_f32(call, dy, "dy"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, dd, "ddata"));
  ZERO_RETURN_IF_ERROR(elements_geometry(call, dy, indices, "dy", g));
  ZERO_RETURN_IF_ERROR(expect_same_shape(call, dy, dd, "dy and ddata"));
  ZERO_RETURN_IF_ERROR(expect_alias_or_apart(call, dd, dy, "dy and ddata"));
  return expect_no_overlap(call, dd, {&indices}, "ddata");
}

Status nd_geometry(const KernelCall& call, const Tensor& data, const Tensor& indices, const Tensor& slices,
                   const char* data_role, const char* slices_role, NDGeom* g) {
  if (indices.dtype != DType::I64) return fail(call, "indices must be I64");
  const int64_t k = indices.ndim >= 1 ? indices.dims[indices.ndim - 1] : 0;
  if (k < 1 || k > data.ndim)
    return fail(call, "the last dimension of indices " + tensor_shape_string(indices) + " must be in [1, rank of " +
                          data_role + " " + tensor_shape_string(data) + "]");
  // slices' shape is indices.shape[:-1] + data.shape[k:].
  Tensor want;
  want.ndim = indices.ndim - 1 + data.ndim - int(k);
  bool ok = want.ndim <= kMaxRank;
  if (ok) {
    int j = 0;
    for (int i = 0; i + 1 < indices.ndim; ++i) want.dims[j++] = indices.dims[i];
    for (int i = int(k); i < data.ndim; ++i) want.dims[j++] = data.dims[i];
    ok = same_shape(want, slices);
  }
  if (!ok)
    return fail(call, std::string(slices_role) + " " + tensor_shape_string(slices) + " must be indices.shape[:-1] + " +
                          data_role + ".shape[k:] for indices " + tensor_shape_string(indices) + " and " + data_role +
                          " " + tensor_shape_string(data));
  int64_t ds[kMaxRank];
  contiguous_strides(data, ds);
  g->k = k;
  g->tuples = indices.numel / k;
  g->slice = 1;
  for (int i = int(k); i < data.ndim; ++i) g->slice *= data.dims[i];
  for (int i = 0; i < int(k); ++i) {
    g->dims[i] = data.dims[i];
    g->strides[i] = ds[i];
  }
  return Status();
}

Status validate_gather_nd(const KernelCall& call, NDGeom* g) {
  const Tensor &data = call.in[0], &indices = call.in[1], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(expect_data_dtypes(call, {&data, &y}));
  ZERO_RETURN_IF_ERROR(nd_geometry(call, data, indices, y, "data", "output", g));
  return expect_no_overlap(call, y, {&data, &indices}, "output");
}

Status validate_scatter_nd(const KernelCall& call, NDGeom* g) {
  const Tensor &data = call.in[0], &indices = call.in[1], &updates = call.in[2], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(expect_data_dtypes(call, {&data, &updates, &y}));
  ZERO_RETURN_IF_ERROR(nd_geometry(call, data, indices, updates, "data", "updates", g));
  ZERO_RETURN_IF_ERROR(expect_same_shape(call, data, y, "data and output"));
  ZERO_RETURN_IF_ERROR(expect_alias_or_apart(call, y, data, "data and output"));
  return expect_no_overlap(call, y, {&indices, &updates}, "output");
}

Status validate_gather_nd_grad(const KernelCall& call, NDGeom* g) {
  const Tensor &dy = call.in[0], &indices = call.in[1], &dd = call.out[0];
  ZERO_RETURN_IF_ERROR(expect_f32(call, dy, "dy"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, dd, "ddata"));
  ZERO_RETURN_IF_ERROR(nd_geometry(call, dd, indices, dy, "ddata", "dy", g));
  return expect_no_overlap(call, dd, {&dy, &indices}, "ddata");
}

Status validate_scatter_nd_grad(const KernelCall& call, NDGeom* g) {
  const Tensor &dy = call.in[0], &indices = call.in[1], &dd = call.out[0];
  ZERO_RETURN_IF_ERROR(expect_f32(call, dy, "dy"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, dd, "ddata"));
  // Only the slices' geometry matters; check it against a tensor of
  // indices.shape[:-1] + dy.shape[k:].
  const int64_t k = indices.ndim >= 1 ? indices.dims[indices.ndim - 1] : 0;
  Tensor slices;
  slices.ndim = indices.ndim - 1 + dy.ndim - int(k);
  if (k >= 1 && k <= dy.ndim && slices.ndim <= kMaxRank) {
    int j = 0;
    for (int i = 0; i + 1 < indices.ndim; ++i) slices.dims[j++] = indices.dims[i];
    for (int i = int(k); i < dy.ndim; ++i) slices.dims[j++] = dy.dims[i];
  }
  ZERO_RETURN_IF_ERROR(nd_geometry(call, dy, indices, slices, "dy", "the slices", g));
  ZERO_RETURN_IF_ERROR(expect_same_shape(call, dy, dd, "dy and ddata"));
  ZERO_RETURN_IF_ERROR(expect_alias_or_apart(call, dd, dy, "dy and ddata"));
  return expect_no_overlap(call, dd, {&indices}, "ddata");
}

Status validate_top_k(const KernelCall& call, TopKGeom* g) {
  const Tensor &x = call.in[0], &values = call.out[0], &indices = call.out[1];
  ZERO_RETURN_IF_ERROR(expect_f32(call, x, "x"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, values, "values"));
  if (indices.dtype != DType::I64) return fail(call, "indices must be I64");
  if (call.num_in > 1 && (call.in[1].dtype != DType::I64 || call.in[1].numel != 1))
    return fail(call, "k must be one I64 element");
  const auto* attrs = call.inst->attrs_as_TopKAttrs();
  if (!attrs) return fail(call, "missing TopKAttrs");
  int ax;
  if (x.ndim < 1 || !normalize_axis(attrs->axis(), x.ndim, &ax))
    return fail(call, "axis " + std::to_string(attrs->axis()) + " out of range for " + tensor_shape_string(x));
  Tensor want = x;
  want.dims[ax] = values.ndim == x.ndim ? values.dims[ax] : 0;
  if (!same_shape(want, values) || !same_shape(want, indices))
    return fail(call, "values " + tensor_shape_string(values) + " and indices " + tensor_shape_string(indices) +
                          " must be " + tensor_shape_string(x) + " with k along axis " + std::to_string(ax));
  if (want.dims[ax] < 1 || want.dims[ax] > x.dims[ax])
    return fail(call, "k = " + std::to_string(want.dims[ax]) + " must be in [1, " + std::to_string(x.dims[ax]) + "]");
  ZERO_RETURN_IF_ERROR(expect_no_overlap(call, values, {&x, &indices}, "values"));
  ZERO_RETURN_IF_ERROR(expect_no_overlap(call, indices, {&x}, "indices"));
  AxisSplit s;
  ZERO_RETURN_IF_ERROR(split_axis(call, x, ax, &s));
  *g = {s.outer, s.n, s.inner, want.dims[ax], attrs->largest()};
  return Status();
}

Status slice_geometry(const KernelCall& call, const Tensor& x, const Tensor& y, int64_t* strides, int64_t* base) {
  if (x.dtype != y.dtype) return fail(call, "input and output dtypes differ");
  const auto* attrs = call.inst->attrs_as_SliceAttrs();
  if (!attrs || !attrs->starts() || !attrs->steps()) return fail(call, "missing SliceAttrs (starts and steps)");
  if (x.ndim != y.ndim || int(attrs->starts()->size()) != x.ndim || int(attrs->steps()->size()) != x.ndim)
    return fail(call, "starts (" + std::to_string(attrs->starts()->size()) + ") and steps (" +
                          std::to_string(attrs->steps()->size()) + ") must give every dimension of " +
                          tensor_shape_string(x) + " -> " + tensor_shape_string(y));
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
    if (!shape_rules::slice_in_bounds(start, step, n, size))
      return fail(call, "dimension " + std::to_string(d) + ": start " + std::to_string(start) + " step " +
                            std::to_string(step) + " for " + std::to_string(n) + " elements leaves [0, " +
                            std::to_string(size) + ")");
    *base += start * xs[d];
  }
  if (y.numel == 0) *base = 0;
  return Status();
}

Status validate_slice(const KernelCall& call, SliceGeom* g) {
  const Tensor &x = call.in[0], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(slice_geometry(call, x, y, g->strides, &g->base));
  if (x.data == y.data && y.numel > 0 && !(g->base == 0 && x.numel == y.numel))
    return fail(call, "slice cannot run in place");
  return Status();
}

Status slice_grad_geometry(const KernelCall& call, int64_t* strides, int64_t* base) {
  ZERO_RETURN_IF_ERROR(expect_f32(call, call.in[0], "dy"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, call.out[0], "dx"));
  return slice_geometry(call, call.out[0], call.in[0], strides, base);
}

Status validate_slice_grad(const KernelCall& call, SliceGeom* g) {
  ZERO_RETURN_IF_ERROR(slice_grad_geometry(call, g->strides, &g->base));
  const Tensor &dy = call.in[0], &dx = call.out[0];
  if (dx.data == dy.data && dx.numel > 0) return fail(call, "slice grad cannot run in place");
  return Status();
}

Status validate_concat(const KernelCall& call, ConcatGeom* g) {
  const Tensor& y = call.out[0];
  const int64_t axis = axis_attr_or(call, 0);
  int ax;
  if (!normalize_axis(axis, y.ndim, &ax))
    return fail(call, "axis " + std::to_string(axis) + " out of range for output " + tensor_shape_string(y));
  int64_t total = 0;
  for (int k = 0; k < call.num_in; ++k) {
    const Tensor& x = call.in[k];
    if (x.dtype != y.dtype) return fail(call, "input " + std::to_string(k) + " and output dtypes differ");
    bool ok = x.ndim == y.ndim;
    for (int d = 0; ok && d < y.ndim; ++d) ok = d == ax || x.dims[d] == y.dims[d];
    if (!ok)
      return fail(call, "input " + std::to_string(k) + " " + tensor_shape_string(x) + " does not fit output " +
                            tensor_shape_string(y) + " along axis " + std::to_string(axis));
    if (x.numel > 0 && x.data == y.data) return fail(call, "concat cannot run in place");
    total += x.dims[ax];
  }
  if (total != y.dims[ax])
    return fail(call, "inputs add up to " + std::to_string(total) + " along axis " + std::to_string(axis) +
                          ", output has " + std::to_string(y.dims[ax]));
  g->axis = ax;
  g->outer = g->inner = 1;
  for (int d = 0; d < ax; ++d) g->outer *= y.dims[d];
  for (int d = ax + 1; d < y.ndim; ++d) g->inner *= y.dims[d];
  return Status();
}

Status where_geometry(const KernelCall& call, int64_t* sc, int64_t* sx, int64_t* sy) {
  const Tensor &c = call.in[0], &x = call.in[1], &y = call.in[2], &out = call.out[0];
  if (c.dtype != DType::I64) return fail(call, "cond must be I64");
  if (x.dtype != out.dtype || y.dtype != out.dtype) return fail(call, "x, y and output dtypes differ");
  if (!broadcast_strides(c, out, sc) || !broadcast_strides(x, out, sx) || !broadcast_strides(y, out, sy))
    return fail(call, "cannot broadcast " + tensor_shape_string(c) + ", " + tensor_shape_string(x) + " and " +
                          tensor_shape_string(y) + " to " + tensor_shape_string(out));
  // The output must be exactly the broadcast shape of the three operands.
  for (int d = 0; d < out.ndim; ++d) {
    int64_t want = 1;
    for (const Tensor* t : {&c, &x, &y}) {
      const int j = d - (out.ndim - t->ndim);
      if (j >= 0 && t->dims[j] != 1) want = t->dims[j];
    }
    if (want != out.dims[d])
      return fail(call, "output " + tensor_shape_string(out) + " is not the broadcast shape of " +
                            tensor_shape_string(c) + ", " + tensor_shape_string(x) + " and " + tensor_shape_string(y));
  }
  // Exact aliasing of the output with a full-size operand is an
  // elementwise read-before-write; partial overlaps are not supported.
  for (const Tensor* t : {&x, &y})
    if (t->data == out.data && t->numel != out.numel && out.numel > 0) return fail(call, "where cannot run in place");
  return Status();
}

Status layer_norm_split(const KernelCall& call, const Tensor& x, LayerNormSplit* s) {
  const auto* attrs = call.inst->attrs_as_LayerNormAttrs();
  if (!attrs) return fail(call, "missing LayerNormAttrs");
  int ax;
  if (!normalize_axis(attrs->axis(), x.ndim, &ax))
    return fail(call, "axis " + std::to_string(attrs->axis()) + " out of range for " + tensor_shape_string(x));
  for (int d = 0; d < ax; ++d) s->outer *= x.dims[d];
  for (int d = ax; d < x.ndim; ++d) s->inner *= x.dims[d];
  s->eps = attrs->epsilon();
  if (!(s->eps >= 0.f)) return fail(call, "epsilon must be >= 0");
  return Status();
}

Status validate_layer_norm(const KernelCall& call, LayerNormSplit* split) {
  const Tensor& x = call.in[0];
  ZERO_RETURN_IF_ERROR(expect_f32(call, x, "x"));
  ZERO_RETURN_IF_ERROR(layer_norm_split(call, x, split));
  const LayerNormSplit& s = *split;
  ZERO_RETURN_IF_ERROR(expect_numel(call, call.in[1], s.inner, "scale", "the normalized dimensions"));
  ZERO_RETURN_IF_ERROR(expect_numel(call, call.in[2], s.inner, "bias", "the normalized dimensions"));
  ZERO_RETURN_IF_ERROR(expect_numel(call, call.out[0], x.numel, "y", "x's shape"));
  if (call.num_out > 1)
    ZERO_RETURN_IF_ERROR(expect_numel(call, call.out[1], s.outer, "mean", "the leading dimensions"));
  if (call.num_out > 2)
    ZERO_RETURN_IF_ERROR(expect_numel(call, call.out[2], s.outer, "inv_std_dev", "the leading dimensions"));
  return Status();
}

Status validate_layer_norm_grad(const KernelCall& call, LayerNormSplit* split) {
  const Tensor &dy = call.in[0], &x = call.in[1];
  ZERO_RETURN_IF_ERROR(expect_f32(call, x, "x"));
  ZERO_RETURN_IF_ERROR(layer_norm_split(call, x, split));
  const LayerNormSplit& s = *split;
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

}  // namespace zero
