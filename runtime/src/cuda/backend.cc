// The CUDA backend: operand checks and geometry on the host (kernel_checks.h,
// shared with the CPU backend), GEMMs
// through cuBLAS, everything else through the launchers in kernels.cu. All
// work goes to one compute stream; nothing synchronizes inside a step except
// finish_step() (and the few scratch reallocations of the first step).
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <string>

#include "backend.h"
#include "cuda/kernels.h"
#include "kernel_checks.h"
#include "zero/cuda.h"
#include "zero/elementwise_ops.h"

namespace zero {

struct CudaDevice::State {
  int device = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  int* err = nullptr;  // device error word (kernels.h ErrorCode)
  void* scratch = nullptr;
  size_t scratch_bytes = 0;
  std::unique_ptr<Allocator> alloc;
  std::unique_ptr<Backend> backend;
};

namespace {

using plan::Opcode;
using cuda::Strided;

CudaDevice::State* g_dev = nullptr;  // the process's CudaDevice

Status cuda_status(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return Status();
  return Status::unavailable(std::string(what) + ": " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
}

Status blas_status(cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return Status();
  return Status::unavailable(std::string(what) + ": cuBLAS error " + std::to_string(int(s)));
}

Status launched(const KernelCall& call, cudaError_t e) {
  if (e == cudaSuccess) return Status();
  return fail(call, std::string("CUDA launch failed: ") + cudaGetErrorString(e));
}

// Device scratch of at least `bytes`, reused across kernels (stream order).
Status scratch(size_t bytes, void** out) {
  CudaDevice::State& d = *g_dev;
  if (bytes > d.scratch_bytes) {
    ZERO_RETURN_IF_ERROR(cuda_status(cudaStreamSynchronize(d.stream), "cudaStreamSynchronize"));
    if (d.scratch) cudaFree(d.scratch);
    d.scratch = nullptr;
    d.scratch_bytes = 0;
    const size_t want = std::max<size_t>(bytes, 1 << 16);
    ZERO_RETURN_IF_ERROR(cuda_status(cudaMalloc(&d.scratch, want), "cudaMalloc (scratch)"));
    d.scratch_bytes = want;
  }
  *out = d.scratch;
  return Status();
}

// ---- geometry helpers ---------------------------------------------------------

Strided shape_of(const Tensor& t) {
  Strided g;
  g.ndim = t.ndim;
  for (int i = 0; i < t.ndim; ++i) g.dims[i] = t.dims[i];
  return g;
}

int elem_size(const Tensor& t) { return t.dtype == DType::I64 ? 8 : 4; }

Status check_grid(const KernelCall& call, int64_t blocks) {
  if (blocks > INT_MAX) return fail(call, "too many rows for one CUDA grid");
  return Status();
}

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
  return launched(call, cuda::comparison<Op>(g_dev->stream, a.data, b.data, a.dtype == DType::F32, y.i64(),
                                             y.numel, g));
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

elementwise::Params params_of(const KernelCall& call) {
  const plan::ElementwiseAttrs* attrs = call.inst->attrs_as_ElementwiseAttrs();  // checked at load
  return {attrs->alpha(), attrs->beta()};
}

template <class Op, bool kRun>
Status parameterized_unary(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(check_unary(call));
  if (!kRun) return Status();
  return launched(call, cuda::parameterized_unary<Op>(g_dev->stream, x.f32(), y.f32(), x.numel, params_of(call)));
}

template <class Op, bool kRun>
Status parameterized_derivative(const KernelCall& call) {
  const Tensor &dy = call.in[0], &saved = call.in[1], &dx = call.out[0];
  ZERO_RETURN_IF_ERROR(check_unary_grad(call));
  if (!kRun) return Status();
  return launched(call, cuda::parameterized_derivative<Op>(g_dev->stream, dy.f32(), saved.f32(), dx.f32(),
                                                           dy.numel, params_of(call)));
}

template <bool kRun>
Status copy(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(check_copy(call));
  if (!kRun || x.data == y.data || x.numel == 0) return Status();
  return launched(call, cudaMemcpyAsync(y.data, x.data, size_t(x.numel) * dtype_size(x.dtype),
                                        cudaMemcpyDeviceToDevice, g_dev->stream));
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

// ---- Gemm / MatMul (cuBLAS, column-major view of row-major data) --------------

// Row-major C[m,n] = alpha * op(A) op(B) + beta * C.
Status sgemm(const KernelCall& call, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
             const float* b, float beta, float* c, int64_t batch = 1, int64_t stride_a = 0, int64_t stride_b = 0,
             int64_t stride_c = 0) {
  if (m == 0 || n == 0 || batch == 0) return Status();
  if (k == 0) {
    // C = beta * C (all batches are contiguous here: stride_c == m * n).
    const int64_t total = m * n * batch;
    if (beta == 0.f) return launched(call, cudaMemsetAsync(c, 0, size_t(total) * sizeof(float), g_dev->stream));
    return launched(call, cuda::scale(g_dev->stream, c, beta, total));
  }
  const cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int lda = int(ta ? m : k), ldb = int(tb ? k : n);
  cublasStatus_t s;
  if (batch == 1)
    s = cublasSgemm(g_dev->blas, opb, opa, int(n), int(m), int(k), &alpha, b, ldb, a, lda, &beta, c, int(n));
  else
    s = cublasSgemmStridedBatched(g_dev->blas, opb, opa, int(n), int(m), int(k), &alpha, b, ldb, stride_b, a, lda,
                                  stride_a, &beta, c, int(n), stride_c, int(batch));
  if (s != CUBLAS_STATUS_SUCCESS) return fail(call, "cuBLAS SGEMM failed with status " + std::to_string(int(s)));
  return Status();
}

template <bool kRun>
Status gemm(const KernelCall& call) {
  const Tensor &a = call.in[0], &b = call.in[1], &y = call.out[0];
  GemmGeom gg;
  Strided g = shape_of(y);
  ZERO_RETURN_IF_ERROR(gemm_geometry(call, &gg, g.s[0]));
  if (!kRun) return Status();
  float c_beta = 0.f;
  if (gg.with_c) {
    if (call.in[2].data != y.data)
      ZERO_RETURN_IF_ERROR(launched(call, cuda::strided_gather(g_dev->stream, call.in[2].data, y.data, 4, g, y.numel)));
    c_beta = gg.beta;
  }
  return sgemm(call, gg.ta, gg.tb, gg.m, gg.n, gg.k, gg.alpha, a.f32(), b.f32(), c_beta, y.f32());
}

template <bool kRun>
Status matmul(const KernelCall& call) {
  MatMulGeom g;
  ZERO_RETURN_IF_ERROR(matmul_geometry(call, &g));
  if (!fits_int(g.batch.numel)) return fail(call, "batch exceeds BLAS int range");
  if (!kRun) return Status();
  const float *pa = call.in[0].f32(), *pb = call.in[1].f32();
  float* py = call.out[0].f32();
  const int64_t m = g.m, n = g.n, k = g.k, nb = g.batch.numel;
  if (g.batch_b == 1 && g.batch_a == nb) {
    if (!fits_int(nb * m)) return fail(call, "rows exceed BLAS int range");
    return sgemm(call, false, false, nb * m, n, k, 1.f, pa, pb, 0.f, py);  // one GEMM over all rows of A
  }
  // Every batch of A and of B either distinct (same batch shape) or shared.
  if ((g.batch_a == nb || g.batch_a == 1) && (g.batch_b == nb || g.batch_b == 1))
    return sgemm(call, false, false, m, n, k, 1.f, pa, pb, 0.f, py, nb, g.batch_a == 1 ? 0 : m * k,
                 g.batch_b == 1 ? 0 : k * n, m * n);
  // General broadcast: one GEMM per output batch.
  for (int64_t o = 0; o < nb; ++o) {
    int64_t ia = 0, ib = 0, rem = o;
    for (int d = g.batch.ndim - 1; d >= 0; --d) {
      const int64_t idx = rem % g.batch.dims[d];
      rem /= g.batch.dims[d];
      ia += idx * g.sa[d];
      ib += idx * g.sb[d];
    }
    ZERO_RETURN_IF_ERROR(sgemm(call, false, false, m, n, k, 1.f, pa + ia * m * k, pb + ib * k * n, 0.f, py + o * m * n));
  }
  return Status();
}

// ---- softmax family and losses --------------------------------------------------

template <bool kLog, bool kRun>
Status softmax(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  AxisSplit s;
  ZERO_RETURN_IF_ERROR(softmax_geometry(call, &s));
  ZERO_RETURN_IF_ERROR(check_grid(call, s.outer * s.inner));
  if (!kRun) return Status();
  return launched(call, cuda::softmax(g_dev->stream, x.f32(), y.f32(), s.outer, s.n, s.inner, kLog));
}

template <bool kLog, bool kRun>
Status softmax_grad(const KernelCall& call) {
  const Tensor &dy = call.in[0], &y = call.in[1], &dx = call.out[0];
  AxisSplit s;
  ZERO_RETURN_IF_ERROR(softmax_grad_geometry(call, &s));
  ZERO_RETURN_IF_ERROR(check_grid(call, s.outer * s.inner));
  if (!kRun) return Status();
  return launched(call, cuda::softmax_grad(g_dev->stream, dy.f32(), y.f32(), dx.f32(), s.outer, s.n, s.inner, kLog));
}

// The shared loss checks, then the kernels' arguments.
Status loss_args(const KernelCall& call, const Tensor& scores, const Tensor& labels, LossGeometry* lg,
                 cuda::LossArgs* g) {
  ZERO_RETURN_IF_ERROR(loss_geometry(call, scores, labels, lg));
  g->n = lg->n;
  g->c = lg->c;
  g->inner = lg->inner;
  g->has_ignore = lg->has_ignore;
  g->ignore_index = lg->ignore_index;
  g->reduction = lg->reduction == plan::Reduction::Sum ? 0 : lg->reduction == plan::Reduction::Mean ? 1 : 2;
  g->opcode = int(call.inst->opcode());
  return check_grid(call, g->n * g->inner);
}

template <bool kSoftmax, bool kRun>
Status loss(const KernelCall& call) {
  const Tensor &scores = call.in[0], &labels = call.in[1], &out = call.out[0];
  const Tensor* weights = call.num_in > 2 ? &call.in[2] : nullptr;
  LossGeometry lg;
  cuda::LossArgs g;
  ZERO_RETURN_IF_ERROR(loss_args(call, scores, labels, &lg, &g));
  ZERO_RETURN_IF_ERROR(check_loss_output(call, lg, out, labels, "loss"));
  ZERO_RETURN_IF_ERROR(check_loss_weights(call, lg, weights));
  const Tensor* log_prob = kSoftmax && call.num_out > 1 ? &call.out[1] : nullptr;
  ZERO_RETURN_IF_ERROR(check_log_prob(call, scores, log_prob));
  if (!kRun) return Status();
  void* s;
  ZERO_RETURN_IF_ERROR(scratch(size_t(g.n * g.inner + 2) * sizeof(double), &s));
  return launched(call, cuda::loss(g_dev->stream, g, kSoftmax, scores.f32(), labels.i64(),
                                   weights ? weights->f32() : nullptr, out.f32(), log_prob ? log_prob->f32() : nullptr,
                                   static_cast<double*>(s), g_dev->err));
}

template <bool kSoftmax, bool kRun>
Status loss_grad(const KernelCall& call) {
  const Tensor &dloss = call.in[0], &x = call.in[1], &labels = call.in[2], &dx = call.out[0];
  const Tensor* weights = call.num_in > 3 ? &call.in[3] : nullptr;
  LossGeometry lg;
  cuda::LossArgs g;
  ZERO_RETURN_IF_ERROR(loss_args(call, x, labels, &lg, &g));
  ZERO_RETURN_IF_ERROR(check_loss_output(call, lg, dloss, labels, "dloss"));
  ZERO_RETURN_IF_ERROR(check_loss_weights(call, lg, weights));
  ZERO_RETURN_IF_ERROR(expect_f32(call, dx, "dinput"));
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, x, dx, "input and dinput"));
  if (!kRun) return Status();
  void* s;
  ZERO_RETURN_IF_ERROR(scratch(2 * sizeof(double), &s));
  return launched(call, cuda::loss_grad(g_dev->stream, g, kSoftmax, dloss.f32(), x.f32(), labels.i64(),
                                        weights ? weights->f32() : nullptr, dx.f32(), static_cast<double*>(s),
                                        g_dev->err));
}

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
    ZERO_RETURN_IF_ERROR(launched(call, cudaMemcpyAsync(s, x.data, size_t(x.numel) * sizeof(float),
                                                        cudaMemcpyDeviceToDevice, g_dev->stream)));
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
  return launched(call, cuda::gather_grad(g_dev->stream, dy.f32(), indices.i64(), dd.f32(), g.outer, g.n, g.inner,
                                          g.q, int(Opcode::GatherGrad), g_dev->err));
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
  return launched(call, cuda::strided_gather(g_dev->stream, static_cast<const char*>(x.data) + base * es, y.data, es,
                                             g, y.numel));
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
      ZERO_RETURN_IF_ERROR(launched(call, cudaMemcpyAsync(dst + at, x.data, row, cudaMemcpyDeviceToDevice,
                                                          g_dev->stream)));
    } else if (row > 0 && outer > 0 && out_row <= size_t(INT_MAX)) {
      ZERO_RETURN_IF_ERROR(launched(call, cudaMemcpy2DAsync(dst + at, out_row, x.data, row, row, size_t(outer),
                                                            cudaMemcpyDeviceToDevice, g_dev->stream)));
    } else if (row > 0) {
      // cudaMemcpy2D rejects pitches above cudaDevAttrMaxPitch (2^31 - 1 bytes).
      for (int64_t o = 0; o < outer; ++o)
        ZERO_RETURN_IF_ERROR(launched(call, cudaMemcpyAsync(dst + size_t(o) * out_row + at,
                                                            static_cast<const char*>(x.data) + size_t(o) * row, row,
                                                            cudaMemcpyDeviceToDevice, g_dev->stream)));
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

// ---- LayerNormalization -----------------------------------------------------------

template <bool kRun>
Status layer_norm(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(validate_layer_norm(call));
  LayerNormSplit s;
  ZERO_RETURN_IF_ERROR(layer_norm_split(call, call.in[0], &s));
  ZERO_RETURN_IF_ERROR(check_grid(call, s.outer));
  if (!kRun) return Status();
  return launched(call, cuda::layer_norm(g_dev->stream, call.in[0].f32(), call.in[1].f32(), call.in[2].f32(),
                                         call.out[0].f32(), call.num_out > 1 ? call.out[1].f32() : nullptr,
                                         call.num_out > 2 ? call.out[2].f32() : nullptr, s.outer, s.inner, s.eps));
}

template <bool kRun>
Status layer_norm_grad(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(validate_layer_norm_grad(call));
  LayerNormSplit s;
  ZERO_RETURN_IF_ERROR(layer_norm_split(call, call.in[1], &s));
  ZERO_RETURN_IF_ERROR(check_grid(call, s.outer));
  if (!kRun) return Status();
  void* partial = nullptr;
  if (call.num_out > 1)
    ZERO_RETURN_IF_ERROR(scratch(size_t(cuda::layer_norm_grad_scratch(s.outer, s.inner)) * sizeof(double), &partial));
  return launched(call, cuda::layer_norm_grad(g_dev->stream, call.in[0].f32(), call.in[1].f32(), call.in[2].f32(),
                                              call.in[3].f32(), call.in[4].f32(), call.out[0].f32(),
                                              call.num_out > 1 ? call.out[1].f32() : nullptr,
                                              call.num_out > 2 ? call.out[2].f32() : nullptr, s.outer, s.inner,
                                              static_cast<double*>(partial)));
}

// ---- Conv, pooling, BatchNormalization ------------------------------------------------
//
// Conv and its gradients are im2col + cuBLAS over chunks of images, as on the
// CPU; the GEMMs read and write y, dy and dx in place through leading
// dimensions and batch strides (one strided-batched GEMM per chunk and group,
// a batch entry per image), so only the columns (and, for ConvGradWeight, dy
// gathered per group) need scratch.

// Upper bound on the scratch floats of one chunk (at least one image is
// always taken): 128 MiB; set_cuda_conv_scratch_limit() for tests.
int64_t conv_scratch_limit = int64_t(1) << 25;

cuda::ConvArgs conv_args(const ConvGeom& g) {
  return cuda::ConvArgs{g.n,        g.c,        g.h,        g.w,        g.m,        g.oh,       g.ow,       g.group,
                        g.win.k[0], g.win.k[1], g.win.s[0], g.win.s[1], g.win.p[0], g.win.p[1], g.win.d[0], g.win.d[1]};
}

// Images per chunk when each image needs `per_image_cols` scratch rows of
// OH*OW floats; one GEMM's columns (chunk * OH*OW) must fit an int.
int64_t conv_chunk(const ConvGeom& g, int64_t per_image_rows) {
  const int64_t per_image = std::max<int64_t>(1, per_image_rows * g.plane());
  int64_t nc = std::max<int64_t>(1, conv_scratch_limit / per_image);
  nc = std::min(nc, std::max<int64_t>(g.n, 1));
  return std::max<int64_t>(1, std::min(nc, int64_t(INT_MAX) / std::max<int64_t>(1, g.plane())));
}

// Row-major C[m,n] = alpha * op(A) op(B) + beta * C with explicit row strides
// (lda, ldb, ldc: of A, B, C as stored) and `batch` matrices `sa`, `sb`, `sc`
// floats apart. m, n, k > 0.
Status sgemm_strided(const KernelCall& call, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a,
                     int64_t lda, int64_t sa, const float* b, int64_t ldb, int64_t sb, float beta, float* c,
                     int64_t ldc, int64_t sc, int64_t batch) {
  const float alpha = 1.f;
  const cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasStatus_t s =
      cublasSgemmStridedBatched(g_dev->blas, opb, opa, int(n), int(m), int(k), &alpha, b, int(ldb), sb, a, int(lda), sa,
                                &beta, c, int(ldc), sc, int(batch));
  if (s != CUBLAS_STATUS_SUCCESS) return fail(call, "cuBLAS SGEMM failed with status " + std::to_string(int(s)));
  return Status();
}

template <bool kRun>
Status conv(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(validate_conv(call));
  const Tensor &x = call.in[0], &w = call.in[1], &y = call.out[0];
  ConvGeom g;
  ZERO_RETURN_IF_ERROR(conv_geometry(call, x, w, y, "x", "w", "y", &g));
  if (!kRun || y.numel == 0) return Status();
  const int64_t K = g.kdim(), P = g.plane(), mg = g.mg(), nc = conv_chunk(g, K);
  const cuda::ConvArgs a = conv_args(g);
  if (K == 0) {
    ZERO_RETURN_IF_ERROR(launched(call, cudaMemsetAsync(y.data, 0, size_t(y.numel) * sizeof(float), g_dev->stream)));
  } else {
    void* s;
    ZERO_RETURN_IF_ERROR(scratch(size_t(K * nc * P) * sizeof(float), &s));
    float* col = static_cast<float*>(s);
    for (int64_t n0 = 0; n0 < g.n; n0 += nc) {
      const int64_t cur = std::min(nc, g.n - n0), ld = cur * P;
      for (int64_t gi = 0; gi < g.group; ++gi) {
        ZERO_RETURN_IF_ERROR(launched(call, cuda::im2col(g_dev->stream, a, x.f32(), n0, cur, gi, col)));
        // y[n0 + nn, group gi] [mg, P] = w_g [mg, K] . col[:, nn*P, +P] per image nn.
        ZERO_RETURN_IF_ERROR(sgemm_strided(call, false, false, mg, P, K, w.f32() + gi * mg * K, K, 0, col, ld, P, 0.f,
                                           y.f32() + (n0 * g.m + gi * mg) * P, P, g.m * P, cur));
      }
    }
  }
  if (call.num_in > 2)
    ZERO_RETURN_IF_ERROR(launched(call, cuda::conv_bias(g_dev->stream, y.f32(), call.in[2].f32(), g.n, g.m, P)));
  return Status();
}

template <bool kRun>
Status conv_grad_input(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(validate_conv_grad_input(call));
  const Tensor &dy = call.in[0], &w = call.in[1], &dx = call.out[0];
  ConvGeom g;
  ZERO_RETURN_IF_ERROR(conv_geometry(call, dx, w, dy, "dx", "w", "dy", &g));
  if (!kRun || dx.numel == 0) return Status();
  const int64_t K = g.kdim(), P = g.plane(), mg = g.mg(), nc = conv_chunk(g, K);
  if (mg == 0) return launched(call, cudaMemsetAsync(dx.data, 0, size_t(dx.numel) * sizeof(float), g_dev->stream));
  const cuda::ConvArgs a = conv_args(g);
  void* s;
  ZERO_RETURN_IF_ERROR(scratch(size_t(K * nc * P) * sizeof(float), &s));
  float* col = static_cast<float*>(s);
  for (int64_t n0 = 0; n0 < g.n; n0 += nc) {
    const int64_t cur = std::min(nc, g.n - n0), ld = cur * P;
    for (int64_t gi = 0; gi < g.group; ++gi) {
      // col[:, nn*P, +P] = w_g^T [K, mg] . dy[n0 + nn, group gi] [mg, P] per image nn.
      ZERO_RETURN_IF_ERROR(sgemm_strided(call, true, false, K, P, mg, w.f32() + gi * mg * K, K, 0,
                                         dy.f32() + (n0 * g.m + gi * mg) * P, P, g.m * P, 0.f, col, ld, P, cur));
      // Every element of dx is written by exactly one chunk and group.
      ZERO_RETURN_IF_ERROR(launched(call, cuda::col2im(g_dev->stream, a, col, n0, cur, gi, dx.f32())));
    }
  }
  return Status();
}

template <bool kRun>
Status conv_grad_weight(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(validate_conv_grad_weight(call));
  const Tensor &dy = call.in[0], &x = call.in[1], &dw = call.out[0];
  ConvGeom g;
  ZERO_RETURN_IF_ERROR(conv_geometry(call, x, dw, dy, "x", "dw", "dy", &g));
  if (!kRun || dw.numel == 0) return Status();
  ZERO_RETURN_IF_ERROR(launched(call, cudaMemsetAsync(dw.data, 0, size_t(dw.numel) * sizeof(float), g_dev->stream)));
  const int64_t K = g.kdim(), P = g.plane(), mg = g.mg(), nc = conv_chunk(g, K + mg);
  const cuda::ConvArgs a = conv_args(g);
  void* s;
  ZERO_RETURN_IF_ERROR(scratch(size_t((K + mg) * nc * P) * sizeof(float), &s));
  float *col = static_cast<float*>(s), *dyb = col + K * nc * P;
  for (int64_t n0 = 0; n0 < g.n; n0 += nc) {
    const int64_t cur = std::min(nc, g.n - n0), ld = cur * P;
    for (int64_t gi = 0; gi < g.group; ++gi) {
      ZERO_RETURN_IF_ERROR(launched(call, cuda::im2col(g_dev->stream, a, x.f32(), n0, cur, gi, col)));
      // dy of group gi as [mg, cur*P] (dy itself for one image).
      const float* dyg = dy.f32() + (n0 * g.m + gi * mg) * P;
      if (cur > 1) {
        Strided sg;
        sg.ndim = 3;
        sg.dims[0] = mg, sg.dims[1] = cur, sg.dims[2] = P;
        sg.s[0][0] = P, sg.s[0][1] = g.m * P, sg.s[0][2] = 1;
        ZERO_RETURN_IF_ERROR(launched(call, cuda::strided_gather(g_dev->stream, dyg, dyb, 4, sg, mg * ld)));
        dyg = dyb;
      }
      // dw_g [mg, K] += dy_g [mg, cur*P] . col^T.
      ZERO_RETURN_IF_ERROR(
          sgemm_strided(call, false, true, mg, K, ld, dyg, ld, 0, col, ld, 0, 1.f, dw.f32() + gi * mg * K, K, 0, 1));
    }
  }
  return Status();
}

cuda::PoolArgs pool_args(const PoolGeom& g) {
  return cuda::PoolArgs{g.planes,   g.h,        g.w,        g.oh,       g.ow,       g.win.k[0], g.win.k[1],
                        g.win.s[0], g.win.s[1], g.win.p[0], g.win.p[1], g.win.p[2], g.win.p[3], g.include_pad};
}

template <bool kRun>
Status max_pool(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(validate_max_pool(call));
  PoolGeom g;
  ZERO_RETURN_IF_ERROR(pool_geometry(call, call.in[0], call.out[0], "x", "y", &g));
  if (!kRun) return Status();
  return launched(call, cuda::max_pool(g_dev->stream, pool_args(g), call.in[0].f32(), call.out[0].f32(),
                                       call.num_out > 1 ? call.out[1].i64() : nullptr));
}

template <bool kRun>
Status max_pool_grad(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(validate_max_pool_grad(call));
  PoolGeom g;
  ZERO_RETURN_IF_ERROR(pool_geometry(call, call.out[0], call.in[0], "dx", "dy", &g));
  if (!kRun) return Status();
  return launched(call, cuda::max_pool_grad(g_dev->stream, pool_args(g), call.in[0].f32(), call.in[1].i64(),
                                            call.out[0].f32(), int(Opcode::MaxPoolGrad), g_dev->err));
}

template <bool kRun>
Status average_pool(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(validate_average_pool(call));
  PoolGeom g;
  ZERO_RETURN_IF_ERROR(pool_geometry(call, call.in[0], call.out[0], "x", "y", &g));
  if (!kRun) return Status();
  return launched(call, cuda::average_pool(g_dev->stream, pool_args(g), call.in[0].f32(), call.out[0].f32()));
}

template <bool kRun>
Status average_pool_grad(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(validate_average_pool_grad(call));
  PoolGeom g;
  ZERO_RETURN_IF_ERROR(pool_geometry(call, call.out[0], call.in[0], "dx", "dy", &g));
  if (!kRun) return Status();
  return launched(call, cuda::average_pool_grad(g_dev->stream, pool_args(g), call.in[0].f32(), call.out[0].f32()));
}

template <bool kRun>
Status batch_norm(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(validate_batch_norm(call));
  BatchNormGeom g;
  ZERO_RETURN_IF_ERROR(batch_norm_geometry(call, call.in[0], &g));
  ZERO_RETURN_IF_ERROR(check_grid(call, g.c));
  if (!kRun) return Status();
  return launched(call, cuda::batch_norm(g_dev->stream, call.in[0].f32(), call.in[1].f32(), call.in[2].f32(),
                                         call.in[3].f32(), call.in[4].f32(), call.out[0].f32(),
                                         call.num_out > 1 ? call.out[1].f32() : nullptr,
                                         call.num_out > 2 ? call.out[2].f32() : nullptr, g.n, g.c, g.inner, g.eps,
                                         g.momentum));
}

template <bool kRun>
Status batch_norm_grad(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(validate_batch_norm_grad(call));
  BatchNormGeom g;
  ZERO_RETURN_IF_ERROR(batch_norm_geometry(call, call.in[1], &g));
  ZERO_RETURN_IF_ERROR(check_grid(call, g.c));
  if (!kRun) return Status();
  return launched(call, cuda::batch_norm_grad(g_dev->stream, call.in[0].f32(), call.in[1].f32(), call.in[2].f32(),
                                              call.in[3].f32(), call.in[4].f32(), call.out[0].f32(),
                                              call.num_out > 1 ? call.out[1].f32() : nullptr,
                                              call.num_out > 2 ? call.out[2].f32() : nullptr, g.n, g.c, g.inner));
}

// ---- optimizers ---------------------------------------------------------------------

template <bool kRun>
Status sgd_update(const KernelCall& call) {
  const plan::SgdAttrs* attrs;
  float* buf;
  ZERO_RETURN_IF_ERROR(sgd_geometry(call, &attrs, &buf));
  if (!kRun) return Status();
  const Tensor &p = call.in[0], &g = call.in[1];
  return launched(call, cuda::sgd(g_dev->stream, p.f32(), g.f32(), buf, p.numel, attrs->lr(), attrs->momentum(),
                                  attrs->weight_decay()));
}

template <bool kRun>
Status adamw_update(const KernelCall& call) {
  const plan::AdamWAttrs* attrs;
  ZERO_RETURN_IF_ERROR(adamw_geometry(call, &attrs));
  const Tensor &p = call.in[0], &g = call.in[1], &m = call.in[2], &v = call.in[3], &step = call.in[4];
  if (!kRun) return Status();
  return launched(call, cuda::adamw(g_dev->stream, p.f32(), g.f32(), m.f32(), v.f32(), step.i64(), p.numel,
                                    double(attrs->lr()), double(attrs->beta1()), double(attrs->beta2()), attrs->eps(),
                                    double(attrs->weight_decay()), int(Opcode::AdamWUpdate), g_dev->err));
}

template <bool kRun>
Status increment_step(const KernelCall& call) {
  const Tensor& s = call.in[0];
  ZERO_RETURN_IF_ERROR(expect_step_scalar(call, s));
  if (!kRun) return Status();
  return launched(call, cuda::increment(g_dev->stream, s.i64()));
}

// ---- the backend ---------------------------------------------------------------------

class CudaAllocator final : public Allocator {
 public:
  void* allocate(size_t bytes, size_t alignment) override {
    if (alignment > 256) return nullptr;  // cudaMalloc guarantees 256
    void* p = nullptr;
    return cudaMalloc(&p, bytes ? bytes : 1) == cudaSuccess ? p : nullptr;
  }
  void deallocate(void* ptr) override { cudaFree(ptr); }
};

class CudaBackend final : public TableBackend {
 public:
  explicit CudaBackend(CudaDevice::State* d) : d_(d) {
#define ZERO_SET(op, fn) set(Opcode::op, fn<true>, fn<false>)
#define ZERO_SET_T(op, fn, ...) set(Opcode::op, fn<__VA_ARGS__, true>, fn<__VA_ARGS__, false>)
#define ZERO_BINARY(op) ZERO_SET_T(op, binary, elementwise::op);
#define ZERO_UNARY(op) ZERO_SET_T(op, unary, elementwise::op);
#define ZERO_DERIVATIVE(op) ZERO_UNARY(op) ZERO_SET_T(op##Grad, derivative, elementwise::op);
    ZERO_ELEMENTWISE_BINARY_OPS(ZERO_BINARY)
    ZERO_ELEMENTWISE_UNARY_OPS(ZERO_UNARY)
    ZERO_ELEMENTWISE_UNARY_OPS_WITH_DERIVATIVE(ZERO_DERIVATIVE)
#define ZERO_ATTRIBUTES(op)                                   \
  ZERO_SET_T(op, parameterized_unary, elementwise::op); \
  ZERO_SET_T(op##Grad, parameterized_derivative, elementwise::op);
    ZERO_ELEMENTWISE_UNARY_OPS_WITH_ATTRIBUTES(ZERO_ATTRIBUTES)
#undef ZERO_ATTRIBUTES
#define ZERO_COMPARISON(op) ZERO_SET_T(op, comparison, elementwise::op);
#define ZERO_LOGICAL(op) ZERO_SET_T(op, logical, elementwise::op);
#define ZERO_LOGICAL_UNARY(op) ZERO_SET_T(op, logical_unary, elementwise::op);
    ZERO_ELEMENTWISE_COMPARISON_OPS(ZERO_COMPARISON)
    ZERO_ELEMENTWISE_LOGICAL_OPS(ZERO_LOGICAL)
    ZERO_ELEMENTWISE_LOGICAL_UNARY_OPS(ZERO_LOGICAL_UNARY)
#undef ZERO_COMPARISON
#undef ZERO_LOGICAL
#undef ZERO_LOGICAL_UNARY
#undef ZERO_BINARY
#undef ZERO_UNARY
#undef ZERO_DERIVATIVE
    ZERO_SET(Copy, copy);
    ZERO_SET(Cast, cast);
    ZERO_SET(Fill, fill);
    ZERO_SET(Gemm, gemm);
    ZERO_SET(MatMul, matmul);
    ZERO_SET_T(Softmax, softmax, false);
    ZERO_SET_T(LogSoftmax, softmax, true);
    ZERO_SET_T(SoftmaxGrad, softmax_grad, false);
    ZERO_SET_T(LogSoftmaxGrad, softmax_grad, true);
    ZERO_SET_T(SoftmaxCrossEntropyLoss, loss, true);
    ZERO_SET_T(NegativeLogLikelihoodLoss, loss, false);
    ZERO_SET_T(SoftmaxCrossEntropyLossGrad, loss_grad, true);
    ZERO_SET_T(NegativeLogLikelihoodLossGrad, loss_grad, false);
    ZERO_SET_T(ReduceSum, reduce, false);
    ZERO_SET_T(ReduceMean, reduce, true);
    ZERO_SET(Transpose, transpose);
    ZERO_SET(Expand, expand);
    ZERO_SET(Gather, gather);
    ZERO_SET(GatherGrad, gather_grad);
    ZERO_SET(Slice, slice);
    ZERO_SET(SliceGrad, slice_grad);
    ZERO_SET(Concat, concat);
    ZERO_SET(Where, where);
    ZERO_SET(LayerNormalization, layer_norm);
    ZERO_SET(LayerNormalizationGrad, layer_norm_grad);
    ZERO_SET(SgdUpdate, sgd_update);
    ZERO_SET(AdamWUpdate, adamw_update);
    ZERO_SET(IncrementStep, increment_step);
    ZERO_SET(Conv, conv);
    ZERO_SET(ConvGradInput, conv_grad_input);
    ZERO_SET(ConvGradWeight, conv_grad_weight);
    ZERO_SET(MaxPool, max_pool);
    ZERO_SET(MaxPoolGrad, max_pool_grad);
    ZERO_SET(AveragePool, average_pool);
    ZERO_SET(AveragePoolGrad, average_pool_grad);
    ZERO_SET(BatchNormalization, batch_norm);
    ZERO_SET(BatchNormalizationGrad, batch_norm_grad);
#undef ZERO_SET
#undef ZERO_SET_T
  }

  plan::Backend kind() const override { return plan::Backend::Cuda; }

  Status copy_to_device(void* dev, const void* host, size_t bytes) const override {
    if (!bytes) return Status();
    ZERO_RETURN_IF_ERROR(cuda_status(cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, d_->stream),
                                     "cudaMemcpy (host to device)"));
    // The host buffer may be reused as soon as we return.
    return cuda_status(cudaStreamSynchronize(d_->stream), "cudaMemcpy (host to device)");
  }
  Status copy_to_host(void* host, const void* dev, size_t bytes) const override {
    if (!bytes) return Status();
    ZERO_RETURN_IF_ERROR(cuda_status(cudaMemcpyAsync(host, dev, bytes, cudaMemcpyDeviceToHost, d_->stream),
                                     "cudaMemcpy (device to host)"));
    return cuda_status(cudaStreamSynchronize(d_->stream), "cudaMemcpy (device to host)");
  }
  Status zero_fill(void* dev, size_t bytes) const override {
    if (!bytes) return Status();
    ZERO_RETURN_IF_ERROR(cuda_status(cudaMemsetAsync(dev, 0, bytes, d_->stream), "cudaMemset"));
    return cuda_status(cudaStreamSynchronize(d_->stream), "cudaMemset");
  }
  uint64_t available_memory() const override {
    size_t free = 0, total = 0;
    return cudaMemGetInfo(&free, &total) == cudaSuccess ? uint64_t(free) : 0;
  }
  Status finish_step() const override {
    ZERO_RETURN_IF_ERROR(cuda_status(cudaStreamSynchronize(d_->stream), "CUDA step"));
    int code = 0;
    ZERO_RETURN_IF_ERROR(cuda_status(cudaMemcpyAsync(&code, d_->err, sizeof(int), cudaMemcpyDeviceToHost, d_->stream),
                                     "reading the CUDA error word"));
    ZERO_RETURN_IF_ERROR(cuda_status(cudaStreamSynchronize(d_->stream), "reading the CUDA error word"));
    if (code == 0) return Status();
    // Cleared on the compute stream, ahead of the next step's kernels: a plain
    // cudaMemset runs on the legacy stream, which the non-blocking compute
    // stream does not wait for, so it could wipe the next step's report.
    ZERO_RETURN_IF_ERROR(
        cuda_status(cudaMemsetAsync(d_->err, 0, sizeof(int), d_->stream), "clearing the CUDA error word"));
    const char* op = plan::EnumNameOpcode(plan::Opcode(code % 1024));
    const int kind = code / 1024;
    const char* what = kind == cuda::kErrIndex   ? "an index out of range"
                       : kind == cuda::kErrLabel ? "a label out of range [0, classes)"
                       : kind == cuda::kErrStep  ? "step < 1 (missing IncrementStep?)"
                                                 : "an error";
    return Status::out_of_range(std::string("CUDA kernel ") + (op && *op ? op : "?") + " found " + what +
                         " (reported by the device after the step)");
  }

 private:
  CudaDevice::State* d_;
};

}  // namespace

int64_t set_cuda_conv_scratch_limit(int64_t floats) {
  const int64_t old = conv_scratch_limit;
  conv_scratch_limit = std::max<int64_t>(1, floats);
  return old;
}

int cuda_device_count(std::string* why) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    if (why) *why = std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
    cudaGetLastError();  // clear the sticky error
    return 0;
  }
  if (n == 0 && why) *why = "no CUDA device";
  return n;
}

CudaDevice::CudaDevice(std::unique_ptr<State> s) : s_(std::move(s)) {}

CudaDevice::~CudaDevice() {
  if (!s_) return;
  cudaSetDevice(s_->device);
  if (s_->stream) cudaStreamSynchronize(s_->stream);
  if (s_->scratch) cudaFree(s_->scratch);
  if (s_->err) cudaFree(s_->err);
  if (s_->blas) cublasDestroy(s_->blas);
  if (s_->stream) cudaStreamDestroy(s_->stream);
  if (g_dev == s_.get()) g_dev = nullptr;
}

bool cuda_backend_implements(plan::Opcode op) {
  static const CudaBackend table(nullptr);  // no kernel runs, so no device is needed
  return table.kernel(op) != nullptr;
}

Status CudaDevice::create(const CudaOptions& options, std::unique_ptr<CudaDevice>* out) {
  if (g_dev) return Status::failed_precondition("a CudaDevice already exists in this process");
  std::string why;
  const int count = cuda_device_count(&why);
  if (count == 0) return Status::unavailable("no GPU is available (" + why + ")");
  if (options.device < 0 || options.device >= count)
    return Status::not_found("GPU " + std::to_string(options.device) + " does not exist (" + std::to_string(count) +
                         " visible)");
  auto s = std::make_unique<State>();
  s->device = options.device;
  std::unique_ptr<CudaDevice> dev(new CudaDevice(std::move(s)));
  State& d = *dev->s_;
  ZERO_RETURN_IF_ERROR(cuda_status(cudaSetDevice(d.device), "cudaSetDevice"));
  ZERO_RETURN_IF_ERROR(cuda_status(cudaStreamCreateWithFlags(&d.stream, cudaStreamNonBlocking), "cudaStreamCreate"));
  ZERO_RETURN_IF_ERROR(blas_status(cublasCreate(&d.blas), "cublasCreate"));
  ZERO_RETURN_IF_ERROR(blas_status(cublasSetStream(d.blas, d.stream), "cublasSetStream"));
  ZERO_RETURN_IF_ERROR(blas_status(
      cublasSetMathMode(d.blas, options.allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
      "cublasSetMathMode"));
  ZERO_RETURN_IF_ERROR(cuda_status(cudaMalloc(&d.err, sizeof(int)), "cudaMalloc"));
  // On the compute stream (see finish_step), complete before any kernel.
  ZERO_RETURN_IF_ERROR(cuda_status(cudaMemsetAsync(d.err, 0, sizeof(int), d.stream), "cudaMemset"));
  ZERO_RETURN_IF_ERROR(cuda_status(cudaStreamSynchronize(d.stream), "cudaMemset"));
  d.alloc = std::make_unique<CudaAllocator>();
  d.backend = std::make_unique<CudaBackend>(&d);
  g_dev = &d;
  *out = std::move(dev);
  return Status();
}

const Backend* CudaDevice::backend() const { return s_->backend.get(); }
Allocator* CudaDevice::allocator() { return s_->alloc.get(); }
int CudaDevice::device() const { return s_->device; }
void* CudaDevice::stream() const { return s_->stream; }
Status CudaDevice::synchronize() { return cuda_status(cudaStreamSynchronize(s_->stream), "cudaStreamSynchronize"); }
Status CudaDevice::memory_in_use(size_t* bytes) const {
  size_t free = 0, total = 0;
  ZERO_RETURN_IF_ERROR(cuda_status(cudaMemGetInfo(&free, &total), "cudaMemGetInfo"));
  *bytes = total - free;
  return Status();
}

}  // namespace zero
