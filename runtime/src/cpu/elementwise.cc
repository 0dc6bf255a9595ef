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
#include "zero/training_math.h"
#include "zero/elementwise_ops.h"

namespace zero {
namespace {

using plan::Opcode;

// Strides of a and b broadcast to y (binary ops, comparisons, logical ops).
struct BroadcastGeom {
  int64_t sa[kMaxRank], sb[kMaxRank];
};

Status prepare_binary(const KernelCall& call, BroadcastGeom* g) { return binary_geometry(call, g->sa, g->sb); }
Status prepare_comparison(const KernelCall& call, BroadcastGeom* g) {
  return predicate_geometry(call, /*logical=*/false, g->sa, g->sb);
}
Status prepare_logical(const KernelCall& call, BroadcastGeom* g) {
  return predicate_geometry(call, /*logical=*/true, g->sa, g->sb);
}
Status prepare_typed_binary(const KernelCall& call, BroadcastGeom* g) {
  return typed_binary_geometry(call, g->sa, g->sb);
}

template <class Op>
Status binary(const KernelContext&, const KernelCall& call, const BroadcastGeom& g) {
  const Tensor &a = call.in[0], &b = call.in[1], &y = call.out[0];
  const float *pa = a.f32(), *pb = b.f32();
  float* py = y.f32();
  if (a.numel == y.numel && b.numel == y.numel) {
    for (int64_t i = 0; i < y.numel; ++i) py[i] = Op::forward(pa[i], pb[i]);
  } else if (a.numel == y.numel && b.numel == 1) {
    const float s = pb[0];
    for (int64_t i = 0; i < y.numel; ++i) py[i] = Op::forward(pa[i], s);
  } else {
    for_each_broadcast(y, g.sa, g.sb, [&](int64_t o, int64_t i, int64_t j) { py[o] = Op::forward(pa[i], pb[j]); });
  }
  return Status();
}

template <class Op>
Status unary(const KernelContext&, const KernelCall& call, const NoState&) {
  const Tensor &x = call.in[0], &y = call.out[0];
  const float* px = x.f32();
  float* py = y.f32();
  for (int64_t i = 0; i < x.numel; ++i) py[i] = Op::forward(px[i]);
  return Status();
}

// (dy, saved) -> dx, all the same shape.
template <class Op>
Status derivative(const KernelContext&, const KernelCall& call, const NoState&) {
  const Tensor &dy = call.in[0], &saved = call.in[1], &dx = call.out[0];
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

template <class Op>
Status comparison(const KernelContext&, const KernelCall& call, const BroadcastGeom& g) {
  const Tensor &a = call.in[0], &b = call.in[1], &y = call.out[0];
  if (a.dtype == DType::F32)
    broadcast_apply<float, int64_t>(a, b, y, g.sa, g.sb, [](float u, float v) { return int64_t(Op::compare(u, v)); });
  else
    broadcast_apply<int64_t, int64_t>(a, b, y, g.sa, g.sb,
                                      [](int64_t u, int64_t v) { return int64_t(Op::compare(u, v)); });
  return Status();
}

template <class Op>
Status typed_binary(const KernelContext&, const KernelCall& call, const BroadcastGeom& g) {
  const Tensor &a = call.in[0], &b = call.in[1], &y = call.out[0];
  if (a.dtype == DType::F32)
    broadcast_apply<float, float>(a, b, y, g.sa, g.sb, [](float u, float v) { return Op::forward(u, v); });
  else
    broadcast_apply<int64_t, int64_t>(a, b, y, g.sa, g.sb, [](int64_t u, int64_t v) { return Op::forward(u, v); });
  return Status();
}

template <class Op>
Status logical(const KernelContext&, const KernelCall& call, const BroadcastGeom& g) {
  broadcast_apply<int64_t, int64_t>(call.in[0], call.in[1], call.out[0], g.sa, g.sb,
                                    [](int64_t u, int64_t v) { return int64_t(Op::logical(u != 0, v != 0)); });
  return Status();
}

template <class Op>
Status logical_unary(const KernelContext&, const KernelCall& call, const NoState&) {
  const Tensor &x = call.in[0], &y = call.out[0];
  const int64_t* px = x.i64();
  int64_t* py = y.i64();
  for (int64_t i = 0; i < x.numel; ++i) py[i] = int64_t(Op::logical(px[i] != 0));
  return Status();
}

template <class Op>
Status parameterized_unary(const KernelContext&, const KernelCall& call, const elementwise::Params& p) {
  const Tensor &x = call.in[0], &y = call.out[0];
  const float* px = x.f32();
  float* py = y.f32();
  for (int64_t i = 0; i < x.numel; ++i) py[i] = Op::forward(px[i], p);
  return Status();
}

template <class Op>
Status parameterized_derivative(const KernelContext&, const KernelCall& call, const elementwise::Params& p) {
  const Tensor &dy = call.in[0], &saved = call.in[1], &dx = call.out[0];
  const float *pdy = dy.f32(), *ps = saved.f32();
  float* pdx = dx.f32();
  for (int64_t i = 0; i < dy.numel; ++i) pdx[i] = Op::derivative(pdy[i], ps[i], p);
  return Status();
}

// Any dtype; memmove keeps exact aliasing harmless.
Status copy(const KernelContext&, const KernelCall& call, const NoState&) {
  const Tensor &x = call.in[0], &y = call.out[0];
  if (x.data != y.data) std::memmove(y.data, x.data, x.numel * dtype_size(x.dtype));
  return Status();
}

Status cast(const KernelContext& ctx, const KernelCall& call, const NoState& none) {
  const Tensor &x = call.in[0], &y = call.out[0];
  if (x.dtype == y.dtype) return copy(ctx, call, none);
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

// Dropout and its gradient apply the same mask: keyed by the run's seed, the
// step (the plan's counter), the micro-step, the rank and the stream.
Status dropout(const KernelContext& ctx, const KernelCall& call, const DropoutGeom& g) {
  const uint64_t key =
      training::dropout_key(ctx.seed, uint64_t(call.in[1].i64()[0]), g.micro_step, ctx.rank, g.stream);
  const float* x = call.in[0].f32();
  float* y = call.out[0].f32();
  for (int64_t i = 0; i < call.in[0].numel; ++i)
    y[i] = training::dropout_keeps(key, uint64_t(i), g.ratio) ? x[i] * g.scale : 0.f;
  return Status();
}

}  // namespace

void add_cpu_elementwise_kernels(TableBackend& backend) {
  backend.set(Opcode::Dropout, define_kernel<dropout_geometry, dropout>());
  backend.set(Opcode::DropoutGrad, define_kernel<dropout_geometry, dropout>());
  backend.set(Opcode::Copy, define_kernel<check_only<check_copy>, copy>());
  backend.set(Opcode::Cast, define_kernel<check_only<check_cast>, cast>());
  ZERO_SET_ELEMENTWISE_KERNELS()
}

}  // namespace zero
