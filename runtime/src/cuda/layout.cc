// The CUDA backend's host side for reductions, layout and indexing (Gather, Slice, Concat, Where, GatherElements,
// ScatterElements, GatherND, ScatterND, TopK): the prepares
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

// ---- GatherElements, ScatterElements, GatherND, ScatterND, TopK -----------

cuda::ElementsArgs elements_args(const KernelCall& call, const ElementsGeom& g) {
  cuda::ElementsArgs a;
  a.rows.ndim = g.rows.ndim;
  for (int d = 0; d < g.rows.ndim; ++d) {
    a.rows.dims[d] = g.rows.dims[d];
    a.rows.s[0][d] = g.istrides[d];
    a.rows.s[1][d] = g.dstrides[d];
  }
  a.nrows = g.rows.numel;
  a.len = g.len;
  a.istep = g.istep;
  a.n = g.n;
  a.dstep = g.dstep;
  a.opcode = int(call.inst->opcode());
  return a;
}

// The checks of kernel_checks.h, then the launch arguments.
template <Status (*validate)(const KernelCall&, ElementsGeom*)>
Status prepare_elements(const KernelCall& call, cuda::ElementsArgs* a) {
  ElementsGeom g;
  ZERO_RETURN_IF_ERROR(validate(call, &g));
  *a = elements_args(call, g);
  return check_grid(call, a->nrows);
}

Status gather_elements(const KernelContext& ctx, const KernelCall& call, const cuda::ElementsArgs& a) {
  return launched(call, cuda::gather_elements(ctx.device->stream, a, call.in[0].data, call.in[1].i64(),
                                              call.out[0].data, elem_size(call.in[0]), ctx.device->err));
}

// y = src (unless it is src), then the updates (or zeros) combined in.
Status scatter_into(const KernelContext& ctx, const KernelCall& call, const Tensor& src, const Tensor& y) {
  if (src.data == y.data || y.numel == 0) return Status();
  return launched(call, cudaMemcpyAsync(y.data, src.data, size_t(y.numel) * size_t(elem_size(y)),
                                        cudaMemcpyDeviceToDevice, ctx.device->stream));
}

template <index::Scatter kKind>
Status scatter_elements(const KernelContext& ctx, const KernelCall& call, const cuda::ElementsArgs& a) {
  const Tensor &data = call.in[0], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(scatter_into(ctx, call, data, y));
  return launched(call, cuda::scatter_elements(ctx.device->stream, a, call.in[1].i64(), call.in[2].data, y.data,
                                               y.dtype == DType::F32, kKind, ctx.device->err));
}

Status gather_elements_grad(const KernelContext& ctx, const KernelCall& call, const cuda::ElementsArgs& a) {
  const Tensor& dd = call.out[0];
  const DeviceContext& dev = *ctx.device;
  ZERO_RETURN_IF_ERROR(launched(call, cudaMemsetAsync(dd.data, 0, size_t(dd.numel) * sizeof(float), dev.stream)));
  return launched(call,
                  cuda::gather_elements_grad(dev.stream, a, call.in[0].f32(), call.in[1].i64(), dd.f32(), dev.err));
}

Status scatter_elements_grad(const KernelContext& ctx, const KernelCall& call, const cuda::ElementsArgs& a) {
  const Tensor &dy = call.in[0], &dd = call.out[0];
  ZERO_RETURN_IF_ERROR(scatter_into(ctx, call, dy, dd));
  return launched(call, cuda::scatter_elements(ctx.device->stream, a, call.in[1].i64(), nullptr, dd.data, true,
                                               index::Scatter::None, ctx.device->err));
}

template <Status (*validate)(const KernelCall&, NDGeom*)>
Status prepare_nd(const KernelCall& call, cuda::NDArgs* a) {
  NDGeom g;
  ZERO_RETURN_IF_ERROR(validate(call, &g));
  a->tuples = g.tuples;
  a->k = g.k;
  a->slice = g.slice;
  for (int j = 0; j < kMaxRank; ++j) {
    a->dims[j] = g.dims[j];
    a->strides[j] = g.strides[j];
  }
  a->opcode = int(call.inst->opcode());
  return Status();
}

Status gather_nd(const KernelContext& ctx, const KernelCall& call, const cuda::NDArgs& a) {
  return launched(call, cuda::gather_nd(ctx.device->stream, a, call.in[0].data, call.in[1].i64(), call.out[0].data,
                                        elem_size(call.in[0]), ctx.device->err));
}

template <index::Scatter kKind>
Status scatter_nd(const KernelContext& ctx, const KernelCall& call, const cuda::NDArgs& a) {
  const Tensor &data = call.in[0], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(scatter_into(ctx, call, data, y));
  return launched(call, cuda::scatter_nd(ctx.device->stream, a, call.in[1].i64(), call.in[2].data, y.data,
                                         y.dtype == DType::F32, kKind, ctx.device->err));
}

Status gather_nd_grad(const KernelContext& ctx, const KernelCall& call, const cuda::NDArgs& a) {
  const Tensor& dd = call.out[0];
  const DeviceContext& dev = *ctx.device;
  ZERO_RETURN_IF_ERROR(launched(call, cudaMemsetAsync(dd.data, 0, size_t(dd.numel) * sizeof(float), dev.stream)));
  return launched(call, cuda::scatter_nd(dev.stream, a, call.in[1].i64(), call.in[0].data, dd.data, true,
                                         index::Scatter::Add, dev.err));
}

Status scatter_nd_grad(const KernelContext& ctx, const KernelCall& call, const cuda::NDArgs& a) {
  const Tensor &dy = call.in[0], &dd = call.out[0];
  ZERO_RETURN_IF_ERROR(scatter_into(ctx, call, dy, dd));
  return launched(call, cuda::scatter_nd(ctx.device->stream, a, call.in[1].i64(), nullptr, dd.data, true,
                                         index::Scatter::None, ctx.device->err));
}

Status prepare_top_k(const KernelCall& call, TopKGeom* g) {
  ZERO_RETURN_IF_ERROR(validate_top_k(call, g));
  return check_grid(call, g->outer * g->inner);
}

Status top_k(const KernelContext& ctx, const KernelCall& call, const TopKGeom& g) {
  return launched(call, cuda::top_k(ctx.device->stream, call.in[0].f32(), call.out[0].f32(), call.out[1].i64(), g.outer,
                                    g.n, g.inner, g.k, g.largest, call.num_in > 1 ? call.in[1].i64() : nullptr,
                                    int(Opcode::TopK), ctx.device->err));
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
  using index::Scatter;
  backend.set(Opcode::GatherElements, define_kernel<prepare_elements<validate_gather_elements>, gather_elements>());
  backend.set(Opcode::ScatterElements,
              define_kernel<prepare_elements<validate_scatter_elements>, scatter_elements<Scatter::None>>());
  backend.set(Opcode::ScatterElementsAdd,
              define_kernel<prepare_elements<validate_scatter_elements>, scatter_elements<Scatter::Add>>());
  backend.set(Opcode::ScatterElementsMul,
              define_kernel<prepare_elements<validate_scatter_elements>, scatter_elements<Scatter::Mul>>());
  backend.set(Opcode::GatherND, define_kernel<prepare_nd<validate_gather_nd>, gather_nd>());
  backend.set(Opcode::ScatterND, define_kernel<prepare_nd<validate_scatter_nd>, scatter_nd<Scatter::None>>());
  backend.set(Opcode::ScatterNDAdd, define_kernel<prepare_nd<validate_scatter_nd>, scatter_nd<Scatter::Add>>());
  backend.set(Opcode::ScatterNDMul, define_kernel<prepare_nd<validate_scatter_nd>, scatter_nd<Scatter::Mul>>());
  backend.set(Opcode::TopK, define_kernel<prepare_top_k, top_k>());
  backend.set(Opcode::GatherElementsGrad,
              define_kernel<prepare_elements<validate_gather_elements_grad>, gather_elements_grad>());
  backend.set(Opcode::ScatterElementsGrad,
              define_kernel<prepare_elements<validate_scatter_elements_grad>, scatter_elements_grad>());
  backend.set(Opcode::GatherNDGrad, define_kernel<prepare_nd<validate_gather_nd_grad>, gather_nd_grad>());
  backend.set(Opcode::ScatterNDGrad, define_kernel<prepare_nd<validate_scatter_nd_grad>, scatter_nd_grad>());
}

}  // namespace cuda_backend

}  // namespace zero
