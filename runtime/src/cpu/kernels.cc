// CPU kernels. Every kernel checks its operands' dtypes and shapes before
// touching memory (a corrupt plan must fail, not crash) and stays correct when
// an output aliases an input exactly, which the compiler uses for in-place
// elementwise ops.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "backend.h"
#include "cpu/broadcast.h"
#include "cpu/elementwise.h"
#include "kernel_checks.h"

namespace zero {
namespace {

using plan::Opcode;

// ---- elementwise (the rest: cpu/elementwise.cc) ---------------------------

// Any dtype; memmove keeps exact aliasing harmless.
Status copy(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(check_copy(call));
  if (x.data != y.data) std::memmove(y.data, x.data, x.numel * dtype_size(x.dtype));
  return Status();
}

Status cast(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, x, y, "input and output"));
  if (x.dtype == y.dtype) return copy(call);
  if (x.dtype == DType::I64) {
    // Read-then-write per element; an exactly aliased cast would need equal
    // element sizes, which F32/I64 are not, so the compiler never aliases.
    const int64_t* px = x.i64();
    float* py = y.f32();
    for (int64_t i = 0; i < x.numel; ++i) py[i] = static_cast<float>(px[i]);
  } else {
    // Truncation toward zero as in C; NaN and out-of-range values saturate
    // instead of being undefined behaviour.
    const float* px = x.f32();
    int64_t* py = y.i64();
    for (int64_t i = 0; i < x.numel; ++i) {
      float v = px[i];
      if (std::isnan(v)) py[i] = 0;
      else if (v >= 9.2233720368547758e18f) py[i] = INT64_MAX;
      else if (v <= -9.2233720368547758e18f) py[i] = INT64_MIN;
      else py[i] = static_cast<int64_t>(v);
    }
  }
  return Status();
}

// ---- Gemm / MatMul -------------------------------------------------------

// Row-major C[m,n] = alpha * op(A) op(B) + beta * C; handles k == 0, which
// BLAS implementations treat inconsistently.
void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           const float* b, float beta, float* c) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (int64_t i = 0; i < m * n; ++i) c[i] = beta == 0.f ? 0.f : beta * c[i];
    return;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(m),
              int(n), int(k), alpha, a, int(ta ? m : k), b, int(tb ? k : n), beta, c, int(n));
}

Status gemm(const KernelCall& call) {
  const Tensor &a = call.in[0], &b = call.in[1], &y = call.out[0];
  GemmGeom g;
  int64_t sc[kMaxRank], sz[kMaxRank] = {};
  ZERO_RETURN_IF_ERROR(gemm_geometry(call, &g, sc));
  float c_beta = 0.f;
  if (g.with_c) {
    // Y = C broadcast, then BLAS accumulates beta * Y. Exact aliasing C == Y
    // is a same-index copy.
    const float* pc = call.in[2].f32();
    float* py = y.f32();
    for_each_broadcast(y, sc, sz, [&](int64_t o, int64_t i, int64_t) { py[o] = pc[i]; });
    c_beta = g.beta;
  }
  sgemm(g.ta, g.tb, g.m, g.n, g.k, g.alpha, a.f32(), b.f32(), c_beta, y.f32());
  return Status();
}

Status matmul(const KernelCall& call) {
  MatMulGeom g;
  ZERO_RETURN_IF_ERROR(matmul_geometry(call, &g));
  const int64_t m = g.m, n = g.n, k = g.k;
  const float *pa = call.in[0].f32(), *pb = call.in[1].f32();
  float* py = call.out[0].f32();
  if (g.batch_b == 1 && g.batch_a == g.batch.numel) {
    // A shared B: one GEMM over all of A's rows.
    sgemm(false, false, g.batch.numel * m, n, k, 1.f, pa, pb, 0.f, py);
    return Status();
  }
  for_each_broadcast(g.batch, g.sa, g.sb, [&](int64_t o, int64_t i, int64_t j) {
    sgemm(false, false, m, n, k, 1.f, pa + i * m * k, pb + j * k * n, 0.f, py + o * m * n);
  });
  return Status();
}

// ---- softmax family ------------------------------------------------------

template <bool kLog>
Status softmax_impl(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  AxisSplit s;
  ZERO_RETURN_IF_ERROR(softmax_geometry(call, &s));
  const float* px = x.f32();
  float* py = y.f32();
  for (int64_t o = 0; o < s.outer; ++o)
    for (int64_t in = 0; in < s.inner; ++in) {
      const int64_t base = o * s.n * s.inner + in;
      float mx = -INFINITY;
      for (int64_t i = 0; i < s.n; ++i) mx = std::max(mx, px[base + i * s.inner]);
      double sum = 0;
      for (int64_t i = 0; i < s.n; ++i) sum += std::exp(px[base + i * s.inner] - mx);
      if (kLog) {
        const float lse = mx + float(std::log(sum));
        for (int64_t i = 0; i < s.n; ++i) py[base + i * s.inner] = px[base + i * s.inner] - lse;
      } else {
        const float inv = float(1.0 / sum);
        for (int64_t i = 0; i < s.n; ++i) py[base + i * s.inner] = std::exp(px[base + i * s.inner] - mx) * inv;
      }
    }
  return Status();
}

// SoftmaxGrad: dx = y * (dy - sum(dy * y)); LogSoftmaxGrad: dx = dy - exp(y) * sum(dy).
template <bool kLog>
Status softmax_grad_impl(const KernelCall& call) {
  const Tensor &dy = call.in[0], &y = call.in[1], &dx = call.out[0];
  AxisSplit s;
  ZERO_RETURN_IF_ERROR(softmax_grad_geometry(call, &s));
  const float *pdy = dy.f32(), *py = y.f32();
  float* pdx = dx.f32();
  for (int64_t o = 0; o < s.outer; ++o)
    for (int64_t in = 0; in < s.inner; ++in) {
      const int64_t base = o * s.n * s.inner + in;
      double sum = 0;
      for (int64_t i = 0; i < s.n; ++i) {
        const int64_t j = base + i * s.inner;
        sum += kLog ? pdy[j] : double(pdy[j]) * py[j];
      }
      const float fs = float(sum);
      for (int64_t i = 0; i < s.n; ++i) {
        const int64_t j = base + i * s.inner;
        pdx[j] = kLog ? pdy[j] - std::exp(py[j]) * fs : py[j] * (pdy[j] - fs);
      }
    }
  return Status();
}

// ---- losses --------------------------------------------------------------

Status check_labels(const KernelCall& call, const LossGeometry& g, const Tensor& labels) {
  const int64_t* pl = labels.i64();
  for (int64_t i = 0; i < labels.numel; ++i)
    if (!g.ignored(pl[i]) && (pl[i] < 0 || pl[i] >= g.c))
      return fail_data(call, "label " + std::to_string(pl[i]) + " out of range [0, " + std::to_string(g.c) + ")");
  return Status();
}

// Writes the reduced or per-position loss from per-position values; Mean
// divides by `total`, the summed weight of the counted labels.
void reduce_loss(const LossGeometry& g, const std::vector<double>& per, double total, float* out) {
  if (g.reduction == plan::Reduction::None) {
    for (size_t i = 0; i < per.size(); ++i) out[i] = float(per[i]);
    return;
  }
  double sum = 0;
  for (double v : per) sum += v;
  // Mean over zero counted labels is 0/0 = NaN, as in PyTorch and ONNX.
  out[0] = float(g.reduction == plan::Reduction::Mean ? sum / total : sum);
}

// A label's class weight (1 without weights); only for counted labels.
inline double class_weight(const float* weights, int64_t label) { return weights ? double(weights[label]) : 1.0; }

// Shared by both losses: kSoftmax applies log_softmax over the class axis
// first (optionally storing it in a second output).
template <bool kSoftmax>
Status loss_impl(const KernelCall& call) {
  const Tensor &scores = call.in[0], &labels = call.in[1], &loss = call.out[0];
  const Tensor* weights = call.num_in > 2 ? &call.in[2] : nullptr;
  LossGeometry g;
  ZERO_RETURN_IF_ERROR(loss_geometry(call, scores, labels, &g));
  ZERO_RETURN_IF_ERROR(check_loss_output(call, g, loss, labels, "loss"));
  ZERO_RETURN_IF_ERROR(check_loss_weights(call, g, weights));
  ZERO_RETURN_IF_ERROR(check_labels(call, g, labels));
  const Tensor* log_prob = kSoftmax && call.num_out > 1 ? &call.out[1] : nullptr;
  ZERO_RETURN_IF_ERROR(check_log_prob(call, scores, log_prob));
  const float* px = scores.f32();
  const float* pw = weights ? weights->f32() : nullptr;
  const int64_t* pl = labels.i64();
  std::vector<double> per(size_t(g.n * g.inner), 0.0);
  double total = 0;
  for (int64_t b = 0; b < g.n; ++b)
    for (int64_t in = 0; in < g.inner; ++in) {
      const int64_t pos = b * g.inner + in, base = b * g.c * g.inner + in;
      const int64_t label = pl[pos];
      float lse = 0.f;
      if (kSoftmax) {
        float mx = -INFINITY;
        for (int64_t c = 0; c < g.c; ++c) mx = std::max(mx, px[base + c * g.inner]);
        double sum = 0;
        for (int64_t c = 0; c < g.c; ++c) sum += std::exp(px[base + c * g.inner] - mx);
        lse = mx + float(std::log(sum));
      }
      if (!g.ignored(label)) {
        const double cw = class_weight(pw, label);
        per[pos] = -(double(px[base + label * g.inner]) - lse) * cw;
        total += cw;
      }
      if (log_prob)
        for (int64_t c = 0; c < g.c; ++c) log_prob->f32()[base + c * g.inner] = px[base + c * g.inner] - lse;
    }
  reduce_loss(g, per, total, loss.f32());
  return Status();
}

// (dloss, scores|log_probs, labels, [weights]) -> dinput.
template <bool kSoftmax>
Status loss_grad_impl(const KernelCall& call) {
  const Tensor &dloss = call.in[0], &x = call.in[1], &labels = call.in[2], &dx = call.out[0];
  const Tensor* weights = call.num_in > 3 ? &call.in[3] : nullptr;
  LossGeometry g;
  ZERO_RETURN_IF_ERROR(loss_geometry(call, x, labels, &g));
  ZERO_RETURN_IF_ERROR(check_loss_output(call, g, dloss, labels, "dloss"));
  ZERO_RETURN_IF_ERROR(check_loss_weights(call, g, weights));
  ZERO_RETURN_IF_ERROR(check_labels(call, g, labels));
  ZERO_RETURN_IF_ERROR(expect_f32(call, dx, "dinput"));
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, x, dx, "input and dinput"));
  const float *px = x.f32(), *pd = dloss.f32();
  const float* pw = weights ? weights->f32() : nullptr;
  const int64_t* pl = labels.i64();
  float* pdx = dx.f32();
  double total = 0;  // Mean's divisor: the summed weight of the counted labels
  for (int64_t i = 0; i < labels.numel; ++i)
    if (!g.ignored(pl[i])) total += class_weight(pw, pl[i]);
  for (int64_t b = 0; b < g.n; ++b)
    for (int64_t in = 0; in < g.inner; ++in) {
      const int64_t pos = b * g.inner + in, base = b * g.c * g.inner + in;
      const int64_t label = pl[pos];
      float w = 0.f;
      if (!g.ignored(label)) {
        const double cw = class_weight(pw, label);
        w = g.reduction == plan::Reduction::None ? float(double(pd[pos]) * cw)
            : g.reduction == plan::Reduction::Mean ? float(double(pd[0]) * cw / total)
                                                    : float(double(pd[0]) * cw);
      }
      if (kSoftmax) {
        float mx = -INFINITY;
        for (int64_t c = 0; c < g.c; ++c) mx = std::max(mx, px[base + c * g.inner]);
        double sum = 0;
        for (int64_t c = 0; c < g.c; ++c) sum += std::exp(px[base + c * g.inner] - mx);
        const float inv = float(1.0 / sum);
        for (int64_t c = 0; c < g.c; ++c) {
          const int64_t j = base + c * g.inner;
          const float p = std::exp(px[j] - mx) * inv;
          pdx[j] = w == 0.f ? 0.f : (p - (c == label ? 1.f : 0.f)) * w;
        }
      } else {
        for (int64_t c = 0; c < g.c; ++c) pdx[base + c * g.inner] = c == label ? -w : 0.f;
      }
    }
  return Status();
}

// ---- reductions, layout --------------------------------------------------

template <bool kMean>
Status reduce_impl(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  bool reduced[kMaxRank];
  int64_t out_numel, count;
  ZERO_RETURN_IF_ERROR(reduce_geometry(call, reduced, &out_numel, &count));
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
  if (src.dtype == DType::I64) strided_copy(shape, src_strides, src.i64(), dst.i64());
  else strided_copy(shape, src_strides, src.f32(), dst.f32());
}

Status transpose(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  int64_t src_strides[kMaxRank];
  ZERO_RETURN_IF_ERROR(transpose_geometry(call, src_strides));
  strided_copy_any(y, src_strides, x, const_cast<Tensor&>(y));
  return Status();
}

Status expand(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  int64_t strides[kMaxRank];
  ZERO_RETURN_IF_ERROR(expand_geometry(call, strides));
  strided_copy_any(y, strides, x, const_cast<Tensor&>(y));
  return Status();
}

Status fill(const KernelCall& call) {
  const Tensor& y = call.out[0];
  const auto* attrs = call.inst->attrs_as_FillAttrs();
  const float v = attrs ? attrs->value() : 0.f;
  if (y.dtype == DType::F32) std::fill(y.f32(), y.f32() + y.numel, v);
  else std::fill(y.i64(), y.i64() + y.numel, int64_t(v));
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
    return fail_data(call, "index " + std::to_string(raw) + " out of range [" + std::to_string(-n) + ", " +
                          std::to_string(n) + ")");
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
  if (out.dtype == DType::I64) where_loop(out, c.i64(), x.i64(), y.i64(), out.i64(), sc, sx, sy);
  else where_loop(out, c.i64(), x.f32(), y.f32(), out.f32(), sc, sx, sy);
  return Status();
}

// ---- LayerNormalization --------------------------------------------------

Status layer_norm(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(validate_layer_norm(call));
  const Tensor& x = call.in[0];
  LayerNormSplit s;
  ZERO_RETURN_IF_ERROR(layer_norm_split(call, x, &s));
  const float *px = x.f32(), *pscale = call.in[1].f32(), *pbias = call.in[2].f32();
  float* py = call.out[0].f32();
  float* pmean = call.num_out > 1 ? call.out[1].f32() : nullptr;
  float* pinv = call.num_out > 2 ? call.out[2].f32() : nullptr;
  for (int64_t o = 0; o < s.outer; ++o) {
    const float* row = px + o * s.inner;
    // Two passes in double: mean, then the biased variance around it.
    double sum = 0;
    for (int64_t i = 0; i < s.inner; ++i) sum += row[i];
    const double mean = s.inner ? sum / double(s.inner) : 0.0;
    double sq = 0;
    for (int64_t i = 0; i < s.inner; ++i) sq += (row[i] - mean) * (row[i] - mean);
    const double var = s.inner ? sq / double(s.inner) : 0.0;
    const double inv = 1.0 / std::sqrt(var + double(s.eps));
    // y may alias x exactly: each element is read before it is written.
    float* out = py + o * s.inner;
    for (int64_t i = 0; i < s.inner; ++i)
      out[i] = float((double(row[i]) - mean) * inv * double(pscale[i]) + double(pbias[i]));
    if (pmean) pmean[o] = float(mean);
    if (pinv) pinv[o] = float(inv);
  }
  return Status();
}

Status layer_norm_grad(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(validate_layer_norm_grad(call));
  const Tensor &dy = call.in[0], &x = call.in[1];
  LayerNormSplit s;
  ZERO_RETURN_IF_ERROR(layer_norm_split(call, x, &s));
  const float *pdy = dy.f32(), *px = x.f32(), *pscale = call.in[2].f32(), *pmean = call.in[3].f32(),
              *pinv = call.in[4].f32();
  float* pdx = call.out[0].f32();
  std::vector<double> dscale(size_t(s.inner), 0.0), dbias(size_t(s.inner), 0.0);
  for (int64_t o = 0; o < s.outer; ++o) {
    const float *dyr = pdy + o * s.inner, *xr = px + o * s.inner;
    const double mean = pmean[o], inv = pinv[o];
    // g = dy * scale; dx = inv * (g - mean(g) - xhat * mean(g * xhat)).
    double sum_g = 0, sum_gx = 0;
    for (int64_t i = 0; i < s.inner; ++i) {
      const double xhat = (double(xr[i]) - mean) * inv, d = dyr[i];
      const double g = d * double(pscale[i]);
      sum_g += g;
      sum_gx += g * xhat;
      dscale[size_t(i)] += d * xhat;
      dbias[size_t(i)] += d;
    }
    const double mg = s.inner ? sum_g / double(s.inner) : 0.0, mgx = s.inner ? sum_gx / double(s.inner) : 0.0;
    // dx may alias dy or x exactly: read both before writing element i.
    float* dxr = pdx + o * s.inner;
    for (int64_t i = 0; i < s.inner; ++i) {
      const double xhat = (double(xr[i]) - mean) * inv;
      const double g = double(dyr[i]) * double(pscale[i]);
      dxr[i] = float(inv * (g - mg - xhat * mgx));
    }
  }
  if (call.num_out > 1)
    for (int64_t i = 0; i < s.inner; ++i) call.out[1].f32()[i] = float(dscale[size_t(i)]);
  if (call.num_out > 2)
    for (int64_t i = 0; i < s.inner; ++i) call.out[2].f32()[i] = float(dbias[size_t(i)]);
  return Status();
}

// ---- Conv, pooling, BatchNormalization (2-D NCHW, F32) -------------------
//
// Conv and its gradients are im2col + GEMM over chunks of images: the
// columns of a chunk of nc images form one [C/group * kH * kW, nc * OH * OW]
// matrix, so small late-layer feature maps still make wide GEMMs. The
// validators (validate_conv, pool_geometry, ...) are in kernel_checks.cc,
// shared with the CUDA backend.

// Upper bound on the floats of one im2col chunk (at least one image): 16 MiB
// keeps a chunk's columns near the last-level cache; larger chunks measured
// no faster.
int64_t conv_scratch_limit = int64_t(1) << 22;

// Images per im2col chunk.
int64_t conv_chunk(const ConvGeom& g) {
  const int64_t per_image = std::max<int64_t>(1, g.kdim() * g.plane());
  int64_t nc = std::max<int64_t>(1, conv_scratch_limit / per_image);
  nc = std::min(nc, std::max<int64_t>(g.n, 1));
  // One GEMM's column count must fit a BLAS int.
  return std::max<int64_t>(1, std::min(nc, int64_t(0x7fffffff) / std::max<int64_t>(1, g.plane())));
}

// Valid output columns [lo, hi) of kernel column j: those reading inside x.
void valid_cols(const ConvGeom& g, int64_t j, int64_t* lo, int64_t* hi) {
  const int64_t off = j * g.win.d[1] - g.win.p[1], sw = g.win.s[1];
  *lo = off >= 0 ? 0 : std::min(g.ow, (-off + sw - 1) / sw);
  *hi = g.w - 1 - off < 0 ? 0 : std::min(g.ow, (g.w - 1 - off) / sw + 1);
  if (*hi < *lo) *hi = *lo;
}

// col[(c*kH + i)*kW + j][nn*P + oh*OW + ow] = x[n0 + nn, gi*Cg + c, ih, iw]
// (0 in the padding), P = OH*OW.
void im2col(const ConvGeom& g, const float* x, int64_t n0, int64_t nc, int64_t gi, float* col) {
  const int64_t cg = g.cg(), kh = g.win.k[0], kw = g.win.k[1], P = g.plane(), ld = nc * P, hw = g.h * g.w;
  const int64_t sh = g.win.s[0], sw = g.win.s[1];
  for (int64_t c = 0; c < cg; ++c)
    for (int64_t i = 0; i < kh; ++i)
      for (int64_t j = 0; j < kw; ++j) {
        float* row = col + ((c * kh + i) * kw + j) * ld;
        int64_t lo, hi;
        valid_cols(g, j, &lo, &hi);
        const int64_t off_w = j * g.win.d[1] - g.win.p[1];
        for (int64_t nn = 0; nn < nc; ++nn) {
          const float* plane = x + ((n0 + nn) * g.c + gi * cg + c) * hw;
          for (int64_t oh = 0; oh < g.oh; ++oh) {
            float* dst = row + nn * P + oh * g.ow;
            const int64_t ih = oh * sh - g.win.p[0] + i * g.win.d[0];
            if (ih < 0 || ih >= g.h) {
              std::fill(dst, dst + g.ow, 0.f);
              continue;
            }
            const float* src = plane + ih * g.w;
            std::fill(dst, dst + lo, 0.f);
            if (sw == 1) {
              if (hi > lo) std::memcpy(dst + lo, src + lo + off_w, size_t(hi - lo) * sizeof(float));
            } else {
              for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow * sw + off_w];
            }
            std::fill(dst + hi, dst + g.ow, 0.f);
          }
        }
      }
}

// The adjoint of im2col: dx[...] += col[...] over the valid positions.
void col2im(const ConvGeom& g, const float* col, int64_t n0, int64_t nc, int64_t gi, float* dx) {
  const int64_t cg = g.cg(), kh = g.win.k[0], kw = g.win.k[1], P = g.plane(), ld = nc * P, hw = g.h * g.w;
  const int64_t sh = g.win.s[0], sw = g.win.s[1];
  for (int64_t c = 0; c < cg; ++c)
    for (int64_t i = 0; i < kh; ++i)
      for (int64_t j = 0; j < kw; ++j) {
        const float* row = col + ((c * kh + i) * kw + j) * ld;
        int64_t lo, hi;
        valid_cols(g, j, &lo, &hi);
        const int64_t off_w = j * g.win.d[1] - g.win.p[1];
        for (int64_t nn = 0; nn < nc; ++nn) {
          float* plane = dx + ((n0 + nn) * g.c + gi * cg + c) * hw;
          for (int64_t oh = 0; oh < g.oh; ++oh) {
            const int64_t ih = oh * sh - g.win.p[0] + i * g.win.d[0];
            if (ih < 0 || ih >= g.h) continue;
            const float* src = row + nn * P + oh * g.ow;
            float* dst = plane + ih * g.w;
            if (sw == 1) {
              for (int64_t ow = lo; ow < hi; ++ow) dst[ow + off_w] += src[ow];
            } else {
              for (int64_t ow = lo; ow < hi; ++ow) dst[ow * sw + off_w] += src[ow];
            }
          }
        }
      }
}

// Per-thread scratch buffers, grown as needed and kept between calls.
float* scratch(int which, int64_t floats) {
  thread_local std::vector<float> bufs[2];
  std::vector<float>& b = bufs[which];
  if (int64_t(b.size()) < floats) b.resize(size_t(floats));
  return b.data();
}

Status conv(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(validate_conv(call));
  const Tensor &x = call.in[0], &w = call.in[1], &y = call.out[0];
  ConvGeom g;
  ZERO_RETURN_IF_ERROR(conv_geometry(call, x, w, y, "x", "w", "y", &g));
  const float* bias = call.num_in > 2 ? call.in[2].f32() : nullptr;
  const int64_t K = g.kdim(), P = g.plane(), mg = g.mg(), nc = conv_chunk(g);
  float* col = scratch(0, K * nc * P);
  for (int64_t n0 = 0; n0 < g.n; n0 += nc) {
    const int64_t cur = std::min(nc, g.n - n0), ld = cur * P;
    for (int64_t gi = 0; gi < g.group; ++gi) {
      im2col(g, x.f32(), n0, cur, gi, col);
      // One image: the GEMM writes y's [mg, P] block directly.
      float* out = cur == 1 ? y.f32() + (n0 * g.m + gi * mg) * P : scratch(1, mg * ld);
      sgemm(false, false, mg, ld, K, 1.f, w.f32() + gi * mg * K, col, 0.f, out);
      for (int64_t nn = 0; nn < cur; ++nn)
        for (int64_t m = 0; m < mg; ++m) {
          float* dst = y.f32() + ((n0 + nn) * g.m + gi * mg + m) * P;
          const float* src = out + m * ld + nn * P;
          const float b = bias ? bias[gi * mg + m] : 0.f;
          if (src == dst) {
            if (bias) for (int64_t p = 0; p < P; ++p) dst[p] += b;
          } else {
            for (int64_t p = 0; p < P; ++p) dst[p] = src[p] + b;
          }
        }
    }
  }
  return Status();
}

// dy [mg, cur*P] of group gi for images [n0, n0 + cur), gathered from
// [N, M, P] (or dy itself for one image).
const float* gather_dy(const ConvGeom& g, const float* dy, int64_t n0, int64_t cur, int64_t gi) {
  const int64_t P = g.plane(), mg = g.mg();
  if (cur == 1) return dy + (n0 * g.m + gi * mg) * P;
  float* out = scratch(1, mg * cur * P);
  for (int64_t m = 0; m < mg; ++m)
    for (int64_t nn = 0; nn < cur; ++nn)
      std::memcpy(out + (m * cur + nn) * P, dy + ((n0 + nn) * g.m + gi * mg + m) * P, size_t(P) * sizeof(float));
  return out;
}

Status conv_grad_input(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(validate_conv_grad_input(call));
  const Tensor &dy = call.in[0], &w = call.in[1], &dx = call.out[0];
  ConvGeom g;
  ZERO_RETURN_IF_ERROR(conv_geometry(call, dx, w, dy, "dx", "w", "dy", &g));
  std::fill(dx.f32(), dx.f32() + dx.numel, 0.f);
  const int64_t K = g.kdim(), P = g.plane(), mg = g.mg(), nc = conv_chunk(g);
  float* col = scratch(0, K * nc * P);
  for (int64_t n0 = 0; n0 < g.n; n0 += nc) {
    const int64_t cur = std::min(nc, g.n - n0);
    for (int64_t gi = 0; gi < g.group; ++gi) {
      const float* dyb = gather_dy(g, dy.f32(), n0, cur, gi);
      sgemm(true, false, K, cur * P, mg, 1.f, w.f32() + gi * mg * K, dyb, 0.f, col);
      col2im(g, col, n0, cur, gi, dx.f32());
    }
  }
  return Status();
}

Status conv_grad_weight(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(validate_conv_grad_weight(call));
  const Tensor &dy = call.in[0], &x = call.in[1], &dw = call.out[0];
  ConvGeom g;
  ZERO_RETURN_IF_ERROR(conv_geometry(call, x, dw, dy, "x", "dw", "dy", &g));
  std::fill(dw.f32(), dw.f32() + dw.numel, 0.f);
  const int64_t K = g.kdim(), P = g.plane(), mg = g.mg(), nc = conv_chunk(g);
  float* col = scratch(0, K * nc * P);
  for (int64_t n0 = 0; n0 < g.n; n0 += nc) {
    const int64_t cur = std::min(nc, g.n - n0);
    for (int64_t gi = 0; gi < g.group; ++gi) {
      im2col(g, x.f32(), n0, cur, gi, col);
      const float* dyb = gather_dy(g, dy.f32(), n0, cur, gi);
      // dw_g [mg, K] += dy_g [mg, cur*P] . col^T
      sgemm(false, true, mg, K, cur * P, 1.f, dyb, col, 1.f, dw.f32() + gi * mg * K);
    }
  }
  return Status();
}

// ---- pooling -------------------------------------------------------------

// Calls f(out_index, h0, h1, w0, w1, padded) for each output position of one
// plane with its window clipped to the input; padded counts the window's
// positions inside the padded input (the kernel size but where a ceil_mode
// window reaches past the bottom/right padding), the count_include_pad
// divisor.
template <class F>
void for_each_window(const PoolGeom& g, F f) {
  for (int64_t oh = 0; oh < g.oh; ++oh) {
    const int64_t hs = oh * g.win.s[0] - g.win.p[0];
    const int64_t h0 = std::max<int64_t>(hs, 0), h1 = std::min(hs + g.win.k[0], g.h);
    const int64_t ph = std::min(hs + g.win.k[0], g.h + g.win.p[2]) - hs;
    for (int64_t ow = 0; ow < g.ow; ++ow) {
      const int64_t ws = ow * g.win.s[1] - g.win.p[1];
      const int64_t pw = std::min(ws + g.win.k[1], g.w + g.win.p[3]) - ws;
      f(oh * g.ow + ow, h0, h1, std::max<int64_t>(ws, 0), std::min(ws + g.win.k[1], g.w), ph * pw);
    }
  }
}

// The first maximum in row-major window order wins; a NaN wins over numbers
// (the first NaN), so NaN propagates.
Status max_pool(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(validate_max_pool(call));
  PoolGeom g;
  ZERO_RETURN_IF_ERROR(pool_geometry(call, call.in[0], call.out[0], "x", "y", &g));
  const int64_t hw = g.h * g.w, ohw = g.oh * g.ow;
  for (int64_t pl = 0; pl < g.planes; ++pl) {
    const float* x = call.in[0].f32() + pl * hw;
    float* y = call.out[0].f32() + pl * ohw;
    int64_t* am = call.num_out > 1 ? call.out[1].i64() + pl * ohw : nullptr;
    for_each_window(g, [&](int64_t o, int64_t h0, int64_t h1, int64_t w0, int64_t w1, int64_t) {
      int64_t best_i = h0 * g.w + w0;
      float best = x[best_i];
      for (int64_t ih = h0; ih < h1; ++ih)
        for (int64_t iw = w0; iw < w1; ++iw) {
          const float v = x[ih * g.w + iw];
          if (v > best || (v != v && best == best)) {
            best = v;
            best_i = ih * g.w + iw;
          }
        }
      y[o] = best;
      if (am) am[o] = best_i;
    });
  }
  return Status();
}

Status max_pool_grad(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(validate_max_pool_grad(call));
  PoolGeom g;
  ZERO_RETURN_IF_ERROR(pool_geometry(call, call.out[0], call.in[0], "dx", "dy", &g));
  const int64_t hw = g.h * g.w, ohw = g.oh * g.ow;
  float* dx = call.out[0].f32();
  std::fill(dx, dx + call.out[0].numel, 0.f);
  const float* dy = call.in[0].f32();
  const int64_t* am = call.in[1].i64();
  for (int64_t pl = 0; pl < g.planes; ++pl)
    for (int64_t o = 0; o < ohw; ++o) {
      const int64_t i = am[pl * ohw + o];
      if (i < 0 || i >= hw)
        return fail_data(call, "argmax " + std::to_string(i) + " out of range [0, " + std::to_string(hw) + ")");
      dx[pl * hw + i] += dy[pl * ohw + o];
    }
  return Status();
}

Status average_pool(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(validate_average_pool(call));
  PoolGeom g;
  ZERO_RETURN_IF_ERROR(pool_geometry(call, call.in[0], call.out[0], "x", "y", &g));
  const int64_t hw = g.h * g.w, ohw = g.oh * g.ow;
  for (int64_t pl = 0; pl < g.planes; ++pl) {
    const float* x = call.in[0].f32() + pl * hw;
    float* y = call.out[0].f32() + pl * ohw;
    for_each_window(g, [&](int64_t o, int64_t h0, int64_t h1, int64_t w0, int64_t w1, int64_t padded) {
      float sum = 0.f;
      for (int64_t ih = h0; ih < h1; ++ih)
        for (int64_t iw = w0; iw < w1; ++iw) sum += x[ih * g.w + iw];
      y[o] = sum / float(g.include_pad ? padded : (h1 - h0) * (w1 - w0));
    });
  }
  return Status();
}

Status average_pool_grad(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(validate_average_pool_grad(call));
  PoolGeom g;
  ZERO_RETURN_IF_ERROR(pool_geometry(call, call.out[0], call.in[0], "dx", "dy", &g));
  const int64_t hw = g.h * g.w, ohw = g.oh * g.ow;
  float* pdx = call.out[0].f32();
  std::fill(pdx, pdx + call.out[0].numel, 0.f);
  for (int64_t pl = 0; pl < g.planes; ++pl) {
    const float* dy = call.in[0].f32() + pl * ohw;
    float* dx = pdx + pl * hw;
    for_each_window(g, [&](int64_t o, int64_t h0, int64_t h1, int64_t w0, int64_t w1, int64_t padded) {
      const float v = dy[o] / float(g.include_pad ? padded : (h1 - h0) * (w1 - w0));
      for (int64_t ih = h0; ih < h1; ++ih)
        for (int64_t iw = w0; iw < w1; ++iw) dx[ih * g.w + iw] += v;
    });
  }
  return Status();
}

// ---- BatchNormalization (training mode) ----------------------------------

Status batch_norm(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(validate_batch_norm(call));
  const Tensor& x = call.in[0];
  BatchNormGeom g;
  ZERO_RETURN_IF_ERROR(batch_norm_geometry(call, x, &g));
  const float *px = x.f32(), *scale = call.in[1].f32(), *bias = call.in[2].f32();
  float *rmean = call.in[3].f32(), *rvar = call.in[4].f32(), *py = call.out[0].f32();
  float* smean = call.num_out > 1 ? call.out[1].f32() : nullptr;
  float* sinv = call.num_out > 2 ? call.out[2].f32() : nullptr;
  const double count = double(g.count()), mom = g.momentum;
  for (int64_t c = 0; c < g.c; ++c) {
    // Two passes in double: the mean, then the biased variance around it.
    double sum = 0;
    for (int64_t n = 0; n < g.n; ++n) {
      const float* p = px + (n * g.c + c) * g.inner;
      for (int64_t i = 0; i < g.inner; ++i) sum += p[i];
    }
    const double mean = sum / count;
    double sq = 0;
    for (int64_t n = 0; n < g.n; ++n) {
      const float* p = px + (n * g.c + c) * g.inner;
      for (int64_t i = 0; i < g.inner; ++i) sq += (p[i] - mean) * (p[i] - mean);
    }
    const double var = sq / count, inv = 1.0 / std::sqrt(var + g.eps);
    const double k = inv * double(scale[c]), b = double(bias[c]);
    for (int64_t n = 0; n < g.n; ++n) {
      const float* p = px + (n * g.c + c) * g.inner;
      float* q = py + (n * g.c + c) * g.inner;  // may be p
      for (int64_t i = 0; i < g.inner; ++i) q[i] = float((double(p[i]) - mean) * k + b);
    }
    rmean[c] = float((1.0 - mom) * double(rmean[c]) + mom * mean);
    rvar[c] = float((1.0 - mom) * double(rvar[c]) + mom * var * count / (count - 1.0));
    if (smean) smean[c] = float(mean);
    if (sinv) sinv[c] = float(inv);
  }
  return Status();
}

Status batch_norm_grad(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(validate_batch_norm_grad(call));
  const Tensor &dy = call.in[0], &x = call.in[1];
  BatchNormGeom g;
  ZERO_RETURN_IF_ERROR(batch_norm_geometry(call, x, &g));
  const float *pdy = dy.f32(), *px = x.f32(), *scale = call.in[2].f32(), *pmean = call.in[3].f32(),
              *pinv = call.in[4].f32();
  float* pdx = call.out[0].f32();
  const double count = double(g.count());
  for (int64_t c = 0; c < g.c; ++c) {
    const double mean = pmean[c], inv = pinv[c];
    double sum_dy = 0, sum_dy_xhat = 0;
    for (int64_t n = 0; n < g.n; ++n) {
      const int64_t at = (n * g.c + c) * g.inner;
      for (int64_t i = 0; i < g.inner; ++i) {
        const double d = pdy[at + i];
        sum_dy += d;
        sum_dy_xhat += d * (double(px[at + i]) - mean) * inv;
      }
    }
    // dx = scale * inv * (dy - mean(dy) - xhat * mean(dy * xhat)).
    const double k = double(scale[c]) * inv, mdy = count > 0 ? sum_dy / count : 0.0,
                 mdx = count > 0 ? sum_dy_xhat / count : 0.0;
    for (int64_t n = 0; n < g.n; ++n) {
      const int64_t at = (n * g.c + c) * g.inner;
      for (int64_t i = 0; i < g.inner; ++i) {
        const double xhat = (double(px[at + i]) - mean) * inv;
        pdx[at + i] = float(k * (double(pdy[at + i]) - mdy - xhat * mdx));
      }
    }
    if (call.num_out > 1) call.out[1].f32()[c] = float(sum_dy_xhat);
    if (call.num_out > 2) call.out[2].f32()[c] = float(sum_dy);
  }
  return Status();
}

// ---- optimizers ----------------------------------------------------------

// torch.optim.SGD (single tensor, dampening 0, no nesterov).
Status sgd_update(const KernelCall& call) {
  const plan::SgdAttrs* attrs;
  float* buf;
  ZERO_RETURN_IF_ERROR(sgd_geometry(call, &attrs, &buf));
  const Tensor &p = call.in[0], &g = call.in[1];
  const float lr = attrs->lr(), momentum = attrs->momentum(), wd = attrs->weight_decay();
  float* pp = p.f32();
  const float* pg = g.f32();
  for (int64_t i = 0; i < p.numel; ++i) {
    float d = wd != 0.f ? pg[i] + wd * pp[i] : pg[i];
    if (buf) d = buf[i] = momentum * buf[i] + d;
    pp[i] += -lr * d;
  }
  return Status();
}

// torch.optim.AdamW (single tensor, no amsgrad). Bias corrections in double
// like PyTorch's Python floats; exp_avg uses lerp as PyTorch does.
Status adamw_update(const KernelCall& call) {
  const plan::AdamWAttrs* attrs;
  ZERO_RETURN_IF_ERROR(adamw_geometry(call, &attrs));
  const Tensor &p = call.in[0], &g = call.in[1], &m = call.in[2], &v = call.in[3], &step = call.in[4];
  const int64_t t = step.i64()[0];
  if (t < 1) return fail_data(call, "step must be >= 1 (missing IncrementStep?)");
  const double lr = attrs->lr(), b1 = attrs->beta1(), b2 = attrs->beta2();
  const float decay = float(1.0 - lr * double(attrs->weight_decay()));
  const float w1 = float(1.0 - b1), fb2 = float(b2), w2 = float(1.0 - b2);
  const double bc1 = 1.0 - std::pow(b1, double(t)), bc2 = 1.0 - std::pow(b2, double(t));
  const float step_size = float(lr / bc1), bc2_sqrt = float(std::sqrt(bc2)), eps = attrs->eps();
  float *pp = p.f32(), *pm = m.f32(), *pv = v.f32();
  const float* pg = g.f32();
  for (int64_t i = 0; i < p.numel; ++i) {
    const float gi = pg[i];
    pp[i] *= decay;
    pm[i] = w1 < 0.5f ? pm[i] + w1 * (gi - pm[i]) : gi - (gi - pm[i]) * (1.f - w1);
    pv[i] = pv[i] * fb2 + w2 * gi * gi;
    const float denom = std::sqrt(pv[i]) / bc2_sqrt + eps;
    pp[i] += -step_size * (pm[i] / denom);
  }
  return Status();
}

Status increment_step(const KernelCall& call) {
  const Tensor& s = call.in[0];
  ZERO_RETURN_IF_ERROR(expect_step_scalar(call, s));
  s.i64()[0] += 1;
  return Status();
}

class CpuBackend final : public TableBackend {
 public:
  CpuBackend() {
    add_cpu_elementwise_kernels(*this);
    set(Opcode::Copy, copy);
    set(Opcode::Cast, cast);
    set(Opcode::Gemm, gemm);
    set(Opcode::MatMul, matmul);
    set(Opcode::Softmax, softmax_impl<false>);
    set(Opcode::LogSoftmax, softmax_impl<true>);
    set(Opcode::SoftmaxCrossEntropyLoss, loss_impl<true>);
    set(Opcode::NegativeLogLikelihoodLoss, loss_impl<false>);
    set(Opcode::ReduceSum, reduce_impl<false>);
    set(Opcode::ReduceMean, reduce_impl<true>);
    set(Opcode::Transpose, transpose);
    set(Opcode::Expand, expand);
    set(Opcode::Fill, fill);
    set(Opcode::Gather, gather, validate_gather);
    set(Opcode::Slice, slice, validate_slice);
    set(Opcode::Concat, concat, validate_concat);
    set(Opcode::Where, where, validate_where);
    set(Opcode::LayerNormalization, layer_norm, validate_layer_norm);
    set(Opcode::GatherGrad, gather_grad, validate_gather_grad);
    set(Opcode::SliceGrad, slice_grad, validate_slice_grad);
    set(Opcode::LayerNormalizationGrad, layer_norm_grad, validate_layer_norm_grad);
    set(Opcode::Conv, conv, validate_conv);
    set(Opcode::ConvGradInput, conv_grad_input, validate_conv_grad_input);
    set(Opcode::ConvGradWeight, conv_grad_weight, validate_conv_grad_weight);
    set(Opcode::MaxPool, max_pool, validate_max_pool);
    set(Opcode::MaxPoolGrad, max_pool_grad, validate_max_pool_grad);
    set(Opcode::AveragePool, average_pool, validate_average_pool);
    set(Opcode::AveragePoolGrad, average_pool_grad, validate_average_pool_grad);
    set(Opcode::BatchNormalization, batch_norm, validate_batch_norm);
    set(Opcode::BatchNormalizationGrad, batch_norm_grad, validate_batch_norm_grad);
    set(Opcode::SoftmaxGrad, softmax_grad_impl<false>);
    set(Opcode::LogSoftmaxGrad, softmax_grad_impl<true>);
    set(Opcode::SoftmaxCrossEntropyLossGrad, loss_grad_impl<true>);
    set(Opcode::NegativeLogLikelihoodLossGrad, loss_grad_impl<false>);
    set(Opcode::SgdUpdate, sgd_update);
    set(Opcode::AdamWUpdate, adamw_update);
    set(Opcode::IncrementStep, increment_step);
  }
  plan::Backend kind() const override { return plan::Backend::Cpu; }
};

}  // namespace

int64_t set_cpu_conv_scratch_limit(int64_t floats) {
  const int64_t old = conv_scratch_limit;
  conv_scratch_limit = std::max<int64_t>(1, floats);
  return old;
}

const Backend& cpu_backend() {
  static const CpuBackend backend;
  return backend;
}

}  // namespace zero
