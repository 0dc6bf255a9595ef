// Operand checks and geometry shared by the CPU and CUDA backends: Conv and pooling (1-D to 3-D) and
// BatchNormalization.
#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <string>

#include "kernel_checks.h"
#include "zero/shape_rules.h"

namespace zero {

// ---- Conv, pooling (1-D to 3-D), BatchNormalization (F32) -----------------

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

// The last `rank` of kMaxSpatial entries: a 3-D geometry's list as the
// attribute spells it.
std::string axes_string(const int64_t* v, int rank) { return list_string(v + kMaxSpatial - rank, rank); }
std::string pads_string(const int64_t* p, int rank) {
  int64_t spelled[2 * kMaxSpatial];
  for (int i = 0; i < rank; ++i)
    spelled[i] = p[kMaxSpatial - rank + i], spelled[rank + i] = p[2 * kMaxSpatial - rank + i];
  return list_string(spelled, 2 * rank);
}

// Output size along one axis, -1 when no window fits (zero/shape_rules.h).
int64_t window_out(int64_t in, int64_t pad0, int64_t pad1, int64_t k, int64_t d, int64_t s, bool ceil = false) {
  return shape_rules::window_output_size(in, pad0, pad1, k, d, s, ceil);
}

// Reads an optional attribute list of `per_axis` * rank entries each >=
// `min` into a 3-D geometry's `out` (absent or empty keeps the defaults):
// the entries of each group of `rank` go to the last `rank` axes.
Status read_axes(const KernelCall& call, const flatbuffers::Vector<int64_t>* v, int rank, int per_axis, int64_t min,
                 const char* name, int64_t* out) {
  if (!v || v->size() == 0) return Status();
  const int n = per_axis * rank;
  if (int(v->size()) != n)
    return fail(call, std::string(name) + " must have " + std::to_string(n) + " entries (" + std::to_string(rank) +
                          "-D), got " + std::to_string(v->size()));
  for (int i = 0; i < n; ++i) {
    if (v->Get(i) < min || v->Get(i) > (int64_t(1) << 32))
      return fail(call, std::string(name) + " " + list_string(v->data(), n) + " must be >= " + std::to_string(min));
    out[(i / rank) * kMaxSpatial + kMaxSpatial - rank + i % rank] = v->Get(i);
  }
  return Status();
}

// t is F32 [N, C, ...] with 1 to 3 spatial dimensions.
Status expect_spatial(const KernelCall& call, const Tensor& t, const char* role) {
  ZERO_RETURN_IF_ERROR(expect_f32(call, t, role));
  if (t.ndim < 3 || t.ndim > 2 + kMaxSpatial)
    return fail(call, std::string(role) + " must be 3-D to 5-D (NCL, NCHW or NCDHW), got " + tensor_shape_string(t));
  return Status();
}

// The operands of one window op share their rank.
Status expect_same_rank(const KernelCall& call, const Tensor& a, const Tensor& b, const char* ar, const char* br) {
  if (a.ndim != b.ndim)
    return fail(call, std::string(br) + " " + tensor_shape_string(b) + " must have the rank of " + ar + " " +
                          tensor_shape_string(a));
  return Status();
}

// Whether the product of kMaxSpatial sizes fits an int, checked factor by
// factor so that it cannot overflow (sizes of an empty tensor are otherwise
// unbounded). Keeps the window arithmetic and the BLAS dimensions in range.
bool volume_fits_int(const int64_t* d) {
  int64_t v = 1;
  for (int i = 0; i < kMaxSpatial; ++i) {
    if (d[i] < 0 || (d[i] > 0 && v > 0x7fffffff / d[i])) return false;
    v *= d[i];
  }
  return true;
}

// t's spatial dimensions as the last of kMaxSpatial (the others 1).
void spatial_dims(const Tensor& t, int64_t* out) {
  const int rank = t.ndim - 2;
  for (int i = 0; i < kMaxSpatial; ++i) out[i] = i < kMaxSpatial - rank ? 1 : t.dims[2 + i - (kMaxSpatial - rank)];
}

}  // namespace

// Checks x [N,C,...] * w [M,C/group,k...] -> y [N,M,...] against ConvAttrs;
// the roles name the operands as the instruction has them (x or dx, w or
// dw, y or dy).
Status conv_geometry(const KernelCall& call, const Tensor& x, const Tensor& w, const Tensor& y, const char* xr,
                     const char* wr, const char* yr, ConvGeom* g) {
  ZERO_RETURN_IF_ERROR(expect_spatial(call, x, xr));
  ZERO_RETURN_IF_ERROR(expect_spatial(call, w, wr));
  ZERO_RETURN_IF_ERROR(expect_spatial(call, y, yr));
  ZERO_RETURN_IF_ERROR(expect_same_rank(call, x, w, xr, wr));
  ZERO_RETURN_IF_ERROR(expect_same_rank(call, x, y, xr, yr));
  Window& win = g->win;
  const int rank = win.rank = x.ndim - 2;
  if (const auto* a = call.inst->attrs_as_ConvAttrs()) {
    ZERO_RETURN_IF_ERROR(read_axes(call, a->strides(), rank, 1, 1, "strides", win.s));
    ZERO_RETURN_IF_ERROR(read_axes(call, a->pads(), rank, 2, 0, "pads", win.p));
    ZERO_RETURN_IF_ERROR(read_axes(call, a->dilations(), rank, 1, 1, "dilations", win.d));
    g->group = a->group();
    if (g->group < 1) return fail(call, "group " + std::to_string(g->group) + " must be >= 1");
  }
  g->n = x.dims[0], g->c = x.dims[1];
  g->m = w.dims[0];
  spatial_dims(x, g->in);
  spatial_dims(w, win.k);
  const std::string desc = std::string(xr) + " " + tensor_shape_string(x) + " and " + wr + " " +
                           tensor_shape_string(w) + " (strides " + axes_string(win.s, rank) + ", pads " +
                           pads_string(win.p, rank) + ", dilations " + axes_string(win.d, rank) + ", group " +
                           std::to_string(g->group) + ")";
  if (g->c % g->group != 0 || g->m % g->group != 0)
    return fail(call, "group " + std::to_string(g->group) + " does not divide the channels of " + desc);
  if (w.dims[1] != g->c / g->group)
    return fail(call,
                std::string(wr) + " dimension 1 must be C/group = " + std::to_string(g->c / g->group) + " for " + desc);
  for (int i = 0; i < kMaxSpatial; ++i)
    if (win.k[i] < 1) return fail(call, "empty kernel in " + desc);
  if (!volume_fits_int(g->in) || !volume_fits_int(win.k) || !fits_int(g->c) || !fits_int(g->m))
    return fail(call, "dimensions exceed BLAS int range");
  int64_t want[2 + kMaxSpatial] = {g->n, g->m};
  for (int i = 0; i < kMaxSpatial; ++i) {
    g->out[i] = window_out(g->in[i], win.p[i], win.p[kMaxSpatial + i], win.k[i], win.d[i], win.s[i]);
    if (g->out[i] < 1) return fail(call, "the dilated kernel is larger than the padded input for " + desc);
    if (i >= kMaxSpatial - rank) want[2 + i - (kMaxSpatial - rank)] = g->out[i];
  }
  for (int i = 0; i < y.ndim; ++i)
    if (y.dims[i] != want[i])
      return fail(call, std::string(yr) + " " + tensor_shape_string(y) + " does not match the convolution of " + desc +
                            ": expected " + list_string(want, y.ndim));
  if (!fits_int(g->kdim()) || !volume_fits_int(g->out)) return fail(call, "dimensions exceed BLAS int range");
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
  return {g.n, g.c, g.in_plane(), g.m, g.plane(), g.group, g.win.volume()};
}

// Checks x [N,C,...] pooled to y [N,C,...] against PoolAttrs.
Status pool_geometry(const KernelCall& call, const Tensor& x, const Tensor& y, const char* xr, const char* yr,
                     PoolGeom* g) {
  ZERO_RETURN_IF_ERROR(expect_spatial(call, x, xr));
  ZERO_RETURN_IF_ERROR(expect_spatial(call, y, yr));
  ZERO_RETURN_IF_ERROR(expect_same_rank(call, x, y, xr, yr));
  const auto* a = call.inst->attrs_as_PoolAttrs();
  if (!a) return fail(call, "missing PoolAttrs");
  Window& win = g->win;
  const int rank = win.rank = x.ndim - 2;
  if (!a->kernel_shape() || int(a->kernel_shape()->size()) != rank)
    return fail(call, "kernel_shape must have " + std::to_string(rank) + " entries (" + std::to_string(rank) + "-D)");
  ZERO_RETURN_IF_ERROR(read_axes(call, a->kernel_shape(), rank, 1, 1, "kernel_shape", win.k));
  ZERO_RETURN_IF_ERROR(read_axes(call, a->strides(), rank, 1, 1, "strides", win.s));
  ZERO_RETURN_IF_ERROR(read_axes(call, a->pads(), rank, 2, 0, "pads", win.p));
  ZERO_RETURN_IF_ERROR(read_axes(call, a->dilations(), rank, 1, 1, "dilations", win.d));
  g->include_pad = a->count_include_pad();
  g->ceil_mode = a->ceil_mode();
  // Pads below the kernel keep every undilated window on x (in ceil mode
  // too: the last window starts inside x or the begin padding); dilated
  // windows are checked tap by tap below.
  for (int i = 0; i < 2 * kMaxSpatial; ++i)
    if (win.p[i] >= win.k[i % kMaxSpatial])
      return fail(
          call, "pads " + pads_string(win.p, rank) + " must be smaller than kernel_shape " + axes_string(win.k, rank));
  g->planes = x.dims[0] * x.dims[1];
  spatial_dims(x, g->in);
  if (!volume_fits_int(g->in) || !volume_fits_int(win.k))
    return fail(call, "spatial sizes " + axes_string(g->in, rank) + " and kernel_shape " + axes_string(win.k, rank) +
                          " exceed int range");
  const std::string desc = std::string(xr) + " " + tensor_shape_string(x) + " (kernel_shape " +
                           axes_string(win.k, rank) + ", strides " + axes_string(win.s, rank) + ", pads " +
                           pads_string(win.p, rank) +
                           (a->dilations() && a->dilations()->size() ? ", dilations " + axes_string(win.d, rank) : "") +
                           (g->ceil_mode ? ", ceil_mode" : "") + ")";
  int64_t want[2 + kMaxSpatial] = {x.dims[0], x.dims[1]};
  for (int i = 0; i < kMaxSpatial; ++i) {
    g->out[i] = window_out(g->in[i], win.p[i], win.p[kMaxSpatial + i], win.k[i], win.d[i], win.s[i], g->ceil_mode);
    if (g->out[i] < 1) return fail(call, "the kernel is larger than the padded input for " + desc);
    if (i >= kMaxSpatial - rank) want[2 + i - (kMaxSpatial - rank)] = g->out[i];
  }
  if (!volume_fits_int(g->out)) return fail(call, "the pooled size exceeds int range for " + desc);
  for (int i = 0; i < y.ndim; ++i)
    if (y.dims[i] != want[i])
      return fail(call, std::string(yr) + " " + tensor_shape_string(y) + " does not match pooling " + desc +
                            ": expected " + list_string(want, y.ndim));
  // A dilated window may step over x; y's elements bound this loop.
  for (int i = 0; i < kMaxSpatial && y.numel > 0; ++i)
    if (win.d[i] > 1)
      for (int64_t o = 0; o < g->out[i]; ++o) {
        const sliding_window::Taps t = sliding_window::window_taps(win, i, g->in[i], o);
        if (t.j1 == t.j0)
          return fail(call, "output position " + std::to_string(o) + " of spatial axis " +
                                std::to_string(i - (kMaxSpatial - rank)) + " has a window outside " + desc);
      }
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
