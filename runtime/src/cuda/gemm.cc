// The CUDA backend's host side for Gemm and MatMul through cuBLAS (a column-major view of row-major data): the
// prepares (operand checks of kernel_checks.h, at load) and the launches (kernels.h); the device side is gemm.cu.
#include <algorithm>
#include <climits>
#include <string>

#include "cuda/backend_internal.h"

namespace zero {
namespace cuda_backend {
namespace {

// ---- Gemm / MatMul (cuBLAS, column-major view of row-major data) --------------

// Row-major C[m,n] = alpha * op(A) op(B) + beta * C.
Status sgemm(const DeviceContext& dev, const KernelCall& call, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
             float alpha, const float* a, const float* b, float beta, float* c, int64_t batch = 1, int64_t stride_a = 0,
             int64_t stride_b = 0, int64_t stride_c = 0) {
  if (m == 0 || n == 0 || batch == 0) return Status();
  if (k == 0) {
    // C = beta * C (all batches are contiguous here: stride_c == m * n).
    const int64_t total = m * n * batch;
    if (beta == 0.f) return launched(call, cudaMemsetAsync(c, 0, size_t(total) * sizeof(float), dev.stream));
    return launched(call, cuda::scale(dev.stream, c, beta, total));
  }
  const cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int lda = int(ta ? m : k), ldb = int(tb ? k : n);
  cublasStatus_t s;
  if (batch == 1)
    s = cublasSgemm(dev.blas, opb, opa, int(n), int(m), int(k), &alpha, b, ldb, a, lda, &beta, c, int(n));
  else
    s = cublasSgemmStridedBatched(dev.blas, opb, opa, int(n), int(m), int(k), &alpha, b, ldb, stride_b, a, lda,
                                  stride_a, &beta, c, int(n), stride_c, int(batch));
  if (s != CUBLAS_STATUS_SUCCESS) return fail(call, "cuBLAS SGEMM failed with status " + std::to_string(int(s)));
  return Status();
}

// The geometry, and C's strides broadcast to Y in c.s[0] over Y's shape.
struct GemmState {
  GemmGeom g;
  Strided c;
};

Status prepare_gemm(const KernelCall& call, GemmState* s) {
  s->c = shape_of(call.out[0]);
  return gemm_geometry(call, &s->g, s->c.s[0]);
}

Status gemm(const KernelContext& ctx, const KernelCall& call, const GemmState& s) {
  const Tensor &a = call.in[0], &b = call.in[1], &y = call.out[0];
  const GemmGeom& gg = s.g;
  const DeviceContext& dev = *ctx.device;
  float c_beta = 0.f;
  if (gg.with_c) {
    if (call.in[2].data != y.data)
      ZERO_RETURN_IF_ERROR(launched(call, cuda::strided_gather(dev.stream, call.in[2].data, y.data, 4, s.c, y.numel)));
    c_beta = gg.beta;
  }
  return sgemm(dev, call, gg.ta, gg.tb, gg.m, gg.n, gg.k, gg.alpha, a.f32(), b.f32(), c_beta, y.f32());
}

Status prepare_matmul(const KernelCall& call, MatMulGeom* g) {
  ZERO_RETURN_IF_ERROR(matmul_geometry(call, g));
  if (!fits_int(g->batch.numel)) return fail(call, "batch exceeds BLAS int range");
  if (g->batch_b == 1 && g->batch_a == g->batch.numel && !fits_int(g->batch.numel * g->m))
    return fail(call, "rows exceed BLAS int range");
  return Status();
}

Status matmul(const KernelContext& ctx, const KernelCall& call, const MatMulGeom& g) {
  const DeviceContext& dev = *ctx.device;
  const float *pa = call.in[0].f32(), *pb = call.in[1].f32();
  float* py = call.out[0].f32();
  const int64_t m = g.m, n = g.n, k = g.k, nb = g.batch.numel;
  if (g.batch_b == 1 && g.batch_a == nb)
    return sgemm(dev, call, false, false, nb * m, n, k, 1.f, pa, pb, 0.f, py);  // one GEMM over all rows of A
  // Every batch of A and of B either distinct (same batch shape) or shared.
  if ((g.batch_a == nb || g.batch_a == 1) && (g.batch_b == nb || g.batch_b == 1))
    return sgemm(dev, call, false, false, m, n, k, 1.f, pa, pb, 0.f, py, nb, g.batch_a == 1 ? 0 : m * k,
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
    ZERO_RETURN_IF_ERROR(
        sgemm(dev, call, false, false, m, n, k, 1.f, pa + ia * m * k, pb + ib * k * n, 0.f, py + o * m * n));
  }
  return Status();
}

}  // namespace

void add_cuda_gemm_kernels(TableBackend& backend) {
  backend.set(Opcode::Gemm, define_kernel<prepare_gemm, gemm>());
  backend.set(Opcode::MatMul, define_kernel<prepare_matmul, matmul>());
}

}  // namespace cuda_backend

}  // namespace zero
