// CPU kernels: reductions, layout (Transpose, Expand, Fill) and indexing (Gather, Slice, Concat, Where). Every kernel
// checks its operands (the shared checks of kernel_checks.h) before touching memory.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "backend.h"
#include "cpu/broadcast.h"
#include "cpu/kernels.h"
#include "kernel_checks.h"

namespace zero {
namespace {

// ---- reductions, layout --------------------------------------------------

template <bool kMean, bool kRun>
Status reduce_impl(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  bool reduced[kMaxRank];
  int64_t out_numel, count;
  ZERO_RETURN_IF_ERROR(reduce_geometry(call, reduced, &out_numel, &count));
  if (!kRun) return Status();
  // Each input element's output index: the input's with reduced dims dropped.
  int64_t strides[kMaxRank], stride = 1;
  for (int i = x.ndim - 1; i >= 0; --i) {
    strides[i] = reduced[i] ? 0 : stride;
    if (!reduced[i]) stride *= x.dims[i];
  }
  std::vector<double> acc(size_t(out_numel), 0.0);
  const float* px = x.f32();
  int64_t zero[kMaxRank] = {};
  for_each_broadcast(x, strides, zero, [&](int64_t i, int64_t o, int64_t) { acc[o] += px[i]; });
  float* py = y.f32();
  for (int64_t o = 0; o < out_numel; ++o) py[o] = float(kMean ? acc[o] / double(count) : acc[o]);
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

template <bool kRun>
Status transpose(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  int64_t src_strides[kMaxRank];
  ZERO_RETURN_IF_ERROR(transpose_geometry(call, src_strides));
  if (!kRun) return Status();
  strided_copy_any(y, src_strides, x, const_cast<Tensor&>(y));
  return Status();
}

template <bool kRun>
Status expand(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  int64_t strides[kMaxRank];
  ZERO_RETURN_IF_ERROR(expand_geometry(call, strides));
  if (!kRun) return Status();
  strided_copy_any(y, strides, x, const_cast<Tensor&>(y));
  return Status();
}

template <bool kRun>
Status fill(const KernelCall& call) {
  const Tensor& y = call.out[0];
  if (!kRun) return Status();
  const auto* attrs = call.inst->attrs_as_FillAttrs();
  const float v = attrs ? attrs->value() : 0.f;
  if (y.dtype == DType::F32)
    std::fill(y.f32(), y.f32() + y.numel, v);
  else
    std::fill(y.i64(), y.i64() + y.numel, int64_t(v));
  return Status();
}

// ---- Gather, Slice, Concat, Where ----------------------------------------
//
// Each has a validator (shapes, dtypes, attributes; run once at load by the
// executor and again by the kernel) and a kernel that only checks data
// dependent things (index values).

// Normalized index or an error for one out of [-n, n).
Status gather_index(const KernelCall& call, int64_t raw, int64_t n, int64_t* out) {
  if (raw < -n || raw >= n)
    return fail_data(
        call, "index " + std::to_string(raw) + " out of range [" + std::to_string(-n) + ", " + std::to_string(n) + ")");
  *out = raw < 0 ? raw + n : raw;
  return Status();
}

Status gather(const KernelCall& call) {
  const Tensor &data = call.in[0], &indices = call.in[1], &y = call.out[0];
  GatherSplit g;
  ZERO_RETURN_IF_ERROR(gather_geometry(call, data, indices, y, "data", "output", &g));
  if (data.data == y.data && y.numel > 0) return fail(call, "gather cannot run in place");
  const int64_t* pi = indices.i64();
  std::vector<int64_t> idx(size_t(g.q));
  for (int64_t k = 0; k < g.q; ++k) ZERO_RETURN_IF_ERROR(gather_index(call, pi[k], g.n, &idx[size_t(k)]));
  const size_t es = dtype_size(data.dtype), row = size_t(g.inner) * es;
  const uint8_t* src = static_cast<const uint8_t*>(data.data);
  uint8_t* dst = static_cast<uint8_t*>(y.data);
  for (int64_t o = 0; o < g.outer; ++o)
    for (int64_t k = 0; k < g.q; ++k)
      std::memcpy(dst + size_t(o * g.q + k) * row, src + size_t(o * g.n + idx[size_t(k)]) * row, row);
  return Status();
}

Status gather_grad(const KernelCall& call) {
  const Tensor &dy = call.in[0], &indices = call.in[1], &dd = call.out[0];
  GatherSplit g;
  ZERO_RETURN_IF_ERROR(gather_grad_geometry(call, &g));
  if (dd.data == dy.data && dd.numel > 0) return fail(call, "gather grad cannot run in place");
  const int64_t* pi = indices.i64();
  std::vector<int64_t> idx(size_t(g.q));
  for (int64_t k = 0; k < g.q; ++k) ZERO_RETURN_IF_ERROR(gather_index(call, pi[k], g.n, &idx[size_t(k)]));
  const float* pdy = dy.f32();
  float* pd = dd.f32();
  std::fill(pd, pd + dd.numel, 0.f);
  // Repeated indices accumulate, in index order (deterministic).
  for (int64_t o = 0; o < g.outer; ++o)
    for (int64_t k = 0; k < g.q; ++k) {
      const float* s = pdy + (o * g.q + k) * g.inner;
      float* d = pd + (o * g.n + idx[size_t(k)]) * g.inner;
      for (int64_t i = 0; i < g.inner; ++i) d[i] += s[i];
    }
  return Status();
}

Status slice(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  int64_t strides[kMaxRank], base;
  ZERO_RETURN_IF_ERROR(slice_geometry(call, x, y, strides, &base));
  if (x.data == y.data && y.numel > 0 && !(base == 0 && x.numel == y.numel))
    return fail(call, "slice cannot run in place");
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

Status slice_grad(const KernelCall& call) {
  const Tensor &dy = call.in[0], &dx = call.out[0];
  int64_t strides[kMaxRank], base;
  ZERO_RETURN_IF_ERROR(slice_grad_geometry(call, strides, &base));
  if (dx.data == dy.data && dx.numel > 0) return fail(call, "slice grad cannot run in place");
  float* pdx = dx.f32();
  std::fill(pdx, pdx + dx.numel, 0.f);
  const float* pdy = dy.f32();
  float* at = pdx + base;
  int64_t zero[kMaxRank] = {};
  // Positive or negative steps never revisit an element, so plain stores.
  for_each_broadcast(dy, strides, zero, [&](int64_t o, int64_t i, int64_t) { at[i] = pdy[o]; });
  return Status();
}

Status concat(const KernelCall& call) {
  const Tensor& y = call.out[0];
  int ax;
  ZERO_RETURN_IF_ERROR(concat_geometry(call, &ax));
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < ax; ++d) outer *= y.dims[d];
  for (int d = ax + 1; d < y.ndim; ++d) inner *= y.dims[d];
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

Status where(const KernelCall& call) {
  int64_t sc[kMaxRank], sx[kMaxRank], sy[kMaxRank];
  ZERO_RETURN_IF_ERROR(where_geometry(call, sc, sx, sy));
  const Tensor &c = call.in[0], &x = call.in[1], &y = call.in[2], &out = call.out[0];
  if (out.dtype == DType::I64)
    where_loop(out, c.i64(), x.i64(), y.i64(), out.i64(), sc, sx, sy);
  else
    where_loop(out, c.i64(), x.f32(), y.f32(), out.f32(), sc, sx, sy);
  return Status();
}

}  // namespace

void add_cpu_layout_kernels(TableBackend& backend) {
  using plan::Opcode;
  backend.set(Opcode::ReduceSum, reduce_impl<false, true>, reduce_impl<false, false>);
  backend.set(Opcode::ReduceMean, reduce_impl<true, true>, reduce_impl<true, false>);
  backend.set(Opcode::Transpose, transpose<true>, transpose<false>);
  backend.set(Opcode::Expand, expand<true>, expand<false>);
  backend.set(Opcode::Fill, fill<true>, fill<false>);
  backend.set(Opcode::Gather, gather, validate_gather);
  backend.set(Opcode::Slice, slice, validate_slice);
  backend.set(Opcode::Concat, concat, validate_concat);
  backend.set(Opcode::Where, where, validate_where);
  backend.set(Opcode::GatherGrad, gather_grad, validate_gather_grad);
  backend.set(Opcode::SliceGrad, slice_grad, validate_slice_grad);
}

}  // namespace zero
