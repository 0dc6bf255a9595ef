// The CUDA backend's host side for the elementwise ops (zero/elementwise_ops.h), Copy, Cast and Fill: the prepares
// (operand checks of kernel_checks.h and launch geometry, at load) and the launches (kernels.h); the device side is
// elementwise.cu.
#include <algorithm>
#include <climits>
#include <string>

#include "cuda/backend_internal.h"
#include "elementwise_kernels.h"

namespace zero {
namespace cuda_backend {
namespace {

// ---- elementwise --------------------------------------------------------------

// The output's shape with a's and b's strides broadcast to it in s[0], s[1].
Status prepare_binary(const KernelCall& call, Strided* g) {
  *g = shape_of(call.out[0]);
  return binary_geometry(call, g->s[0], g->s[1]);
}
Status prepare_comparison(const KernelCall& call, Strided* g) {
  *g = shape_of(call.out[0]);
  return predicate_geometry(call, /*logical=*/false, g->s[0], g->s[1]);
}
Status prepare_logical(const KernelCall& call, Strided* g) {
  *g = shape_of(call.out[0]);
  return predicate_geometry(call, /*logical=*/true, g->s[0], g->s[1]);
}
Status prepare_typed_binary(const KernelCall& call, Strided* g) {
  *g = shape_of(call.out[0]);
  return typed_binary_geometry(call, g->s[0], g->s[1]);
}

template <class Op>
Status binary(const KernelContext& ctx, const KernelCall& call, const Strided& g) {
  const Tensor &a = call.in[0], &b = call.in[1], &y = call.out[0];
  const bool same = a.numel == y.numel && (b.numel == y.numel || b.numel == 1);
  return launched(call, cuda::binary<Op>(ctx.device->stream, a.f32(), b.f32(), y.f32(), y.numel,
                                         same && b.numel == 1 && y.numel != 1, same ? nullptr : &g));
}

template <class Op>
Status unary(const KernelContext& ctx, const KernelCall& call, const NoState&) {
  const Tensor &x = call.in[0], &y = call.out[0];
  return launched(call, cuda::unary<Op>(ctx.device->stream, x.f32(), y.f32(), x.numel));
}

template <class Op>
Status derivative(const KernelContext& ctx, const KernelCall& call, const NoState&) {
  const Tensor &dy = call.in[0], &saved = call.in[1], &dx = call.out[0];
  return launched(call, cuda::derivative<Op>(ctx.device->stream, dy.f32(), saved.f32(), dx.f32(), dy.numel));
}

template <class Op>
Status comparison(const KernelContext& ctx, const KernelCall& call, const Strided& g) {
  const Tensor &a = call.in[0], &b = call.in[1], &y = call.out[0];
  return launched(call,
                  cuda::comparison<Op>(ctx.device->stream, a.data, b.data, a.dtype == DType::F32, y.i64(), y.numel, g));
}

template <class Op>
Status typed_binary(const KernelContext& ctx, const KernelCall& call, const Strided& g) {
  const Tensor &a = call.in[0], &b = call.in[1], &y = call.out[0];
  return launched(
      call, cuda::typed_binary<Op>(ctx.device->stream, a.data, b.data, a.dtype == DType::F32, y.data, y.numel, g));
}

template <class Op>
Status logical(const KernelContext& ctx, const KernelCall& call, const Strided& g) {
  const Tensor &a = call.in[0], &b = call.in[1], &y = call.out[0];
  return launched(call, cuda::logical<Op>(ctx.device->stream, a.i64(), b.i64(), y.i64(), y.numel, g));
}

template <class Op>
Status logical_unary(const KernelContext& ctx, const KernelCall& call, const NoState&) {
  const Tensor &x = call.in[0], &y = call.out[0];
  return launched(call, cuda::logical_unary<Op>(ctx.device->stream, x.i64(), y.i64(), x.numel));
}

template <class Op>
Status parameterized_unary(const KernelContext& ctx, const KernelCall& call, const elementwise::Params& p) {
  const Tensor &x = call.in[0], &y = call.out[0];
  return launched(call, cuda::parameterized_unary<Op>(ctx.device->stream, x.f32(), y.f32(), x.numel, p));
}

template <class Op>
Status parameterized_derivative(const KernelContext& ctx, const KernelCall& call, const elementwise::Params& p) {
  const Tensor &dy = call.in[0], &saved = call.in[1], &dx = call.out[0];
  return launched(call,
                  cuda::parameterized_derivative<Op>(ctx.device->stream, dy.f32(), saved.f32(), dx.f32(), dy.numel, p));
}

Status copy(const KernelContext& ctx, const KernelCall& call, const NoState&) {
  const Tensor &x = call.in[0], &y = call.out[0];
  if (x.data == y.data || x.numel == 0) return Status();
  return launched(call, cudaMemcpyAsync(y.data, x.data, size_t(x.numel) * dtype_size(x.dtype), cudaMemcpyDeviceToDevice,
                                        ctx.device->stream));
}

Status cast(const KernelContext& ctx, const KernelCall& call, const NoState& none) {
  const Tensor &x = call.in[0], &y = call.out[0];
  if (x.dtype == y.dtype) return copy(ctx, call, none);
  if (x.dtype == DType::I64) return launched(call, cuda::cast_i64_f32(ctx.device->stream, x.i64(), y.f32(), x.numel));
  return launched(call, cuda::cast_f32_i64(ctx.device->stream, x.f32(), y.i64(), x.numel));
}

Status dropout(const KernelContext& ctx, const KernelCall& call, const DropoutGeom& g) {
  return launched(call, cuda::dropout(ctx.device->stream, call.in[0].f32(), call.out[0].f32(), call.in[0].numel,
                                      call.in[1].i64(), ctx.seed, g.micro_step, ctx.rank, g.stream, g.ratio,
                                      g.scale));
}

Status fill(const KernelContext& ctx, const KernelCall& call, const float& v) {
  const Tensor& y = call.out[0];
  if (y.dtype == DType::F32) return launched(call, cuda::fill_f32(ctx.device->stream, y.f32(), v, y.numel));
  return launched(call, cuda::fill_i64(ctx.device->stream, y.i64(), int64_t(v), y.numel));
}

}  // namespace

void add_cuda_elementwise_kernels(TableBackend& backend) {
  ZERO_SET_ELEMENTWISE_KERNELS()
  backend.set(Opcode::Copy, define_kernel<check_only<check_copy>, copy>());
  backend.set(Opcode::Cast, define_kernel<check_only<check_cast>, cast>());
  backend.set(Opcode::Fill, define_kernel<fill_value, fill>());
  backend.set(Opcode::Dropout, define_kernel<dropout_geometry, dropout>());
  backend.set(Opcode::DropoutGrad, define_kernel<dropout_geometry, dropout>());
}

}  // namespace cuda_backend

}  // namespace zero
