// CPU kernels: Gemm and MatMul (cblas_sgemm). Each kernel's prepare checks its operands at load (the shared checks of
// kernel_checks.h) and keeps the geometry its execute runs from.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "backend.h"
#include "cpu/broadcast.h"
#include "cpu/kernels.h"
#include "kernel_checks.h"

namespace zero {

// Row-major C[m,n] = alpha * op(A) op(B) + beta * C; handles k == 0, which
// BLAS implementations treat inconsistently.
void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, const float* b, float beta,
           float* c) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (int64_t i = 0; i < m * n; ++i) c[i] = beta == 0.f ? 0.f : beta * c[i];
    return;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(m), int(n), int(k),
              alpha, a, int(ta ? m : k), b, int(tb ? k : n), beta, c, int(n));
}

namespace {

// ---- Gemm / MatMul -------------------------------------------------------

struct GemmState {
  GemmGeom g;
  int64_t sc[kMaxRank];  // C's strides broadcast to Y
};

Status prepare_gemm(const KernelCall& call, GemmState* s) { return gemm_geometry(call, &s->g, s->sc); }

Status gemm(const KernelContext&, const KernelCall& call, const GemmState& s) {
  const Tensor &a = call.in[0], &b = call.in[1], &y = call.out[0];
  const GemmGeom& g = s.g;
  const int64_t sz[kMaxRank] = {};
  float c_beta = 0.f;
  if (g.with_c) {
    // Y = C broadcast, then BLAS accumulates beta * Y. Exact aliasing C == Y
    // is a same-index copy.
    const float* pc = call.in[2].f32();
    float* py = y.f32();
    for_each_broadcast(y, s.sc, sz, [&](int64_t o, int64_t i, int64_t) { py[o] = pc[i]; });
    c_beta = g.beta;
  }
  sgemm(g.ta, g.tb, g.m, g.n, g.k, g.alpha, a.f32(), b.f32(), c_beta, y.f32());
  return Status();
}

Status matmul(const KernelContext&, const KernelCall& call, const MatMulGeom& g) {
  const int64_t m = g.m, n = g.n, k = g.k;
  const float *pa = call.in[0].f32(), *pb = call.in[1].f32();
  float* py = call.out[0].f32();
  if (g.batch_b == 1 && g.batch_a == g.batch.numel) {
    // A shared B: one GEMM over all of A's rows.
    sgemm(false, false, g.batch.numel * m, n, k, 1.f, pa, pb, 0.f, py);
    return Status();
  }
  for_each_broadcast(g.batch, g.sa, g.sb, [&](int64_t o, int64_t i, int64_t j) {
    sgemm(false, false, m, n, k, 1.f, pa + i * m * k, pb + j * k * n, 0.f, py + o * m * n);
  });
  return Status();
}

}  // namespace

void add_cpu_gemm_kernels(TableBackend& backend) {
  using plan::Opcode;
  backend.set(Opcode::Gemm, define_kernel<prepare_gemm, gemm>());
  backend.set(Opcode::MatMul, define_kernel<matmul_geometry, matmul>());
}

}  // namespace zero
