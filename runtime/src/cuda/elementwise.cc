// The CUDA backend's host side for the elementwise ops (zero/elementwise_ops.h), Copy, Cast and Fill: operand checks
// (kernel_checks.h, run at load with kRun = false) and the launches
// (kernels.h); the device side is elementwise.cu.
#include <algorithm>
#include <climits>
#include <string>

#include "cuda/backend_internal.h"
#include "elementwise_kernels.h"

namespace zero {
namespace cuda_backend {
namespace {

// ---- elementwise --------------------------------------------------------------

template <class Op, bool kRun>
Status binary(const KernelCall& call) {
  const Tensor &a = call.in[0], &b = call.in[1], &y = call.out[0];
  Strided g = shape_of(y);
  ZERO_RETURN_IF_ERROR(binary_geometry(call, g.s[0], g.s[1]));
  if (!kRun) return Status();
  const bool same = a.numel == y.numel && (b.numel == y.numel || b.numel == 1);
  return launched(call, cuda::binary<Op>(g_dev->stream, a.f32(), b.f32(), y.f32(), y.numel,
                                         same && b.numel == 1 && y.numel != 1, same ? nullptr : &g));
}

template <class Op, bool kRun>
Status unary(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(check_unary(call));
  if (!kRun) return Status();
  return launched(call, cuda::unary<Op>(g_dev->stream, x.f32(), y.f32(), x.numel));
}

template <class Op, bool kRun>
Status derivative(const KernelCall& call) {
  const Tensor &dy = call.in[0], &saved = call.in[1], &dx = call.out[0];
  ZERO_RETURN_IF_ERROR(check_unary_grad(call));
  if (!kRun) return Status();
  return launched(call, cuda::derivative<Op>(g_dev->stream, dy.f32(), saved.f32(), dx.f32(), dy.numel));
}

template <class Op, bool kRun>
Status comparison(const KernelCall& call) {
  const Tensor &a = call.in[0], &b = call.in[1], &y = call.out[0];
  Strided g = shape_of(y);
  ZERO_RETURN_IF_ERROR(predicate_geometry(call, /*logical=*/false, g.s[0], g.s[1]));
  if (!kRun) return Status();
  return launched(call,
                  cuda::comparison<Op>(g_dev->stream, a.data, b.data, a.dtype == DType::F32, y.i64(), y.numel, g));
}

template <class Op, bool kRun>
Status logical(const KernelCall& call) {
  const Tensor &a = call.in[0], &b = call.in[1], &y = call.out[0];
  Strided g = shape_of(y);
  ZERO_RETURN_IF_ERROR(predicate_geometry(call, /*logical=*/true, g.s[0], g.s[1]));
  if (!kRun) return Status();
  return launched(call, cuda::logical<Op>(g_dev->stream, a.i64(), b.i64(), y.i64(), y.numel, g));
}

template <class Op, bool kRun>
Status logical_unary(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(check_logical_unary(call));
  if (!kRun) return Status();
  return launched(call, cuda::logical_unary<Op>(g_dev->stream, x.i64(), y.i64(), x.numel));
}

template <class Op, bool kRun>
Status parameterized_unary(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(check_unary(call));
  if (!kRun) return Status();
  return launched(call,
                  cuda::parameterized_unary<Op>(g_dev->stream, x.f32(), y.f32(), x.numel, elementwise_params(call)));
}

template <class Op, bool kRun>
Status parameterized_derivative(const KernelCall& call) {
  const Tensor &dy = call.in[0], &saved = call.in[1], &dx = call.out[0];
  ZERO_RETURN_IF_ERROR(check_unary_grad(call));
  if (!kRun) return Status();
  return launched(call, cuda::parameterized_derivative<Op>(g_dev->stream, dy.f32(), saved.f32(), dx.f32(), dy.numel,
                                                           elementwise_params(call)));
}

template <bool kRun>
Status copy(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(check_copy(call));
  if (!kRun || x.data == y.data || x.numel == 0) return Status();
  return launched(call, cudaMemcpyAsync(y.data, x.data, size_t(x.numel) * dtype_size(x.dtype), cudaMemcpyDeviceToDevice,
                                        g_dev->stream));
}

template <bool kRun>
Status cast(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, x, y, "input and output"));
  if (x.dtype == y.dtype) return copy<kRun>(call);
  if (!kRun) return Status();
  if (x.dtype == DType::I64) return launched(call, cuda::cast_i64_f32(g_dev->stream, x.i64(), y.f32(), x.numel));
  return launched(call, cuda::cast_f32_i64(g_dev->stream, x.f32(), y.i64(), x.numel));
}

template <bool kRun>
Status fill(const KernelCall& call) {
  const Tensor& y = call.out[0];
  if (!kRun) return Status();
  const auto* attrs = call.inst->attrs_as_FillAttrs();
  const float v = attrs ? attrs->value() : 0.f;
  if (y.dtype == DType::F32) return launched(call, cuda::fill_f32(g_dev->stream, y.f32(), v, y.numel));
  return launched(call, cuda::fill_i64(g_dev->stream, y.i64(), int64_t(v), y.numel));
}

}  // namespace

void add_cuda_elementwise_kernels(TableBackend& backend) {
  ZERO_SET_ELEMENTWISE_KERNELS()
  ZERO_CUDA_SET(Copy, copy);
  ZERO_CUDA_SET(Cast, cast);
  ZERO_CUDA_SET(Fill, fill);
}

}  // namespace cuda_backend

}  // namespace zero
