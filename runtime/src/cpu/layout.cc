// CPU kernels: reductions, layout (Transpose, Expand, Fill) and indexing (Gather, Slice, Concat, Where,
// GatherElements, ScatterElements, GatherND, ScatterND, TopK). Each kernel's
// prepare checks its operands at load (the shared checks of kernel_checks.h) and keeps the geometry its execute runs
// from.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "backend.h"
#include "cpu/broadcast.h"
#include "cpu/kernels.h"
#include "kernel_checks.h"
#include "zero/index_ops.h"
#include "zero/reduce_ops.h"

namespace zero {
namespace {

// ---- reductions, layout --------------------------------------------------

struct ReduceState {
  int64_t out_strides[kMaxRank];  // each input element's output index: the input's with reduced dims dropped
  int64_t out_numel, count;
};

Status prepare_reduce(const KernelCall& call, ReduceState* s) {
  const Tensor& x = call.in[0];
  bool reduced[kMaxRank];
  ZERO_RETURN_IF_ERROR(reduce_geometry(call, reduced, &s->out_numel, &s->count));
  int64_t stride = 1;
  for (int i = x.ndim - 1; i >= 0; --i) {
    s->out_strides[i] = reduced[i] ? 0 : stride;
    if (!reduced[i]) stride *= x.dims[i];
  }
  return Status();
}

size_t reduce_scratch_bytes(const ReduceState& s) { return size_t(kernel_scratch::cpu_reduce_bytes(s.out_numel)); }

// Each output's elements in input order (zero/reduce_ops.h).
template <reduce::Kind kKind>
Status reduce_impl(const KernelContext& ctx, const KernelCall& call, const ReduceState& s) {
  const Tensor &x = call.in[0], &y = call.out[0];
  double* acc = static_cast<double*>(ctx.scratch);
  std::fill(acc, acc + s.out_numel, reduce::init(kKind));
  const float* px = x.f32();
  int64_t zero[kMaxRank] = {};
  for_each_broadcast(x, s.out_strides, zero, [&](int64_t i, int64_t o, int64_t) {
    acc[o] = reduce::combine(kKind, acc[o], reduce::load(kKind, px[i]));
  });
  float* py = y.f32();
  for (int64_t o = 0; o < s.out_numel; ++o) py[o] = reduce::finish(kKind, acc[o], s.count);
  return Status();
}

template <class T>
void strided_copy(const Tensor& shape, const int64_t* src_strides, const T* src, T* dst) {
  int64_t zero[kMaxRank] = {};
  for_each_broadcast(shape, src_strides, zero, [&](int64_t o, int64_t i, int64_t) { dst[o] = src[i]; });
}

// dst[o] = src[index given by src_strides] for each element of `shape`, any dtype.
void strided_copy_any(const Tensor& shape, const int64_t* src_strides, const Tensor& src, Tensor& dst) {
  if (src.dtype == DType::I64)
    strided_copy(shape, src_strides, src.i64(), dst.i64());
  else
    strided_copy(shape, src_strides, src.f32(), dst.f32());
}

// Strides into x per dimension of y (Transpose, Expand).
struct SourceStrides {
  int64_t s[kMaxRank];
};

Status prepare_transpose(const KernelCall& call, SourceStrides* g) { return transpose_geometry(call, g->s); }
Status prepare_expand(const KernelCall& call, SourceStrides* g) { return expand_geometry(call, g->s); }

Status strided_copy_kernel(const KernelContext&, const KernelCall& call, const SourceStrides& g) {
  strided_copy_any(call.out[0], g.s, call.in[0], call.out[0]);
  return Status();
}

Status fill(const KernelContext&, const KernelCall& call, const float& v) {
  const Tensor& y = call.out[0];
  if (y.dtype == DType::F32)
    std::fill(y.f32(), y.f32() + y.numel, v);
  else
    std::fill(y.i64(), y.i64() + y.numel, int64_t(v));
  return Status();
}

// ---- ArgMax, ArgMin, CumSum ----------------------------------------------

// The first (or last) index of the extreme of each row; NaN counts as the
// extreme (numpy's argmax, torch.argmax).
template <bool kMax>
Status arg_reduce(const KernelContext&, const KernelCall& call, const ArgReduceGeom& g) {
  const float* px = call.in[0].f32();
  int64_t* py = call.out[0].i64();
  for (int64_t o = 0; o < g.outer; ++o)
    for (int64_t i = 0; i < g.inner; ++i) {
      const float* row = px + o * g.n * g.inner + i;
      int64_t best = 0;
      float b = row[0];
      for (int64_t k = 1; k < g.n && !std::isnan(b); ++k) {
        const float v = row[k * g.inner];
        if (std::isnan(v) || (kMax ? v > b : v < b) || (g.last && v == b)) best = k, b = v;
      }
      py[o * g.inner + i] = best;
    }
  return Status();
}

template <class T, class Acc>
void cumsum_rows(const T* px, T* py, const CumSumGeom& g) {
  for (int64_t o = 0; o < g.outer; ++o)
    for (int64_t i = 0; i < g.inner; ++i) {
      Acc acc = 0;
      for (int64_t j = 0; j < g.n; ++j) {
        const int64_t k = g.reverse ? g.n - 1 - j : j;
        const int64_t at = (o * g.n + k) * g.inner + i;
        const T v = px[at];
        if (!g.exclusive) acc += v;
        py[at] = T(acc);
        if (g.exclusive) acc += v;
      }
    }
}

// Float sums accumulate in double, as the reductions.
Status cumsum(const KernelContext&, const KernelCall& call, const CumSumGeom& g) {
  if (call.in[0].dtype == DType::I64)
    cumsum_rows<int64_t, int64_t>(call.in[0].i64(), call.out[0].i64(), g);
  else
    cumsum_rows<float, double>(call.in[0].f32(), call.out[0].f32(), g);
  return Status();
}

// ---- Gather, Slice, Concat, Where ----------------------------------------
//
// Their prepares (validate_*, kernel_checks.h) check shapes, dtypes and
// attributes; the kernels check only what the data decides (index values).

// Normalized index or an error for one out of [-n, n).
Status gather_index(const KernelCall& call, int64_t raw, int64_t n, int64_t* out) {
  if (raw < -n || raw >= n)
    return fail_data(
        call, "index " + std::to_string(raw) + " out of range [" + std::to_string(-n) + ", " + std::to_string(n) + ")");
  *out = raw < 0 ? raw + n : raw;
  return Status();
}

size_t gather_scratch_bytes(const GatherSplit& g) { return size_t(kernel_scratch::cpu_gather_bytes(g.q)); }

Status gather(const KernelContext& ctx, const KernelCall& call, const GatherSplit& g) {
  const Tensor &data = call.in[0], &indices = call.in[1], &y = call.out[0];
  const int64_t* pi = indices.i64();
  int64_t* idx = static_cast<int64_t*>(ctx.scratch);
  for (int64_t k = 0; k < g.q; ++k) ZERO_RETURN_IF_ERROR(gather_index(call, pi[k], g.n, &idx[k]));
  const size_t es = dtype_size(data.dtype), row = size_t(g.inner) * es;
  const uint8_t* src = static_cast<const uint8_t*>(data.data);
  uint8_t* dst = static_cast<uint8_t*>(y.data);
  for (int64_t o = 0; o < g.outer; ++o)
    for (int64_t k = 0; k < g.q; ++k)
      std::memcpy(dst + size_t(o * g.q + k) * row, src + size_t(o * g.n + idx[k]) * row, row);
  return Status();
}

Status gather_grad(const KernelContext& ctx, const KernelCall& call, const GatherSplit& g) {
  const Tensor &dy = call.in[0], &indices = call.in[1], &dd = call.out[0];
  const int64_t* pi = indices.i64();
  int64_t* idx = static_cast<int64_t*>(ctx.scratch);
  for (int64_t k = 0; k < g.q; ++k) ZERO_RETURN_IF_ERROR(gather_index(call, pi[k], g.n, &idx[k]));
  const float* pdy = dy.f32();
  float* pd = dd.f32();
  std::fill(pd, pd + dd.numel, 0.f);
  // Repeated indices accumulate, in index order (deterministic).
  for (int64_t o = 0; o < g.outer; ++o)
    for (int64_t k = 0; k < g.q; ++k) {
      const float* s = pdy + (o * g.q + k) * g.inner;
      float* d = pd + (o * g.n + idx[k]) * g.inner;
      for (int64_t i = 0; i < g.inner; ++i) d[i] += s[i];
    }
  return Status();
}

Status slice(const KernelContext&, const KernelCall& call, const SliceGeom& g) {
  const Tensor &x = call.in[0], &y = call.out[0];
  const int64_t *strides = g.strides, base = g.base;
  int64_t zero[kMaxRank] = {};
  if (x.dtype == DType::I64) {
    const int64_t* px = x.i64() + base;
    int64_t* py = y.i64();
    for_each_broadcast(y, strides, zero, [&](int64_t o, int64_t i, int64_t) { py[o] = px[i]; });
  } else {
    const float* px = x.f32() + base;
    float* py = y.f32();
    for_each_broadcast(y, strides, zero, [&](int64_t o, int64_t i, int64_t) { py[o] = px[i]; });
  }
  return Status();
}

Status slice_grad(const KernelContext&, const KernelCall& call, const SliceGeom& g) {
  const Tensor &dy = call.in[0], &dx = call.out[0];
  const int64_t *strides = g.strides, base = g.base;
  float* pdx = dx.f32();
  std::fill(pdx, pdx + dx.numel, 0.f);
  const float* pdy = dy.f32();
  float* at = pdx + base;
  int64_t zero[kMaxRank] = {};
  // Positive or negative steps never revisit an element, so plain stores.
  for_each_broadcast(dy, strides, zero, [&](int64_t o, int64_t i, int64_t) { at[i] = pdy[o]; });
  return Status();
}

Status concat(const KernelContext&, const KernelCall& call, const ConcatGeom& g) {
  const Tensor& y = call.out[0];
  const int ax = g.axis;
  const int64_t outer = g.outer, inner = g.inner;
  const size_t es = dtype_size(y.dtype), out_row = size_t(y.dims[ax] * inner) * es;
  uint8_t* dst = static_cast<uint8_t*>(y.data);
  size_t at = 0;  // byte offset of this input's block within an output row
  for (int k = 0; k < call.num_in; ++k) {
    const Tensor& x = call.in[k];
    const size_t row = size_t(x.dims[ax] * inner) * es;
    const uint8_t* src = static_cast<const uint8_t*>(x.data);
    if (row > 0)
      for (int64_t o = 0; o < outer; ++o) std::memcpy(dst + size_t(o) * out_row + at, src + size_t(o) * row, row);
    at += row;
  }
  return Status();
}

template <class T>
void where_loop(const Tensor& out, const int64_t* pc, const T* px, const T* py, T* po, const int64_t* sc,
                const int64_t* sx, const int64_t* sy) {
  if (out.numel == 0) return;
  int64_t idx[kMaxRank] = {};
  int64_t ic = 0, ix = 0, iy = 0;
  for (int64_t o = 0; o < out.numel; ++o) {
    po[o] = pc[ic] != 0 ? px[ix] : py[iy];
    for (int d = out.ndim - 1; d >= 0; --d) {
      ic += sc[d];
      ix += sx[d];
      iy += sy[d];
      if (++idx[d] < out.dims[d]) break;
      ic -= sc[d] * out.dims[d];
      ix -= sx[d] * out.dims[d];
      iy -= sy[d] * out.dims[d];
      idx[d] = 0;
    }
  }
}

// Strides of cond, x and y broadcast to the output.
struct WhereGeom {
  int64_t sc[kMaxRank], sx[kMaxRank], sy[kMaxRank];
};

Status prepare_where(const KernelCall& call, WhereGeom* g) { return where_geometry(call, g->sc, g->sx, g->sy); }

Status where(const KernelContext&, const KernelCall& call, const WhereGeom& g) {
  const Tensor &c = call.in[0], &x = call.in[1], &y = call.in[2], &out = call.out[0];
  if (out.dtype == DType::I64)
    where_loop(out, c.i64(), x.i64(), y.i64(), out.i64(), g.sc, g.sx, g.sy);
  else
    where_loop(out, c.i64(), x.f32(), y.f32(), out.f32(), g.sc, g.sx, g.sy);
  return Status();
}

// ---- GatherElements, ScatterElements, GatherND, ScatterND, TopK -----------
//
// Rows and index tuples in order, so repeated indices combine (or the last
// write wins) in index order, as on CUDA where that is deterministic.

// Calls f(ib, db) with the first index element and data element of each
// row of an ElementsGeom.
template <class F>
void for_each_row(const ElementsGeom& g, F f) {
  for_each_broadcast(g.rows, g.istrides, g.dstrides, [&](int64_t, int64_t ib, int64_t db) { f(ib, db); });
}

// Calls f(at, d) for every index position `at` (also the position in
// updates, y or dy) with the data element `d` it picks; stops at the first
// index out of range.
template <class F>
Status for_each_element(const KernelCall& call, const ElementsGeom& g, const int64_t* pi, F f) {
  Status st;
  for_each_row(g, [&](int64_t ib, int64_t db) {
    for (int64_t j = 0; j < g.len && st.ok(); ++j) {
      const int64_t at = ib + j * g.istep;
      int64_t m;
      st = gather_index(call, pi[at], g.n, &m);
      if (st.ok()) f(at, db + m * g.dstep);
    }
  });
  return st;
}

template <class T>
Status gather_elements_typed(const KernelCall& call, const ElementsGeom& g) {
  const T* pd = static_cast<const T*>(call.in[0].data);
  T* py = static_cast<T*>(call.out[0].data);
  return for_each_element(call, g, call.in[1].i64(), [&](int64_t at, int64_t d) { py[at] = pd[d]; });
}

Status gather_elements(const KernelContext&, const KernelCall& call, const ElementsGeom& g) {
  return call.in[0].dtype == DType::I64 ? gather_elements_typed<int64_t>(call, g)
                                        : gather_elements_typed<float>(call, g);
}

// y = data (unless it is data), then the updates (or zeros: `pu` null) combined in.
template <class T>
Status scatter_elements_typed(const KernelCall& call, const ElementsGeom& g, const Tensor& data, const T* pu,
                              index::Scatter kind) {
  T* py = static_cast<T*>(call.out[0].data);
  if (data.data != py) std::memcpy(py, data.data, size_t(data.numel) * sizeof(T));
  return for_each_element(call, g, call.in[1].i64(),
                          [&](int64_t at, int64_t d) { py[d] = pu ? index::combine(kind, py[d], pu[at]) : T(0); });
}

template <index::Scatter kKind>
Status scatter_elements(const KernelContext&, const KernelCall& call, const ElementsGeom& g) {
  const Tensor &data = call.in[0], &updates = call.in[2];
  if (data.dtype == DType::I64) return scatter_elements_typed<int64_t>(call, g, data, updates.i64(), kKind);
  return scatter_elements_typed<float>(call, g, data, updates.f32(), kKind);
}

Status gather_elements_grad(const KernelContext&, const KernelCall& call, const ElementsGeom& g) {
  const float* pdy = call.in[0].f32();
  float* pd = call.out[0].f32();
  std::fill(pd, pd + call.out[0].numel, 0.f);
  return for_each_element(call, g, call.in[1].i64(), [&](int64_t at, int64_t d) { pd[d] += pdy[at]; });
}

// ddata = dy, zeroed where the forward ScatterElements wrote.
Status scatter_elements_grad(const KernelContext&, const KernelCall& call, const ElementsGeom& g) {
  return scatter_elements_typed<float>(call, g, call.in[0], nullptr, index::Scatter::None);
}

// The element offset in data of index tuple `tuple`'s slice, or an error.
Status nd_offset(const KernelCall& call, const NDGeom& g, const int64_t* tuple, int64_t* offset) {
  *offset = 0;
  for (int64_t j = 0; j < g.k; ++j) {
    int64_t m;
    ZERO_RETURN_IF_ERROR(gather_index(call, tuple[j], g.dims[j], &m));
    *offset += m * g.strides[j];
  }
  return Status();
}

Status gather_nd(const KernelContext&, const KernelCall& call, const NDGeom& g) {
  const Tensor &data = call.in[0], &y = call.out[0];
  const int64_t* pi = call.in[1].i64();
  const size_t es = dtype_size(data.dtype), row = size_t(g.slice) * es;
  const uint8_t* src = static_cast<const uint8_t*>(data.data);
  uint8_t* dst = static_cast<uint8_t*>(y.data);
  for (int64_t t = 0; t < g.tuples; ++t) {
    int64_t at;
    ZERO_RETURN_IF_ERROR(nd_offset(call, g, pi + t * g.k, &at));
    std::memcpy(dst + size_t(t) * row, src + size_t(at) * es, row);
  }
  return Status();
}

template <class T>
Status scatter_nd_typed(const KernelCall& call, const NDGeom& g, const Tensor& data, const T* pu, index::Scatter kind) {
  T* py = static_cast<T*>(call.out[0].data);
  if (data.data != py) std::memcpy(py, data.data, size_t(data.numel) * sizeof(T));
  const int64_t* pi = call.in[1].i64();
  for (int64_t t = 0; t < g.tuples; ++t) {
    int64_t at;
    ZERO_RETURN_IF_ERROR(nd_offset(call, g, pi + t * g.k, &at));
    T* d = py + at;
    if (!pu) {
      std::fill(d, d + g.slice, T(0));
      continue;
    }
    const T* u = pu + t * g.slice;
    for (int64_t e = 0; e < g.slice; ++e) d[e] = index::combine(kind, d[e], u[e]);
  }
  return Status();
}

template <index::Scatter kKind>
Status scatter_nd(const KernelContext&, const KernelCall& call, const NDGeom& g) {
  const Tensor &data = call.in[0], &updates = call.in[2];
  if (data.dtype == DType::I64) return scatter_nd_typed<int64_t>(call, g, data, updates.i64(), kKind);
  return scatter_nd_typed<float>(call, g, data, updates.f32(), kKind);
}

Status gather_nd_grad(const KernelContext&, const KernelCall& call, const NDGeom& g) {
  float* pd = call.out[0].f32();
  std::fill(pd, pd + call.out[0].numel, 0.f);
  return scatter_nd_typed<float>(call, g, call.out[0], call.in[0].f32(), index::Scatter::Add);
}

Status scatter_nd_grad(const KernelContext&, const KernelCall& call, const NDGeom& g) {
  return scatter_nd_typed<float>(call, g, call.in[0], nullptr, index::Scatter::None);
}

size_t top_k_scratch_bytes(const TopKGeom& g) { return size_t(kernel_scratch::cpu_top_k_bytes(g.n)); }

Status top_k(const KernelContext& ctx, const KernelCall& call, const TopKGeom& g) {
  if (call.num_in > 1 && call.in[1].i64()[0] != g.k)
    return fail_data(call, "k = " + std::to_string(call.in[1].i64()[0]) + " differs from the outputs' " +
                               std::to_string(g.k) + " along the axis");
  const float* px = call.in[0].f32();
  float* pv = call.out[0].f32();
  int64_t* pi = call.out[1].i64();
  int64_t* order = static_cast<int64_t*>(ctx.scratch);
  for (int64_t o = 0; o < g.outer; ++o)
    for (int64_t i = 0; i < g.inner; ++i) {
      const float* row = px + o * g.n * g.inner + i;
      for (int64_t j = 0; j < g.n; ++j) order[j] = j;
      std::partial_sort(order, order + g.k, order + g.n, [&](int64_t a, int64_t b) {
        return index::top_k_before(row[a * g.inner], a, row[b * g.inner], b, g.largest);
      });
      for (int64_t j = 0; j < g.k; ++j) {
        const int64_t at = (o * g.k + j) * g.inner + i;
        pv[at] = row[order[j] * g.inner];
        pi[at] = order[j];
      }
    }
  return Status();
}

}  // namespace

void add_cpu_layout_kernels(TableBackend& backend) {
  using plan::Opcode;
  using reduce::Kind;
  backend.set(Opcode::ReduceSum, define_kernel<prepare_reduce, reduce_impl<Kind::Sum>, reduce_scratch_bytes>());
  backend.set(Opcode::ReduceMean, define_kernel<prepare_reduce, reduce_impl<Kind::Mean>, reduce_scratch_bytes>());
  backend.set(Opcode::ReduceMax, define_kernel<prepare_reduce, reduce_impl<Kind::Max>, reduce_scratch_bytes>());
  backend.set(Opcode::ReduceMin, define_kernel<prepare_reduce, reduce_impl<Kind::Min>, reduce_scratch_bytes>());
  backend.set(Opcode::ReduceProd, define_kernel<prepare_reduce, reduce_impl<Kind::Prod>, reduce_scratch_bytes>());
  backend.set(Opcode::ReduceL2, define_kernel<prepare_reduce, reduce_impl<Kind::L2>, reduce_scratch_bytes>());
  backend.set(Opcode::ArgMax, define_kernel<arg_reduce_geometry, arg_reduce<true>>());
  backend.set(Opcode::ArgMin, define_kernel<arg_reduce_geometry, arg_reduce<false>>());
  backend.set(Opcode::CumSum, define_kernel<cumsum_geometry, cumsum>());
  backend.set(Opcode::Transpose, define_kernel<prepare_transpose, strided_copy_kernel>());
  backend.set(Opcode::Expand, define_kernel<prepare_expand, strided_copy_kernel>());
  backend.set(Opcode::Fill, define_kernel<fill_value, fill>());
  backend.set(Opcode::Gather, define_kernel<validate_gather, gather, gather_scratch_bytes>());
  backend.set(Opcode::Slice, define_kernel<validate_slice, slice>());
  backend.set(Opcode::Concat, define_kernel<validate_concat, concat>());
  backend.set(Opcode::Where, define_kernel<prepare_where, where>());
  backend.set(Opcode::GatherGrad, define_kernel<validate_gather_grad, gather_grad, gather_scratch_bytes>());
  backend.set(Opcode::SliceGrad, define_kernel<validate_slice_grad, slice_grad>());
  using index::Scatter;
  backend.set(Opcode::GatherElements, define_kernel<validate_gather_elements, gather_elements>());
  backend.set(Opcode::ScatterElements, define_kernel<validate_scatter_elements, scatter_elements<Scatter::None>>());
  backend.set(Opcode::ScatterElementsAdd, define_kernel<validate_scatter_elements, scatter_elements<Scatter::Add>>());
  backend.set(Opcode::ScatterElementsMul, define_kernel<validate_scatter_elements, scatter_elements<Scatter::Mul>>());
  backend.set(Opcode::GatherND, define_kernel<validate_gather_nd, gather_nd>());
  backend.set(Opcode::ScatterND, define_kernel<validate_scatter_nd, scatter_nd<Scatter::None>>());
  backend.set(Opcode::ScatterNDAdd, define_kernel<validate_scatter_nd, scatter_nd<Scatter::Add>>());
  backend.set(Opcode::ScatterNDMul, define_kernel<validate_scatter_nd, scatter_nd<Scatter::Mul>>());
  backend.set(Opcode::TopK, define_kernel<validate_top_k, top_k, top_k_scratch_bytes>());
  backend.set(Opcode::GatherElementsGrad, define_kernel<validate_gather_elements_grad, gather_elements_grad>());
  backend.set(Opcode::ScatterElementsGrad, define_kernel<validate_scatter_elements_grad, scatter_elements_grad>());
  backend.set(Opcode::GatherNDGrad, define_kernel<validate_gather_nd_grad, gather_nd_grad>());
  backend.set(Opcode::ScatterNDGrad, define_kernel<validate_scatter_nd_grad, scatter_nd_grad>());
}

}  // namespace zero
