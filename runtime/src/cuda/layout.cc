// The CUDA backend's host side for reductions, layout and indexing (Gather, Slice, Concat, Where): the prepares
// (operand checks of kernel_checks.h and launch geometry, at load) and the launches (kernels.h); the device side is
// layout.cu.
#include <algorithm>
#include <climits>
#include <string>

#include "cuda/backend_internal.h"

namespace zero {
namespace cuda_backend {
namespace {

// ---- reductions and layout ------------------------------------------------------

// The kept and reduced dimensions with their input strides, and the scratch:
// partial sums of a split reduction, or a copy of an input the output
// overwrites (zero/kernel_scratch.h cuda_reduce_bytes).
struct ReduceState {
  Strided kept, red;
  int64_t out_numel, count;
  size_t scratch_bytes;
};

size_t reduce_scratch_bytes(const ReduceState& s) { return s.scratch_bytes; }

Status prepare_reduce(const KernelCall& call, ReduceState* s) {
  const Tensor &x = call.in[0], &y = call.out[0];
  bool reduced[kMaxRank];
  ZERO_RETURN_IF_ERROR(reduce_geometry(call, reduced, &s->out_numel, &s->count));
  int64_t xs[kMaxRank];
  contiguous_strides(x, xs);
  for (int i = 0; i < x.ndim; ++i) {
    Strided& t = reduced[i] ? s->red : s->kept;
    t.dims[t.ndim] = x.dims[i];
    t.s[0][t.ndim] = xs[i];
    ++t.ndim;
  }
  ZERO_RETURN_IF_ERROR(check_grid(call, s->out_numel));
  s->scratch_bytes = size_t(kernel_scratch::cuda_reduce_bytes(x.numel, s->out_numel, s->count, x.data == y.data));
  return Status();
}

template <reduce::Kind kKind>
Status reduce(const KernelContext& ctx, const KernelCall& call, const ReduceState& s) {
  const Tensor &x = call.in[0], &y = call.out[0];
  const DeviceContext& dev = *ctx.device;
  const int64_t out_numel = s.out_numel, count = s.count;
  const int64_t slices = kernel_scratch::reduce_slices(out_numel, count);
  if (slices > 1) {
    // Partial sums in scratch, then y: reading all of x before writing y
    // makes aliasing harmless.
    return launched(call, cuda::reduce(dev.stream, x.f32(), y.f32(), s.kept, out_numel, s.red, count, kKind,
                                       static_cast<double*>(ctx.scratch)));
  }
  if (x.data == y.data && out_numel != x.numel) {
    // Reading and writing one buffer across blocks: reduce from a copy.
    ZERO_RETURN_IF_ERROR(launched(call, cudaMemcpyAsync(ctx.scratch, x.data, size_t(x.numel) * sizeof(float),
                                                        cudaMemcpyDeviceToDevice, dev.stream)));
    return launched(call, cuda::reduce(dev.stream, static_cast<float*>(ctx.scratch), y.f32(), s.kept, out_numel, s.red,
                                       count, kKind, nullptr));
  }
  return launched(call, cuda::reduce(dev.stream, x.f32(), y.f32(), s.kept, out_numel, s.red, count, kKind, nullptr));
}

// ---- ArgMax, ArgMin, CumSum ----------------------------------------------------

Status prepare_arg_reduce(const KernelCall& call, ArgReduceGeom* g) {
  ZERO_RETURN_IF_ERROR(arg_reduce_geometry(call, g));
  return check_grid(call, g->outer * g->inner);
}

template <bool kMax>
Status arg_reduce(const KernelContext& ctx, const KernelCall& call, const ArgReduceGeom& g) {
  return launched(call, cuda::arg_reduce(ctx.device->stream, call.in[0].f32(), call.out[0].i64(), g.outer, g.n, g.inner,
                                         kMax, g.last));
}

Status prepare_cumsum(const KernelCall& call, CumSumGeom* g) {
  ZERO_RETURN_IF_ERROR(cumsum_geometry(call, g));
  return check_grid(call, g->outer * g->inner);
}

Status cumsum(const KernelContext& ctx, const KernelCall& call, const CumSumGeom& g) {
  const Tensor &x = call.in[0], &y = call.out[0];
  return launched(call, cuda::cumsum(ctx.device->stream, x.data, y.data, x.dtype == DType::F32, g.outer, g.n, g.inner,
                                     g.exclusive, g.reverse));
}

// The output's shape with the source strides in s[0] (Transpose, Expand,
// Where with three operands' strides).
Status prepare_transpose(const KernelCall& call, Strided* g) {
  *g = shape_of(call.out[0]);
  return transpose_geometry(call, g->s[0]);
}
Status prepare_expand(const KernelCall& call, Strided* g) {
  *g = shape_of(call.out[0]);
  return expand_geometry(call, g->s[0]);
}

Status transpose(const KernelContext& ctx, const KernelCall& call, const Strided& g) {
  const Tensor &x = call.in[0], &y = call.out[0];
  return launched(call, cuda::strided_gather(ctx.device->stream, x.data, y.data, elem_size(x), g, y.numel));
}

Status expand(const KernelContext& ctx, const KernelCall& call, const Strided& g) {
  const Tensor &x = call.in[0], &y = call.out[0];
  if (x.data == y.data) return Status();
  return launched(call, cuda::strided_gather(ctx.device->stream, x.data, y.data, elem_size(x), g, y.numel));
}

// ---- Gather, Slice, Concat, Where -------------------------------------------------

Status gather(const KernelContext& ctx, const KernelCall& call, const GatherSplit& g) {
  const Tensor &data = call.in[0], &indices = call.in[1], &y = call.out[0];
  return launched(call, cuda::gather(ctx.device->stream, data.data, indices.i64(), y.data, elem_size(data), g.outer,
                                     g.n, g.inner, g.q, int(Opcode::Gather), ctx.device->err));
}

Status gather_grad(const KernelContext& ctx, const KernelCall& call, const GatherSplit& g) {
  const Tensor &dy = call.in[0], &indices = call.in[1], &dd = call.out[0];
  const DeviceContext& dev = *ctx.device;
  ZERO_RETURN_IF_ERROR(launched(call, cudaMemsetAsync(dd.data, 0, size_t(dd.numel) * sizeof(float), dev.stream)));
  return launched(call, cuda::gather_grad(dev.stream, dy.f32(), indices.i64(), dd.f32(), g.outer, g.n, g.inner, g.q,
                                          int(Opcode::GatherGrad), dev.err));
}

// The slice's (or dy's) shape with the strides into x (dx) in s[0], and the
// element offset of its first element.
struct SliceState {
  Strided g;
  int64_t base;
};

// Slice (kGrad false) walks y, SliceGrad dy; the strides index x or dx.
template <Status (*kValidate)(const KernelCall&, SliceGeom*), bool kGrad>
Status prepare_slice(const KernelCall& call, SliceState* s) {
  SliceGeom geom;
  ZERO_RETURN_IF_ERROR(kValidate(call, &geom));
  const Tensor& walked = kGrad ? call.in[0] : call.out[0];
  s->g = shape_of(walked);
  std::copy(geom.strides, geom.strides + walked.ndim, s->g.s[0]);
  s->base = geom.base;
  return Status();
}

Status slice(const KernelContext& ctx, const KernelCall& call, const SliceState& s) {
  const Tensor &x = call.in[0], &y = call.out[0];
  if (x.data == y.data) return Status();
  const int es = elem_size(x);
  return launched(call, cuda::strided_gather(ctx.device->stream, static_cast<const char*>(x.data) + s.base * es, y.data,
                                             es, s.g, y.numel));
}

Status slice_grad(const KernelContext& ctx, const KernelCall& call, const SliceState& s) {
  const Tensor &dy = call.in[0], &dx = call.out[0];
  const DeviceContext& dev = *ctx.device;
  ZERO_RETURN_IF_ERROR(launched(call, cudaMemsetAsync(dx.data, 0, size_t(dx.numel) * sizeof(float), dev.stream)));
  return launched(call, cuda::strided_scatter(dev.stream, dy.f32(), dx.f32() + s.base, s.g, dy.numel));
}

Status concat(const KernelContext& ctx, const KernelCall& call, const ConcatGeom& g) {
  const Tensor& y = call.out[0];
  const cudaStream_t stream = ctx.device->stream;
  const int ax = g.axis;
  const int64_t outer = g.outer, inner = g.inner;
  const size_t es = dtype_size(y.dtype), out_row = size_t(y.dims[ax] * inner) * es;
  char* dst = static_cast<char*>(y.data);
  size_t at = 0;
  for (int k = 0; k < call.num_in; ++k) {
    const Tensor& x = call.in[k];
    const size_t row = size_t(x.dims[ax] * inner) * es;
    if (row > 0 && outer == 1) {
      ZERO_RETURN_IF_ERROR(launched(call, cudaMemcpyAsync(dst + at, x.data, row, cudaMemcpyDeviceToDevice, stream)));
    } else if (row > 0 && outer > 0 && out_row <= size_t(INT_MAX)) {
      ZERO_RETURN_IF_ERROR(launched(call, cudaMemcpy2DAsync(dst + at, out_row, x.data, row, row, size_t(outer),
                                                            cudaMemcpyDeviceToDevice, stream)));
    } else if (row > 0) {
      // cudaMemcpy2D rejects pitches above cudaDevAttrMaxPitch (2^31 - 1 bytes).
      for (int64_t o = 0; o < outer; ++o)
        ZERO_RETURN_IF_ERROR(launched(
            call, cudaMemcpyAsync(dst + size_t(o) * out_row + at, static_cast<const char*>(x.data) + size_t(o) * row,
                                  row, cudaMemcpyDeviceToDevice, stream)));
    }
    at += row;
  }
  return Status();
}

Status prepare_where(const KernelCall& call, Strided* g) {
  *g = shape_of(call.out[0]);
  return where_geometry(call, g->s[0], g->s[1], g->s[2]);
}

Status where(const KernelContext& ctx, const KernelCall& call, const Strided& g) {
  const Tensor &c = call.in[0], &x = call.in[1], &y = call.in[2], &out = call.out[0];
  return launched(call,
                  cuda::where(ctx.device->stream, c.i64(), x.data, y.data, out.data, elem_size(out), g, out.numel));
}

}  // namespace

void add_cuda_layout_kernels(TableBackend& backend) {
  using reduce::Kind;
  backend.set(Opcode::ReduceSum, define_kernel<prepare_reduce, reduce<Kind::Sum>, reduce_scratch_bytes>());
  backend.set(Opcode::ReduceMean, define_kernel<prepare_reduce, reduce<Kind::Mean>, reduce_scratch_bytes>());
  backend.set(Opcode::ReduceMax, define_kernel<prepare_reduce, reduce<Kind::Max>, reduce_scratch_bytes>());
  backend.set(Opcode::ReduceMin, define_kernel<prepare_reduce, reduce<Kind::Min>, reduce_scratch_bytes>());
  backend.set(Opcode::ReduceProd, define_kernel<prepare_reduce, reduce<Kind::Prod>, reduce_scratch_bytes>());
  backend.set(Opcode::ReduceL2, define_kernel<prepare_reduce, reduce<Kind::L2>, reduce_scratch_bytes>());
  backend.set(Opcode::ArgMax, define_kernel<prepare_arg_reduce, arg_reduce<true>>());
  backend.set(Opcode::ArgMin, define_kernel<prepare_arg_reduce, arg_reduce<false>>());
  backend.set(Opcode::CumSum, define_kernel<prepare_cumsum, cumsum>());
  backend.set(Opcode::Transpose, define_kernel<prepare_transpose, transpose>());
  backend.set(Opcode::Expand, define_kernel<prepare_expand, expand>());
  backend.set(Opcode::Gather, define_kernel<validate_gather, gather>());
  backend.set(Opcode::GatherGrad, define_kernel<validate_gather_grad, gather_grad>());
  backend.set(Opcode::Slice, define_kernel<prepare_slice<validate_slice, false>, slice>());
  backend.set(Opcode::SliceGrad, define_kernel<prepare_slice<validate_slice_grad, true>, slice_grad>());
  backend.set(Opcode::Concat, define_kernel<validate_concat, concat>());
  backend.set(Opcode::Where, define_kernel<prepare_where, where>());
}

}  // namespace cuda_backend

}  // namespace zero
