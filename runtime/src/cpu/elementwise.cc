// CPU loops of the elementwise ops (zero/elementwise_ops.h). They stay
// correct when the output aliases an input exactly, which the compiler uses
// for in-place elementwise ops.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "cpu/broadcast.h"
#include "cpu/kernels.h"
#include "elementwise_kernels.h"
#include "kernel_checks.h"
#include "zero/elementwise_ops.h"

namespace zero {
namespace {

using plan::Opcode;

template <class Op, bool kRun>
Status binary(const KernelCall& call) {
  const Tensor &a = call.in[0], &b = call.in[1], &y = call.out[0];
  int64_t sa[kMaxRank], sb[kMaxRank];
  ZERO_RETURN_IF_ERROR(binary_geometry(call, sa, sb));
  if (!kRun) return Status();
  const float *pa = a.f32(), *pb = b.f32();
  float* py = y.f32();
  if (a.numel == y.numel && b.numel == y.numel) {
    for (int64_t i = 0; i < y.numel; ++i) py[i] = Op::forward(pa[i], pb[i]);
  } else if (a.numel == y.numel && b.numel == 1) {
    const float s = pb[0];
    for (int64_t i = 0; i < y.numel; ++i) py[i] = Op::forward(pa[i], s);
  } else {
    for_each_broadcast(y, sa, sb, [&](int64_t o, int64_t i, int64_t j) { py[o] = Op::forward(pa[i], pb[j]); });
  }
  return Status();
}

template <class Op, bool kRun>
Status unary(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(check_unary(call));
  if (!kRun) return Status();
  const float* px = x.f32();
  float* py = y.f32();
  for (int64_t i = 0; i < x.numel; ++i) py[i] = Op::forward(px[i]);
  return Status();
}

// (dy, saved) -> dx, all the same shape.
template <class Op, bool kRun>
Status derivative(const KernelCall& call) {
  const Tensor &dy = call.in[0], &saved = call.in[1], &dx = call.out[0];
  ZERO_RETURN_IF_ERROR(check_unary_grad(call));
  if (!kRun) return Status();
  const float *pdy = dy.f32(), *ps = saved.f32();
  float* pdx = dx.f32();
  for (int64_t i = 0; i < dy.numel; ++i) pdx[i] = Op::derivative(pdy[i], ps[i]);
  return Status();
}

// y[o] = f(a[i], b[j]) over y's shape, a and b broadcast to it.
template <class T, class R, class F>
void broadcast_apply(const Tensor& a, const Tensor& b, const Tensor& y, const int64_t* sa, const int64_t* sb, F f) {
  const T *pa = static_cast<const T*>(a.data), *pb = static_cast<const T*>(b.data);
  R* py = static_cast<R*>(y.data);
  for_each_broadcast(y, sa, sb, [&](int64_t o, int64_t i, int64_t j) { py[o] = f(pa[i], pb[j]); });
}

template <class Op, bool kRun>
Status comparison(const KernelCall& call) {
  const Tensor &a = call.in[0], &b = call.in[1], &y = call.out[0];
  int64_t sa[kMaxRank], sb[kMaxRank];
  ZERO_RETURN_IF_ERROR(predicate_geometry(call, /*logical=*/false, sa, sb));
  if (!kRun) return Status();
  if (a.dtype == DType::F32)
    broadcast_apply<float, int64_t>(a, b, y, sa, sb, [](float u, float v) { return int64_t(Op::compare(u, v)); });
  else
    broadcast_apply<int64_t, int64_t>(a, b, y, sa, sb, [](int64_t u, int64_t v) { return int64_t(Op::compare(u, v)); });
  return Status();
}

template <class Op, bool kRun>
Status logical(const KernelCall& call) {
  int64_t sa[kMaxRank], sb[kMaxRank];
  ZERO_RETURN_IF_ERROR(predicate_geometry(call, /*logical=*/true, sa, sb));
  if (!kRun) return Status();
  broadcast_apply<int64_t, int64_t>(call.in[0], call.in[1], call.out[0], sa, sb,
                                    [](int64_t u, int64_t v) { return int64_t(Op::logical(u != 0, v != 0)); });
  return Status();
}

template <class Op, bool kRun>
Status logical_unary(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(check_logical_unary(call));
  if (!kRun) return Status();
  const int64_t* px = x.i64();
  int64_t* py = y.i64();
  for (int64_t i = 0; i < x.numel; ++i) py[i] = int64_t(Op::logical(px[i] != 0));
  return Status();
}

template <class Op, bool kRun>
Status parameterized_unary(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(check_unary(call));
  if (!kRun) return Status();
  const elementwise::Params p = elementwise_params(call);
  const float* px = x.f32();
  float* py = y.f32();
  for (int64_t i = 0; i < x.numel; ++i) py[i] = Op::forward(px[i], p);
  return Status();
}

template <class Op, bool kRun>
Status parameterized_derivative(const KernelCall& call) {
  const Tensor &dy = call.in[0], &saved = call.in[1], &dx = call.out[0];
  ZERO_RETURN_IF_ERROR(check_unary_grad(call));
  if (!kRun) return Status();
  const elementwise::Params p = elementwise_params(call);
  const float *pdy = dy.f32(), *ps = saved.f32();
  float* pdx = dx.f32();
  for (int64_t i = 0; i < dy.numel; ++i) pdx[i] = Op::derivative(pdy[i], ps[i], p);
  return Status();
}

// Any dtype; memmove keeps exact aliasing harmless.
template <bool kRun>
Status copy(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(check_copy(call));
  if (!kRun) return Status();
  if (x.data != y.data) std::memmove(y.data, x.data, x.numel * dtype_size(x.dtype));
  return Status();
}

template <bool kRun>
Status cast(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, x, y, "input and output"));
  if (!kRun) return Status();
  if (x.dtype == y.dtype) return copy<true>(call);
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
      if (std::isnan(v))
        py[i] = 0;
      else if (v >= 9.2233720368547758e18f)
        py[i] = INT64_MAX;
      else if (v <= -9.2233720368547758e18f)
        py[i] = INT64_MIN;
      else
        py[i] = static_cast<int64_t>(v);
    }
  }
  return Status();
}

}  // namespace

void add_cpu_elementwise_kernels(TableBackend& backend) {
  backend.set(Opcode::Copy, copy<true>, copy<false>);
  backend.set(Opcode::Cast, cast<true>, cast<false>);
  ZERO_SET_ELEMENTWISE_KERNELS()
}

}  // namespace zero
