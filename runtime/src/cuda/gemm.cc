// The CUDA backend's host side for Gemm and MatMul through cuBLAS (a column-major view of row-major data): operand
// checks (kernel_checks.h, run at load with kRun = false) and the launches (kernels.h); the device side is gemm.cu.
#include <algorithm>
#include <climits>
#include <string>

#include "cuda/backend_internal.h"

namespace zero {
namespace cuda_backend {
namespace {

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
    ZERO_RETURN_IF_ERROR(
        sgemm(call, false, false, m, n, k, 1.f, pa + ia * m * k, pb + ib * k * n, 0.f, py + o * m * n));
  }
  return Status();
}

}  // namespace

void add_cuda_gemm_kernels(TableBackend& backend) {
  ZERO_CUDA_SET(Gemm, gemm);
  ZERO_CUDA_SET(MatMul, matmul);
}

}  // namespace cuda_backend

}  // namespace zero
