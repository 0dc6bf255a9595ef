// The CUDA backend: operand checks and geometry on the host (the CPU
// backend's validators where it has them, the same checks otherwise), GEMMs
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
#include "zero/cuda.h"

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
  return Status::error(std::string(what) + ": " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
}

Status blas_status(cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return Status();
  return Status::error(std::string(what) + ": cuBLAS error " + std::to_string(int(s)));
}

Status fail(const KernelCall& call, const std::string& what) {
  const char* op = plan::EnumNameOpcode(call.inst->opcode());
  std::string msg = std::string(op && *op ? op : "unknown opcode");
  if (call.inst->loc() && call.inst->loc()->size() > 0) msg += " (" + call.inst->loc()->str() + ")";
  return Status::error(msg + ": " + what);
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

// ---- shared checks (as in cpu/kernels.cc) ----------------------------------

Status expect_f32(const KernelCall& call, const Tensor& t, const char* role) {
  if (t.dtype != DType::F32) return fail(call, std::string(role) + " must be F32");
  return Status();
}

Status expect_same_numel(const KernelCall& call, const Tensor& a, const Tensor& b, const char* what) {
  if (a.numel != b.numel)
    return fail(call, std::string(what) + " shapes differ: " + tensor_shape_string(a) + " vs " +
                          tensor_shape_string(b));
  return Status();
}

bool normalize_axis(int64_t axis, int ndim, int* out) {
  if (axis < -ndim || axis >= ndim) return false;
  *out = static_cast<int>(axis < 0 ? axis + ndim : axis);
  return true;
}

bool broadcast_strides(const Tensor& t, const Tensor& shape, int64_t* strides) {
  if (t.ndim > shape.ndim) return false;
  int64_t stride = 1;
  for (int i = shape.ndim - 1; i >= 0; --i) {
    int j = i - (shape.ndim - t.ndim);
    if (j < 0) {
      strides[i] = 0;
      continue;
    }
    if (t.dims[j] == shape.dims[i]) strides[i] = shape.dims[i] == 1 ? 0 : stride;
    else if (t.dims[j] == 1) strides[i] = 0;
    else return false;
    stride *= t.dims[j];
  }
  return true;
}

bool same_shape(const Tensor& a, const Tensor& b) {
  if (a.ndim != b.ndim) return false;
  for (int i = 0; i < a.ndim; ++i)
    if (a.dims[i] != b.dims[i]) return false;
  return true;
}

void contiguous_strides(const Tensor& t, int64_t* strides) {
  int64_t s = 1;
  for (int i = t.ndim - 1; i >= 0; --i) {
    strides[i] = s;
    s *= t.dims[i];
  }
}

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

Validator cpu_validator(Opcode op) { return cpu_backend().validator(op); }

// ---- elementwise --------------------------------------------------------------

template <cuda::BinOp kOp, bool kRun>
Status binary(const KernelCall& call) {
  const Tensor &a = call.in[0], &b = call.in[1], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(expect_f32(call, a, "a"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, b, "b"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, y, "output"));
  Strided g = shape_of(y);
  if (!broadcast_strides(a, y, g.s[0]) || !broadcast_strides(b, y, g.s[1]))
    return fail(call, "cannot broadcast " + tensor_shape_string(a) + " and " + tensor_shape_string(b) + " to " +
                          tensor_shape_string(y));
  if (!kRun) return Status();
  const bool same = a.numel == y.numel && (b.numel == y.numel || b.numel == 1);
  return launched(call, cuda::binary(g_dev->stream, kOp, a.f32(), b.f32(), y.f32(), y.numel,
                                     same && b.numel == 1 && y.numel != 1, same ? nullptr : &g));
}

template <cuda::UnOp kOp, bool kRun>
Status unary(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(expect_f32(call, x, "x"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, y, "output"));
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, x, y, "input and output"));
  if (!kRun) return Status();
  return launched(call, cuda::unary(g_dev->stream, kOp, x.f32(), y.f32(), x.numel));
}

template <cuda::GradOp kOp, bool kRun>
Status unary_grad(const KernelCall& call) {
  const Tensor &dy = call.in[0], &x = call.in[1], &dx = call.out[0];
  ZERO_RETURN_IF_ERROR(expect_f32(call, dy, "dy"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, x, "x"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, dx, "dx"));
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, dy, x, "dy and x"));
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, dy, dx, "dy and dx"));
  if (!kRun) return Status();
  return launched(call, cuda::unary_grad(g_dev->stream, kOp, dy.f32(), x.f32(), dx.f32(), dy.numel));
}

template <bool kRun>
Status copy(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  if (x.dtype != y.dtype) return fail(call, "input and output dtypes differ");
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, x, y, "input and output"));
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

bool fits_int(int64_t v) { return v >= 0 && v <= 0x7fffffff; }

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
  const auto* attrs = call.inst->attrs_as_GemmAttrs();
  const bool ta = attrs && attrs->trans_a(), tb = attrs && attrs->trans_b();
  const float alpha = attrs ? attrs->alpha() : 1.f, beta = attrs ? attrs->beta() : 1.f;
  ZERO_RETURN_IF_ERROR(expect_f32(call, a, "A"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, b, "B"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, y, "Y"));
  if (a.ndim != 2 || b.ndim != 2 || y.ndim != 2)
    return fail(call, "A, B and Y must be 2-D, got " + tensor_shape_string(a) + ", " + tensor_shape_string(b) +
                          ", " + tensor_shape_string(y));
  const int64_t m = ta ? a.dims[1] : a.dims[0], k = ta ? a.dims[0] : a.dims[1];
  const int64_t kb = tb ? b.dims[1] : b.dims[0], n = tb ? b.dims[0] : b.dims[1];
  if (k != kb || y.dims[0] != m || y.dims[1] != n)
    return fail(call, "shapes " + tensor_shape_string(a) + " x " + tensor_shape_string(b) + " -> " +
                          tensor_shape_string(y) + " do not match");
  if (!fits_int(m) || !fits_int(n) || !fits_int(k)) return fail(call, "dimensions exceed BLAS int range");
  Strided g = shape_of(y);
  const bool with_c = call.num_in > 2 && beta != 0.f;
  if (with_c) {
    const Tensor& c = call.in[2];
    ZERO_RETURN_IF_ERROR(expect_f32(call, c, "C"));
    if (!broadcast_strides(c, y, g.s[0]))
      return fail(call, "C " + tensor_shape_string(c) + " does not broadcast to " + tensor_shape_string(y));
  }
  if (!kRun) return Status();
  float c_beta = 0.f;
  if (with_c) {
    if (call.in[2].data != y.data)
      ZERO_RETURN_IF_ERROR(launched(call, cuda::strided_gather(g_dev->stream, call.in[2].data, y.data, 4, g, y.numel)));
    c_beta = beta;
  }
  return sgemm(call, ta, tb, m, n, k, alpha, a.f32(), b.f32(), c_beta, y.f32());
}

struct MatMulGeom {
  int64_t m, n, k;
  Tensor batch;  // broadcast batch shape
  int64_t sa[kMaxRank], sb[kMaxRank];
  int64_t batch_a, batch_b;
};

Status matmul_geometry(const KernelCall& call, MatMulGeom* g) {
  const Tensor &a = call.in[0], &b = call.in[1], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(expect_f32(call, a, "A"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, b, "B"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, y, "Y"));
  const auto mismatch = [&] {
    return fail(call, "shapes " + tensor_shape_string(a) + " x " + tensor_shape_string(b) + " -> " +
                          tensor_shape_string(y) + " do not match");
  };
  if (a.ndim < 1 || b.ndim < 1) return mismatch();
  g->m = a.ndim == 1 ? 1 : a.dims[a.ndim - 2];
  g->k = a.dims[a.ndim - 1];
  const int64_t kb = b.ndim == 1 ? b.dims[0] : b.dims[b.ndim - 2];
  g->n = b.ndim == 1 ? 1 : b.dims[b.ndim - 1];
  if (g->k != kb) return mismatch();
  Tensor ba, bb;
  ba.ndim = std::max(a.ndim - 2, 0);
  bb.ndim = std::max(b.ndim - 2, 0);
  std::copy(a.dims, a.dims + ba.ndim, ba.dims);
  std::copy(b.dims, b.dims + bb.ndim, bb.dims);
  Tensor& batch = g->batch;
  batch.ndim = std::max(ba.ndim, bb.ndim);
  batch.numel = 1;
  for (int i = 0; i < batch.ndim; ++i) {
    int ia = i - (batch.ndim - ba.ndim), ib = i - (batch.ndim - bb.ndim);
    int64_t da = ia >= 0 ? ba.dims[ia] : 1, db = ib >= 0 ? bb.dims[ib] : 1;
    if (da != db && da != 1 && db != 1) return mismatch();
    batch.dims[i] = std::max(da, db);
    if (da == 0 || db == 0) batch.dims[i] = 0;
    batch.numel *= batch.dims[i];
  }
  Tensor expect;
  expect.ndim = batch.ndim;
  std::copy(batch.dims, batch.dims + batch.ndim, expect.dims);
  if (a.ndim > 1) expect.dims[expect.ndim++] = g->m;
  if (b.ndim > 1) expect.dims[expect.ndim++] = g->n;
  if (expect.ndim > kMaxRank || !same_shape(expect, y)) return mismatch();
  if (!fits_int(g->m) || !fits_int(g->n) || !fits_int(g->k)) return fail(call, "dimensions exceed BLAS int range");
  g->batch_a = g->batch_b = 1;
  for (int i = 0; i < ba.ndim; ++i) g->batch_a *= ba.dims[i];
  for (int i = 0; i < bb.ndim; ++i) g->batch_b *= bb.dims[i];
  ba.numel = g->batch_a;
  bb.numel = g->batch_b;
  broadcast_strides(ba, batch, g->sa);
  broadcast_strides(bb, batch, g->sb);
  if (!fits_int(batch.numel)) return fail(call, "batch exceeds BLAS int range");
  return Status();
}

template <bool kRun>
Status matmul(const KernelCall& call) {
  MatMulGeom g;
  ZERO_RETURN_IF_ERROR(matmul_geometry(call, &g));
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

struct AxisSplit {
  int64_t outer = 1, n = 1, inner = 1;
};

Status split_axis(const KernelCall& call, const Tensor& t, int64_t axis, AxisSplit* s) {
  int ax;
  if (!normalize_axis(axis, t.ndim, &ax))
    return fail(call, "axis " + std::to_string(axis) + " out of range for " + tensor_shape_string(t));
  for (int i = 0; i < ax; ++i) s->outer *= t.dims[i];
  s->n = t.dims[ax];
  for (int i = ax + 1; i < t.ndim; ++i) s->inner *= t.dims[i];
  return check_grid(call, s->outer * s->inner);
}

int64_t axis_attr(const KernelCall& call) {
  const auto* attrs = call.inst->attrs_as_AxisAttrs();
  return attrs ? attrs->axis() : -1;
}

template <bool kLog, bool kRun>
Status softmax(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(expect_f32(call, x, "x"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, y, "y"));
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, x, y, "input and output"));
  AxisSplit s;
  ZERO_RETURN_IF_ERROR(split_axis(call, x, axis_attr(call), &s));
  if (!kRun) return Status();
  return launched(call, cuda::softmax(g_dev->stream, x.f32(), y.f32(), s.outer, s.n, s.inner, kLog));
}

template <bool kLog, bool kRun>
Status softmax_grad(const KernelCall& call) {
  const Tensor &dy = call.in[0], &y = call.in[1], &dx = call.out[0];
  ZERO_RETURN_IF_ERROR(expect_f32(call, dy, "dy"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, y, "y"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, dx, "dx"));
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, dy, y, "dy and y"));
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, dy, dx, "dy and dx"));
  AxisSplit s;
  ZERO_RETURN_IF_ERROR(split_axis(call, y, axis_attr(call), &s));
  if (!kRun) return Status();
  return launched(call, cuda::softmax_grad(g_dev->stream, dy.f32(), y.f32(), dx.f32(), s.outer, s.n, s.inner, kLog));
}

Status loss_geometry(const KernelCall& call, const Tensor& scores, const Tensor& labels, cuda::LossArgs* g) {
  ZERO_RETURN_IF_ERROR(expect_f32(call, scores, "scores"));
  if (labels.dtype != DType::I64) return fail(call, "labels must be I64");
  bool ok = scores.ndim >= 2 && labels.ndim == scores.ndim - 1 && labels.dims[0] == scores.dims[0];
  for (int i = 2; ok && i < scores.ndim; ++i) ok = labels.dims[i - 1] == scores.dims[i];
  if (!ok)
    return fail(call, "scores " + tensor_shape_string(scores) + " and labels " + tensor_shape_string(labels) +
                          " do not match");
  g->n = scores.dims[0];
  g->c = scores.dims[1];
  g->inner = 1;
  for (int i = 2; i < scores.ndim; ++i) g->inner *= scores.dims[i];
  plan::Reduction r = plan::Reduction::Mean;
  g->has_ignore = false;
  g->ignore_index = 0;
  if (const auto* attrs = call.inst->attrs_as_LossAttrs()) {
    r = attrs->reduction();
    g->has_ignore = attrs->has_ignore_index();
    g->ignore_index = attrs->ignore_index();
  }
  if (r != plan::Reduction::Sum && r != plan::Reduction::Mean && r != plan::Reduction::None)
    return fail(call, "unknown reduction");
  g->reduction = r == plan::Reduction::Sum ? 0 : r == plan::Reduction::Mean ? 1 : 2;
  g->opcode = int(call.inst->opcode());
  return check_grid(call, g->n * g->inner);
}

Status check_loss_output(const KernelCall& call, const cuda::LossArgs& g, const Tensor& loss, const Tensor& labels,
                         const char* role) {
  ZERO_RETURN_IF_ERROR(expect_f32(call, loss, role));
  const int64_t want = g.reduction == 2 ? labels.numel : 1;
  if (loss.numel != want)
    return fail(call, std::string(role) + " has " + std::to_string(loss.numel) + " elements, expected " +
                          std::to_string(want));
  return Status();
}

template <bool kSoftmax, bool kRun>
Status loss(const KernelCall& call) {
  const Tensor &scores = call.in[0], &labels = call.in[1], &out = call.out[0];
  cuda::LossArgs g;
  ZERO_RETURN_IF_ERROR(loss_geometry(call, scores, labels, &g));
  ZERO_RETURN_IF_ERROR(check_loss_output(call, g, out, labels, "loss"));
  const Tensor* log_prob = kSoftmax && call.num_out > 1 ? &call.out[1] : nullptr;
  if (log_prob) {
    ZERO_RETURN_IF_ERROR(expect_f32(call, *log_prob, "log_prob"));
    ZERO_RETURN_IF_ERROR(expect_same_numel(call, scores, *log_prob, "scores and log_prob"));
  }
  if (!kRun) return Status();
  void* s;
  ZERO_RETURN_IF_ERROR(scratch(size_t(g.n * g.inner + 2) * sizeof(double), &s));
  return launched(call, cuda::loss(g_dev->stream, g, kSoftmax, scores.f32(), labels.i64(), out.f32(),
                                   log_prob ? log_prob->f32() : nullptr, static_cast<double*>(s), g_dev->err));
}

template <bool kSoftmax, bool kRun>
Status loss_grad(const KernelCall& call) {
  const Tensor &dloss = call.in[0], &x = call.in[1], &labels = call.in[2], &dx = call.out[0];
  cuda::LossArgs g;
  ZERO_RETURN_IF_ERROR(loss_geometry(call, x, labels, &g));
  ZERO_RETURN_IF_ERROR(check_loss_output(call, g, dloss, labels, "dloss"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, dx, "dinput"));
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, x, dx, "input and dinput"));
  if (!kRun) return Status();
  void* s;
  ZERO_RETURN_IF_ERROR(scratch(2 * sizeof(double), &s));
  return launched(call, cuda::loss_grad(g_dev->stream, g, kSoftmax, dloss.f32(), x.f32(), labels.i64(), dx.f32(),
                                        static_cast<double*>(s), g_dev->err));
}

// ---- reductions and layout ------------------------------------------------------

template <bool kMean, bool kRun>
Status reduce(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(expect_f32(call, x, "x"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, y, "y"));
  bool reduced[kMaxRank] = {};
  const auto* attrs = call.inst->attrs_as_ReduceAttrs();
  const bool all = !attrs || !attrs->axes() || attrs->axes()->size() == 0;
  for (int i = 0; all && i < x.ndim; ++i) reduced[i] = true;
  if (!all)
    for (int64_t axis : *attrs->axes()) {
      int ax;
      if (!normalize_axis(axis, x.ndim, &ax))
        return fail(call, "axis " + std::to_string(axis) + " out of range for " + tensor_shape_string(x));
      reduced[ax] = true;
    }
  int64_t xs[kMaxRank];
  contiguous_strides(x, xs);
  Strided kept, red;
  int64_t out_numel = 1, count = 1;
  for (int i = 0; i < x.ndim; ++i) {
    Strided& t = reduced[i] ? red : kept;
    t.dims[t.ndim] = x.dims[i];
    t.s[0][t.ndim] = xs[i];
    ++t.ndim;
    (reduced[i] ? count : out_numel) *= x.dims[i];
  }
  if (y.numel != out_numel)
    return fail(call, "output " + tensor_shape_string(y) + " does not match reducing " + tensor_shape_string(x));
  ZERO_RETURN_IF_ERROR(check_grid(call, out_numel));
  if (!kRun) return Status();
  if (x.data == y.data && out_numel != x.numel) {
    // Reading and writing one buffer across blocks: reduce from a copy.
    void* s;
    ZERO_RETURN_IF_ERROR(scratch(size_t(x.numel) * sizeof(float), &s));
    ZERO_RETURN_IF_ERROR(launched(call, cudaMemcpyAsync(s, x.data, size_t(x.numel) * sizeof(float),
                                                        cudaMemcpyDeviceToDevice, g_dev->stream)));
    return launched(call, cuda::reduce(g_dev->stream, static_cast<float*>(s), y.f32(), kept, out_numel, red, count,
                                       kMean));
  }
  return launched(call, cuda::reduce(g_dev->stream, x.f32(), y.f32(), kept, out_numel, red, count, kMean));
}

template <bool kRun>
Status transpose(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  if (x.dtype != y.dtype) return fail(call, "input and output dtypes differ");
  if (x.data == y.data && x.numel > 1) return fail(call, "transpose cannot run in place");
  int perm[kMaxRank];
  const auto* attrs = call.inst->attrs_as_PermAttrs();
  if (!attrs || !attrs->perm() || attrs->perm()->size() == 0) {
    for (int i = 0; i < x.ndim; ++i) perm[i] = x.ndim - 1 - i;
  } else {
    if (int(attrs->perm()->size()) != x.ndim) return fail(call, "perm length differs from rank");
    bool seen[kMaxRank] = {};
    for (int i = 0; i < x.ndim; ++i) {
      int64_t p = attrs->perm()->Get(i);
      if (p < 0 || p >= x.ndim || seen[p]) return fail(call, "perm is not a permutation");
      seen[p] = true;
      perm[i] = int(p);
    }
  }
  int64_t xs[kMaxRank];
  contiguous_strides(x, xs);
  bool ok = y.ndim == x.ndim;
  Strided g = shape_of(y);
  for (int i = 0; ok && i < x.ndim; ++i) {
    ok = y.dims[i] == x.dims[perm[i]];
    g.s[0][i] = xs[perm[i]];
  }
  if (!ok) return fail(call, "output " + tensor_shape_string(y) + " is not a permutation of " + tensor_shape_string(x));
  if (!kRun) return Status();
  return launched(call, cuda::strided_gather(g_dev->stream, x.data, y.data, elem_size(x), g, y.numel));
}

template <bool kRun>
Status expand(const KernelCall& call) {
  const Tensor &x = call.in[0], &y = call.out[0];
  if (x.dtype != y.dtype) return fail(call, "input and output dtypes differ");
  Strided g = shape_of(y);
  if (!broadcast_strides(x, y, g.s[0]))
    return fail(call, "cannot broadcast " + tensor_shape_string(x) + " to " + tensor_shape_string(y));
  if (x.data == y.data && x.numel != y.numel) return fail(call, "expand cannot run in place");
  if (!kRun || x.data == y.data) return Status();
  return launched(call, cuda::strided_gather(g_dev->stream, x.data, y.data, elem_size(x), g, y.numel));
}

// ---- Gather, Slice, Concat, Where (shapes checked by the CPU validators) ----------

struct GatherSplit {
  int64_t outer = 1, n = 1, inner = 1, q = 1;
};

GatherSplit gather_split(const KernelCall& call, const Tensor& data, const Tensor& indices) {
  const auto* attrs = call.inst->attrs_as_AxisAttrs();
  int ax = 0;
  normalize_axis(attrs ? attrs->axis() : 0, data.ndim, &ax);
  GatherSplit g;
  for (int i = 0; i < ax; ++i) g.outer *= data.dims[i];
  g.n = data.dims[ax];
  for (int i = ax + 1; i < data.ndim; ++i) g.inner *= data.dims[i];
  g.q = indices.numel;
  return g;
}

template <bool kRun>
Status gather(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(cpu_validator(Opcode::Gather)(call));
  const Tensor &data = call.in[0], &indices = call.in[1], &y = call.out[0];
  if (data.data == y.data && y.numel > 0) return fail(call, "gather cannot run in place");
  if (!kRun) return Status();
  const GatherSplit g = gather_split(call, data, indices);
  return launched(call, cuda::gather(g_dev->stream, data.data, indices.i64(), y.data, elem_size(data), g.outer, g.n,
                                     g.inner, g.q, int(Opcode::Gather), g_dev->err));
}

template <bool kRun>
Status gather_grad(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(cpu_validator(Opcode::GatherGrad)(call));
  const Tensor &dy = call.in[0], &indices = call.in[1], &dd = call.out[0];
  if (dd.data == dy.data && dd.numel > 0) return fail(call, "gather grad cannot run in place");
  if (!kRun) return Status();
  const GatherSplit g = gather_split(call, dd, indices);
  ZERO_RETURN_IF_ERROR(launched(call, cudaMemsetAsync(dd.data, 0, size_t(dd.numel) * sizeof(float), g_dev->stream)));
  return launched(call, cuda::gather_grad(g_dev->stream, dy.f32(), indices.i64(), dd.f32(), g.outer, g.n, g.inner,
                                          g.q, int(Opcode::GatherGrad), g_dev->err));
}

// Strides into the full tensor x per dimension of the slice y, and the
// element offset of y[0...] (attributes already validated).
void slice_strides(const KernelCall& call, const Tensor& x, const Tensor& y, Strided* g, int64_t* base) {
  const auto* attrs = call.inst->attrs_as_SliceAttrs();
  int64_t xs[kMaxRank];
  contiguous_strides(x, xs);
  *g = shape_of(y);
  *base = 0;
  for (int d = 0; d < x.ndim; ++d) {
    const int64_t start = attrs->starts()->Get(flatbuffers::uoffset_t(d));
    const int64_t step = attrs->steps()->Get(flatbuffers::uoffset_t(d));
    g->s[0][d] = step * xs[d];
    if (y.dims[d] != 0) *base += start * xs[d];
  }
  if (y.numel == 0) *base = 0;
}

template <bool kRun>
Status slice(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(cpu_validator(Opcode::Slice)(call));
  const Tensor &x = call.in[0], &y = call.out[0];
  Strided g;
  int64_t base;
  slice_strides(call, x, y, &g, &base);
  if (x.data == y.data && y.numel > 0 && !(base == 0 && x.numel == y.numel))
    return fail(call, "slice cannot run in place");
  if (!kRun || (x.data == y.data)) return Status();
  const int es = elem_size(x);
  return launched(call, cuda::strided_gather(g_dev->stream, static_cast<const char*>(x.data) + base * es, y.data, es,
                                             g, y.numel));
}

template <bool kRun>
Status slice_grad(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(cpu_validator(Opcode::SliceGrad)(call));
  const Tensor &dy = call.in[0], &dx = call.out[0];
  if (dx.data == dy.data && dx.numel > 0) return fail(call, "slice grad cannot run in place");
  if (!kRun) return Status();
  Strided g;
  int64_t base;
  slice_strides(call, dx, dy, &g, &base);
  ZERO_RETURN_IF_ERROR(launched(call, cudaMemsetAsync(dx.data, 0, size_t(dx.numel) * sizeof(float), g_dev->stream)));
  return launched(call, cuda::strided_scatter(g_dev->stream, dy.f32(), dx.f32() + base, g, dy.numel));
}

template <bool kRun>
Status concat(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(cpu_validator(Opcode::Concat)(call));
  if (!kRun) return Status();
  const Tensor& y = call.out[0];
  const auto* attrs = call.inst->attrs_as_AxisAttrs();
  int ax = 0;
  normalize_axis(attrs ? attrs->axis() : 0, y.ndim, &ax);
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < ax; ++d) outer *= y.dims[d];
  for (int d = ax + 1; d < y.ndim; ++d) inner *= y.dims[d];
  const size_t es = dtype_size(y.dtype), out_row = size_t(y.dims[ax] * inner) * es;
  char* dst = static_cast<char*>(y.data);
  size_t at = 0;
  for (int k = 0; k < call.num_in; ++k) {
    const Tensor& x = call.in[k];
    const size_t row = size_t(x.dims[ax] * inner) * es;
    if (row > 0 && outer > 0)
      ZERO_RETURN_IF_ERROR(launched(call, cudaMemcpy2DAsync(dst + at, out_row, x.data, row, row, size_t(outer),
                                                            cudaMemcpyDeviceToDevice, g_dev->stream)));
    at += row;
  }
  return Status();
}

template <bool kRun>
Status where(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(cpu_validator(Opcode::Where)(call));
  if (!kRun) return Status();
  const Tensor &c = call.in[0], &x = call.in[1], &y = call.in[2], &out = call.out[0];
  Strided g = shape_of(out);
  broadcast_strides(c, out, g.s[0]);
  broadcast_strides(x, out, g.s[1]);
  broadcast_strides(y, out, g.s[2]);
  return launched(call, cuda::where(g_dev->stream, c.i64(), x.data, y.data, out.data, elem_size(out), g, out.numel));
}

// ---- LayerNormalization -----------------------------------------------------------

void layer_norm_split(const KernelCall& call, const Tensor& x, int64_t* outer, int64_t* inner, float* eps) {
  const auto* attrs = call.inst->attrs_as_LayerNormAttrs();
  int ax = 0;
  normalize_axis(attrs->axis(), x.ndim, &ax);
  *outer = *inner = 1;
  for (int d = 0; d < ax; ++d) *outer *= x.dims[d];
  for (int d = ax; d < x.ndim; ++d) *inner *= x.dims[d];
  *eps = attrs->epsilon();
}

template <bool kRun>
Status layer_norm(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(cpu_validator(Opcode::LayerNormalization)(call));
  int64_t outer, inner;
  float eps;
  layer_norm_split(call, call.in[0], &outer, &inner, &eps);
  ZERO_RETURN_IF_ERROR(check_grid(call, outer));
  if (!kRun) return Status();
  return launched(call, cuda::layer_norm(g_dev->stream, call.in[0].f32(), call.in[1].f32(), call.in[2].f32(),
                                         call.out[0].f32(), call.num_out > 1 ? call.out[1].f32() : nullptr,
                                         call.num_out > 2 ? call.out[2].f32() : nullptr, outer, inner, eps));
}

template <bool kRun>
Status layer_norm_grad(const KernelCall& call) {
  ZERO_RETURN_IF_ERROR(cpu_validator(Opcode::LayerNormalizationGrad)(call));
  int64_t outer, inner;
  float eps;
  layer_norm_split(call, call.in[1], &outer, &inner, &eps);
  ZERO_RETURN_IF_ERROR(check_grid(call, outer));
  if (!kRun) return Status();
  return launched(call, cuda::layer_norm_grad(g_dev->stream, call.in[0].f32(), call.in[1].f32(), call.in[2].f32(),
                                              call.in[3].f32(), call.in[4].f32(), call.out[0].f32(),
                                              call.num_out > 1 ? call.out[1].f32() : nullptr,
                                              call.num_out > 2 ? call.out[2].f32() : nullptr, outer, inner));
}

// ---- optimizers ---------------------------------------------------------------------

template <bool kRun>
Status sgd_update(const KernelCall& call) {
  const auto* attrs = call.inst->attrs_as_SgdAttrs();
  if (!attrs) return fail(call, "missing SgdAttrs");
  const Tensor &p = call.in[0], &g = call.in[1];
  ZERO_RETURN_IF_ERROR(expect_f32(call, p, "param"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, g, "grad"));
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, p, g, "param and grad"));
  const float momentum = attrs->momentum();
  float* buf = nullptr;
  if (momentum != 0.f) {
    if (call.num_in < 3) return fail(call, "momentum needs a momentum buffer operand");
    ZERO_RETURN_IF_ERROR(expect_f32(call, call.in[2], "momentum_buffer"));
    ZERO_RETURN_IF_ERROR(expect_same_numel(call, p, call.in[2], "param and momentum_buffer"));
    buf = call.in[2].f32();
  }
  if (!kRun) return Status();
  return launched(call, cuda::sgd(g_dev->stream, p.f32(), g.f32(), buf, p.numel, attrs->lr(), momentum,
                                  attrs->weight_decay()));
}

template <bool kRun>
Status adamw_update(const KernelCall& call) {
  const auto* attrs = call.inst->attrs_as_AdamWAttrs();
  if (!attrs) return fail(call, "missing AdamWAttrs");
  const Tensor &p = call.in[0], &g = call.in[1], &m = call.in[2], &v = call.in[3], &step = call.in[4];
  ZERO_RETURN_IF_ERROR(expect_f32(call, p, "param"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, g, "grad"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, m, "exp_avg"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, v, "exp_avg_sq"));
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, p, g, "param and grad"));
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, p, m, "param and exp_avg"));
  ZERO_RETURN_IF_ERROR(expect_same_numel(call, p, v, "param and exp_avg_sq"));
  if (step.dtype != DType::I64 || step.numel != 1) return fail(call, "step must be an I64 scalar");
  if (!kRun) return Status();
  return launched(call, cuda::adamw(g_dev->stream, p.f32(), g.f32(), m.f32(), v.f32(), step.i64(), p.numel,
                                    double(attrs->lr()), double(attrs->beta1()), double(attrs->beta2()), attrs->eps(),
                                    double(attrs->weight_decay()), int(Opcode::AdamWUpdate), g_dev->err));
}

template <bool kRun>
Status increment_step(const KernelCall& call) {
  const Tensor& s = call.in[0];
  if (s.dtype != DType::I64 || s.numel != 1) return fail(call, "step must be an I64 scalar");
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

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(CudaDevice::State* d) : d_(d) {
    using B = cuda::BinOp;
    using U = cuda::UnOp;
    using G = cuda::GradOp;
#define ZERO_SET(op, fn) set(Opcode::op, fn<true>, fn<false>)
#define ZERO_SET_T(op, fn, ...) set(Opcode::op, fn<__VA_ARGS__, true>, fn<__VA_ARGS__, false>)
    ZERO_SET_T(Add, binary, B::Add);
    ZERO_SET_T(Sub, binary, B::Sub);
    ZERO_SET_T(Mul, binary, B::Mul);
    ZERO_SET_T(Div, binary, B::Div);
    ZERO_SET_T(Pow, binary, B::Pow);
    ZERO_SET_T(Neg, unary, U::Neg);
    ZERO_SET_T(Sqrt, unary, U::Sqrt);
    ZERO_SET_T(Relu, unary, U::Relu);
    ZERO_SET_T(Tanh, unary, U::Tanh);
    ZERO_SET_T(Sigmoid, unary, U::Sigmoid);
    ZERO_SET_T(Erf, unary, U::Erf);
    ZERO_SET_T(Exp, unary, U::Exp);
    ZERO_SET_T(Log, unary, U::Log);
    ZERO_SET_T(ReluGrad, unary_grad, G::Relu);
    ZERO_SET_T(TanhGrad, unary_grad, G::Tanh);
    ZERO_SET_T(SigmoidGrad, unary_grad, G::Sigmoid);
    ZERO_SET_T(ErfGrad, unary_grad, G::Erf);
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
#undef ZERO_SET
#undef ZERO_SET_T
    // Not yet: Conv, ConvGradInput, ConvGradWeight, MaxPool(Grad),
    // AveragePool(Grad), BatchNormalization(Grad) -- a load-time error.
  }

  plan::Backend kind() const override { return plan::Backend::Cuda; }
  Kernel kernel(plan::Opcode op) const override {
    auto i = size_t(op);
    return i < kTableSize ? table_[i] : nullptr;
  }
  Validator validator(plan::Opcode op) const override {
    auto i = size_t(op);
    return i < kTableSize ? validators_[i] : nullptr;
  }

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
  Status finish_step() const override {
    ZERO_RETURN_IF_ERROR(cuda_status(cudaStreamSynchronize(d_->stream), "CUDA step"));
    int code = 0;
    ZERO_RETURN_IF_ERROR(
        cuda_status(cudaMemcpy(&code, d_->err, sizeof(int), cudaMemcpyDeviceToHost), "reading the CUDA error word"));
    if (code == 0) return Status();
    cudaMemset(d_->err, 0, sizeof(int));
    const char* op = plan::EnumNameOpcode(plan::Opcode(code % 1024));
    const int kind = code / 1024;
    const char* what = kind == cuda::kErrIndex   ? "an index out of range"
                       : kind == cuda::kErrLabel ? "a label out of range [0, classes)"
                       : kind == cuda::kErrStep  ? "step < 1 (missing IncrementStep?)"
                                                 : "an error";
    return Status::error(std::string("CUDA kernel ") + (op && *op ? op : "?") + " found " + what +
                         " (reported by the device after the step)");
  }

 private:
  static constexpr size_t kTableSize = 256;
  void set(Opcode op, Kernel k, Validator v) {
    table_[size_t(op)] = k;
    validators_[size_t(op)] = v;
  }
  CudaDevice::State* d_;
  Kernel table_[kTableSize] = {};
  Validator validators_[kTableSize] = {};
};

}  // namespace

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

Status CudaDevice::create(const CudaOptions& options, std::unique_ptr<CudaDevice>* out) {
  if (g_dev) return Status::error("a CudaDevice already exists in this process");
  std::string why;
  const int count = cuda_device_count(&why);
  if (count == 0) return Status::error("no GPU is available (" + why + ")");
  if (options.device < 0 || options.device >= count)
    return Status::error("GPU " + std::to_string(options.device) + " does not exist (" + std::to_string(count) +
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
  ZERO_RETURN_IF_ERROR(cuda_status(cudaMemset(d.err, 0, sizeof(int)), "cudaMemset"));
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

int local_rank_from_env() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID", "LOCAL_RANK"}) {
    const char* v = std::getenv(name);
    if (v && *v) {
      char* end = nullptr;
      long r = std::strtol(v, &end, 10);
      if (*end == '\0' && r >= 0 && r < INT_MAX) return int(r);
    }
  }
  return -1;
}

}  // namespace zero
