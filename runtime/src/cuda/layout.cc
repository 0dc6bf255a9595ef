// The CUDA backend's host side for reductions, layout and indexing (Gather, Slice, Concat, Where): operand checks
// (kernel_checks.h, run at load with kRun = false) and the launches
// (kernels.h); the device side is layout.cu.
#include <algorithm>
#include <climits>
#include <string>

#include "cuda/backend_internal.h"

namespace zero {
namespace cuda_backend {
namespace {

// ---- reductions and layout ------------------------------------------------------

template <bool kMean, bool kRun>
Status reduce(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  bool reduced[kMaxRank];
  int64_t out_numel, count;
  ZERO_RETURN_IF_ERROR(reduce_geometry(call, reduced, &out_numel, &count));
  int64_t xs[kMaxRank];
  contiguous_strides(x, xs);
  Strided kept, red;
  for (int i = 0; i < x.ndim; ++i) {
    Strided& t = reduced[i] ? red : kept;
    t.dims[t.ndim] = x.dims[i];
    t.s[0][t.ndim] = xs[i];
    ++t.ndim;
  }
  ZERO_RETURN_IF_ERROR(check_grid(call, out_numel));
  if (!kRun) return Status();
  const int64_t slices = cuda::reduce_slices(out_numel, count);
  if (slices > 1) {
    // Partial sums in scratch, then y: reading all of x before writing y
    // makes aliasing harmless.
    void* s;
    ZERO_RETURN_IF_ERROR(scratch(size_t(out_numel * slices) * sizeof(double), &s));
    return launched(call, cuda::reduce(g_dev->stream, x.f32(), y.f32(), kept, out_numel, red, count, kMean,
                                       static_cast<double*>(s)));
  }
  if (x.data == y.data && out_numel != x.numel) {
    // Reading and writing one buffer across blocks: reduce from a copy.
    void* s;
    ZERO_RETURN_IF_ERROR(scratch(size_t(x.numel) * sizeof(float), &s));
    ZERO_RETURN_IF_ERROR(launched(
        call, cudaMemcpyAsync(s, x.data, size_t(x.numel) * sizeof(float), cudaMemcpyDeviceToDevice, g_dev->stream)));
    return launched(call, cuda::reduce(g_dev->stream, static_cast<float*>(s), y.f32(), kept, out_numel, red, count,
                                       kMean, nullptr));
  }
  return launched(call, cuda::reduce(g_dev->stream, x.f32(), y.f32(), kept, out_numel, red, count, kMean, nullptr));
}

template <bool kRun>
Status transpose(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  Strided g = shape_of(y);
  ZERO_RETURN_IF_ERROR(transpose_geometry(call, g.s[0]));
  if (!kRun) return Status();
  return launched(call, cuda::strided_gather(g_dev->stream, x.data, y.data, elem_size(x), g, y.numel));
}

template <bool kRun>
Status expand(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  Strided g = shape_of(y);
  ZERO_RETURN_IF_ERROR(expand_geometry(call, g.s[0]));
  if (!kRun || x.data == y.data) return Status();
  return launched(call, cuda::strided_gather(g_dev->stream, x.data, y.data, elem_size(x), g, y.numel));
}

// ---- Gather, Slice, Concat, Where -------------------------------------------------

template <bool kRun>
Status gather(const KernelCall& call) {
  const Tensor &data = call.in[0], &indices = call.in[1], &y = call.out[0];
  GatherSplit g;
  ZERO_RETURN_IF_ERROR(gather_geometry(call, data, indices, y, "data", "output", &g));
  if (data.data == y.data && y.numel > 0) return fail(call, "gather cannot run in place");
  if (!kRun) return Status();
  return launched(call, cuda::gather(g_dev->stream, data.data, indices.i64(), y.data, elem_size(data), g.outer, g.n,
                                     g.inner, g.q, int(Opcode::Gather), g_dev->err));
}

template <bool kRun>
Status gather_grad(const KernelCall& call) {
  const Tensor &dy = call.in[0], &indices = call.in[1], &dd = call.out[0];
  GatherSplit g;
  ZERO_RETURN_IF_ERROR(gather_grad_geometry(call, &g));
  if (dd.data == dy.data && dd.numel > 0) return fail(call, "gather grad cannot run in place");
  if (!kRun) return Status();
  ZERO_RETURN_IF_ERROR(launched(call, cudaMemsetAsync(dd.data, 0, size_t(dd.numel) * sizeof(float), g_dev->stream)));
  return launched(call, cuda::gather_grad(g_dev->stream, dy.f32(), indices.i64(), dd.f32(), g.outer, g.n, g.inner, g.q,
                                          int(Opcode::GatherGrad), g_dev->err));
}

template <bool kRun>
Status slice(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  Strided g = shape_of(y);
  int64_t base;
  ZERO_RETURN_IF_ERROR(slice_geometry(call, x, y, g.s[0], &base));
  if (x.data == y.data && y.numel > 0 && !(base == 0 && x.numel == y.numel))
    return fail(call, "slice cannot run in place");
  if (!kRun || (x.data == y.data)) return Status();
  const int es = elem_size(x);
  return launched(
      call, cuda::strided_gather(g_dev->stream, static_cast<const char*>(x.data) + base * es, y.data, es, g, y.numel));
}

template <bool kRun>
Status slice_grad(const KernelCall& call) {
  const Tensor &dy = call.in[0], &dx = call.out[0];
  Strided g = shape_of(dy);
  int64_t base;
  ZERO_RETURN_IF_ERROR(slice_grad_geometry(call, g.s[0], &base));
  if (dx.data == dy.data && dx.numel > 0) return fail(call, "slice grad cannot run in place");
  if (!kRun) return Status();
  ZERO_RETURN_IF_ERROR(launched(call, cudaMemsetAsync(dx.data, 0, size_t(dx.numel) * sizeof(float), g_dev->stream)));
  return launched(call, cuda::strided_scatter(g_dev->stream, dy.f32(), dx.f32() + base, g, dy.numel));
}

template <bool kRun>
Status concat(const KernelCall& call) {
  int ax;
  ZERO_RETURN_IF_ERROR(concat_geometry(call, &ax));
  if (!kRun) return Status();
  const Tensor& y = call.out[0];
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < ax; ++d) outer *= y.dims[d];
  for (int d = ax + 1; d < y.ndim; ++d) inner *= y.dims[d];
  const size_t es = dtype_size(y.dtype), out_row = size_t(y.dims[ax] * inner) * es;
  char* dst = static_cast<char*>(y.data);
  size_t at = 0;
  for (int k = 0; k < call.num_in; ++k) {
    const Tensor& x = call.in[k];
    const size_t row = size_t(x.dims[ax] * inner) * es;
    if (row > 0 && outer == 1) {
      ZERO_RETURN_IF_ERROR(
          launched(call, cudaMemcpyAsync(dst + at, x.data, row, cudaMemcpyDeviceToDevice, g_dev->stream)));
    } else if (row > 0 && outer > 0 && out_row <= size_t(INT_MAX)) {
      ZERO_RETURN_IF_ERROR(launched(call, cudaMemcpy2DAsync(dst + at, out_row, x.data, row, row, size_t(outer),
                                                            cudaMemcpyDeviceToDevice, g_dev->stream)));
    } else if (row > 0) {
      // cudaMemcpy2D rejects pitches above cudaDevAttrMaxPitch (2^31 - 1 bytes).
      for (int64_t o = 0; o < outer; ++o)
        ZERO_RETURN_IF_ERROR(launched(
            call, cudaMemcpyAsync(dst + size_t(o) * out_row + at, static_cast<const char*>(x.data) + size_t(o) * row,
                                  row, cudaMemcpyDeviceToDevice, g_dev->stream)));
    }
    at += row;
  }
  return Status();
}

template <bool kRun>
Status where(const KernelCall& call) {
  const Tensor &c = call.in[0], &x = call.in[1], &y = call.in[2], &out = call.out[0];
  Strided g = shape_of(out);
  ZERO_RETURN_IF_ERROR(where_geometry(call, g.s[0], g.s[1], g.s[2]));
  if (!kRun) return Status();
  return launched(call, cuda::where(g_dev->stream, c.i64(), x.data, y.data, out.data, elem_size(out), g, out.numel));
}

}  // namespace

void add_cuda_layout_kernels(TableBackend& backend) {
  ZERO_CUDA_SET_T(ReduceSum, reduce, false);
  ZERO_CUDA_SET_T(ReduceMean, reduce, true);
  ZERO_CUDA_SET(Transpose, transpose);
  ZERO_CUDA_SET(Expand, expand);
  ZERO_CUDA_SET(Gather, gather);
  ZERO_CUDA_SET(GatherGrad, gather_grad);
  ZERO_CUDA_SET(Slice, slice);
  ZERO_CUDA_SET(SliceGrad, slice_grad);
  ZERO_CUDA_SET(Concat, concat);
  ZERO_CUDA_SET(Where, where);
}

}  // namespace cuda_backend

}  // namespace zero
