// Operand checks and geometry shared by the CPU and CUDA backends: Conv, pooling and BatchNormalization (2-D NCHW).
#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <string>

#include "kernel_checks.h"
#include "zero/shape_rules.h"

namespace zero {

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

// Output size along one axis, -1 when no window fits (zero/shape_rules.h).
int64_t window_out(int64_t in, int64_t pad0, int64_t pad1, int64_t k, int64_t d, int64_t s, bool ceil = false) {
  return shape_rules::window_output_size(in, pad0, pad1, k, d, s, ceil);
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
  if (t.ndim != 4) return fail(call, std::string(role) + " must be 4-D (NCHW), got " + tensor_shape_string(t));
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
  const std::string desc = std::string(xr) + " " + tensor_shape_string(x) + " and " + wr + " " +
                           tensor_shape_string(w) + " (strides " + list_string(win.s, 2) + ", pads " +
                           list_string(win.p, 4) + ", dilations " + list_string(win.d, 2) + ", group " +
                           std::to_string(g->group) + ")";
  if (g->c % g->group != 0 || g->m % g->group != 0)
    return fail(call, "group " + std::to_string(g->group) + " does not divide the channels of " + desc);
  if (w.dims[1] != g->c / g->group)
    return fail(call,
                std::string(wr) + " dimension 1 must be C/group = " + std::to_string(g->c / g->group) + " for " + desc);
  if (win.k[0] < 1 || win.k[1] < 1) return fail(call, "empty kernel in " + desc);
  g->oh = window_out(g->h, win.p[0], win.p[2], win.k[0], win.d[0], win.s[0]);
  g->ow = window_out(g->w, win.p[1], win.p[3], win.k[1], win.d[1], win.s[1]);
  if (g->oh < 1 || g->ow < 1) return fail(call, "the dilated kernel is larger than the padded input for " + desc);
  const int64_t want[4] = {g->n, g->m, g->oh, g->ow};
  for (int i = 0; i < 4; ++i)
    if (y.dims[i] != want[i])
      return fail(call, std::string(yr) + " " + tensor_shape_string(y) + " does not match the convolution of " + desc +
                            ": expected " + list_string(want, 4));
  if (!fits_int(g->kdim()) || !fits_int(g->m) || g->plane() > 0x7fffffff)
    return fail(call, "dimensions exceed BLAS int range");
  return Status();
}

Status validate_conv(const KernelCall& call, ConvGeom* g) {
  const Tensor &x = call.in[0], &w = call.in[1], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(conv_geometry(call, x, w, y, "x", "w", "y", g));
  if (call.num_in > 2) {
    const Tensor& b = call.in[2];
    ZERO_RETURN_IF_ERROR(expect_f32(call, b, "b"));
    if (b.ndim != 1 || b.dims[0] != g->m)
      return fail(call,
                  "b " + tensor_shape_string(b) + " must be [" + std::to_string(g->m) + "] (w's output channels)");
  }
  for (int k = 0; k < call.num_in; ++k)
    if (overlaps(call.in[k], y)) return fail(call, "y cannot overlap an input (not in place)");
  return Status();
}

Status validate_conv_grad_input(const KernelCall& call, ConvGeom* g) {
  const Tensor &dy = call.in[0], &w = call.in[1], &dx = call.out[0];
  ZERO_RETURN_IF_ERROR(conv_geometry(call, dx, w, dy, "dx", "w", "dy", g));
  if (overlaps(dx, dy) || overlaps(dx, w)) return fail(call, "dx cannot overlap an input (not in place)");
  return Status();
}

Status validate_conv_grad_weight(const KernelCall& call, ConvGeom* g) {
  const Tensor &dy = call.in[0], &x = call.in[1], &dw = call.out[0];
  ZERO_RETURN_IF_ERROR(conv_geometry(call, x, dw, dy, "x", "dw", "dy", g));
  if (overlaps(dw, dy) || overlaps(dw, x)) return fail(call, "dw cannot overlap an input (not in place)");
  return Status();
}

kernel_scratch::ConvDims conv_dims(const ConvGeom& g) {
  return {g.n, g.c, g.h, g.w, g.m, g.oh, g.ow, g.group, g.win.k[0], g.win.k[1]};
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
      return fail(call,
                  "pads " + list_string(win.p, 4) + " must be smaller than kernel_shape " + list_string(win.k, 2));
  g->planes = x.dims[0] * x.dims[1], g->h = x.dims[2], g->w = x.dims[3];
  g->oh = window_out(g->h, win.p[0], win.p[2], win.k[0], 1, win.s[0], g->ceil_mode);
  g->ow = window_out(g->w, win.p[1], win.p[3], win.k[1], 1, win.s[1], g->ceil_mode);
  const std::string desc = std::string(xr) + " " + tensor_shape_string(x) + " (kernel_shape " + list_string(win.k, 2) +
                           ", strides " + list_string(win.s, 2) + ", pads " + list_string(win.p, 4) +
                           (g->ceil_mode ? ", ceil_mode" : "") + ")";
  if (g->oh < 1 || g->ow < 1) return fail(call, "the kernel is larger than the padded input for " + desc);
  const int64_t want[4] = {x.dims[0], x.dims[1], g->oh, g->ow};
  for (int i = 0; i < 4; ++i)
    if (y.dims[i] != want[i])
      return fail(call, std::string(yr) + " " + tensor_shape_string(y) + " does not match pooling " + desc +
                            ": expected " + list_string(want, 4));
  return Status();
}

Status validate_max_pool(const KernelCall& call, PoolGeom* g) {
  ZERO_RETURN_IF_ERROR(pool_geometry(call, call.in[0], call.out[0], "x", "y", g));
  if (call.num_out > 1) {
    const Tensor& am = call.out[1];
    if (am.dtype != DType::I64) return fail(call, "argmax must be I64");
    if (!same_shape(am, call.out[0]))
      return fail(call,
                  "argmax " + tensor_shape_string(am) + " must have y's shape " + tensor_shape_string(call.out[0]));
  }
  for (int k = 0; k < call.num_out; ++k)
    if (overlaps(call.out[k], call.in[0])) return fail(call, "outputs cannot overlap x (not in place)");
  if (call.num_out > 1 && overlaps(call.out[0], call.out[1])) return fail(call, "y and argmax overlap");
  return Status();
}

Status validate_max_pool_grad(const KernelCall& call, PoolGeom* g) {
  const Tensor &dy = call.in[0], &am = call.in[1], &dx = call.out[0];
  ZERO_RETURN_IF_ERROR(pool_geometry(call, dx, dy, "dx", "dy", g));
  if (am.dtype != DType::I64) return fail(call, "argmax must be I64");
  if (!same_shape(am, dy))
    return fail(call, "argmax " + tensor_shape_string(am) + " must have dy's shape " + tensor_shape_string(dy));
  if (overlaps(dx, dy) || overlaps(dx, am)) return fail(call, "dx cannot overlap an input (not in place)");
  return Status();
}

Status validate_average_pool(const KernelCall& call, PoolGeom* g) {
  ZERO_RETURN_IF_ERROR(pool_geometry(call, call.in[0], call.out[0], "x", "y", g));
  if (overlaps(call.in[0], call.out[0])) return fail(call, "y cannot overlap x (not in place)");
  return Status();
}

Status validate_average_pool_grad(const KernelCall& call, PoolGeom* g) {
  ZERO_RETURN_IF_ERROR(pool_geometry(call, call.out[0], call.in[0], "dx", "dy", g));
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
  if (x.ndim < 2) return fail(call, "x must be at least 2-D ([N, C, ...]), got " + tensor_shape_string(x));
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

Status validate_batch_norm(const KernelCall& call, BatchNormGeom* geom) {
  const Tensor& x = call.in[0];
  ZERO_RETURN_IF_ERROR(batch_norm_geometry(call, x, geom));
  const BatchNormGeom& g = *geom;
  if (g.count() < 2)
    return fail(call, "x " + tensor_shape_string(x) + " has " + std::to_string(g.count()) +
                          " value(s) per channel; training-mode batch normalization needs more than 1");
  const char* roles[] = {"x", "scale", "bias", "running_mean", "running_var"};
  for (int k = 1; k < 5; ++k) ZERO_RETURN_IF_ERROR(expect_numel(call, call.in[k], g.c, roles[k], "x's channels"));
  ZERO_RETURN_IF_ERROR(expect_numel(call, call.out[0], x.numel, "y", "x's shape"));
  const char* out_roles[] = {"y", "saved_mean", "saved_inv_std"};
  for (int k = 1; k < call.num_out; ++k)
    ZERO_RETURN_IF_ERROR(expect_numel(call, call.out[k], g.c, out_roles[k], "x's channels"));
  // y may be x exactly; the running statistics are updated in place.
  const Tensor* t[] = {&x,
                       &call.in[1],
                       &call.in[2],
                       &call.in[3],
                       &call.in[4],
                       &call.out[0],
                       call.num_out > 1 ? &call.out[1] : nullptr,
                       call.num_out > 2 ? &call.out[2] : nullptr};
  const char* names[] = {"x", "scale", "bias", "running_mean", "running_var", "y", "saved_mean", "saved_inv_std"};
  return check_disjoint(call, t, names, 8, 3, 5, {0});
}

Status validate_batch_norm_grad(const KernelCall& call, BatchNormGeom* geom) {
  const Tensor &dy = call.in[0], &x = call.in[1];
  ZERO_RETURN_IF_ERROR(batch_norm_geometry(call, x, geom));
  const BatchNormGeom& g = *geom;
  ZERO_RETURN_IF_ERROR(expect_numel(call, dy, x.numel, "dy", "x's shape"));
  ZERO_RETURN_IF_ERROR(expect_numel(call, call.in[2], g.c, "scale", "x's channels"));
  ZERO_RETURN_IF_ERROR(expect_numel(call, call.in[3], g.c, "saved_mean", "x's channels"));
  ZERO_RETURN_IF_ERROR(expect_numel(call, call.in[4], g.c, "saved_inv_std", "x's channels"));
  ZERO_RETURN_IF_ERROR(expect_numel(call, call.out[0], x.numel, "dx", "x's shape"));
  if (call.num_out > 1) ZERO_RETURN_IF_ERROR(expect_numel(call, call.out[1], g.c, "dscale", "x's channels"));
  if (call.num_out > 2) ZERO_RETURN_IF_ERROR(expect_numel(call, call.out[2], g.c, "dbias", "x's channels"));
  // dx may be dy or x exactly.
  const Tensor* t[] = {&dy,
                       &x,
                       &call.in[2],
                       &call.in[3],
                       &call.in[4],
                       &call.out[0],
                       call.num_out > 1 ? &call.out[1] : nullptr,
                       call.num_out > 2 ? &call.out[2] : nullptr};
  const char* names[] = {"dy", "x", "scale", "saved_mean", "saved_inv_std", "dx", "dscale", "dbias"};
  return check_disjoint(call, t, names, 8, 5, 5, {0, 1});
}

}  // namespace zero
