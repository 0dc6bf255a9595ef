// The CUDA backend's host side for Conv (im2col + cuBLAS over chunks of images) and pooling: operand checks
// (kernel_checks.h, run at load with kRun = false) and the launches
// (kernels.h); the device side is conv_pool.cu.
#include <algorithm>
#include <climits>
#include <string>

#include "cuda/backend_internal.h"

namespace zero {
namespace cuda_backend {
namespace {

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
  const cublasStatus_t s = cublasSgemmStridedBatched(g_dev->blas, opb, opa, int(n), int(m), int(k), &alpha, b, int(ldb),
                                                     sb, a, int(lda), sa, &beta, c, int(ldc), sc, int(batch));
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

}  // namespace

void add_cuda_conv_pool_kernels(TableBackend& backend) {
  ZERO_CUDA_SET(Conv, conv);
  ZERO_CUDA_SET(ConvGradInput, conv_grad_input);
  ZERO_CUDA_SET(ConvGradWeight, conv_grad_weight);
  ZERO_CUDA_SET(MaxPool, max_pool);
  ZERO_CUDA_SET(MaxPoolGrad, max_pool_grad);
  ZERO_CUDA_SET(AveragePool, average_pool);
  ZERO_CUDA_SET(AveragePoolGrad, average_pool_grad);
}

}  // namespace cuda_backend

int64_t set_cuda_conv_scratch_limit(int64_t floats) {
  const int64_t old = cuda_backend::conv_scratch_limit;
  cuda_backend::conv_scratch_limit = std::max<int64_t>(1, floats);
  return old;
}

}  // namespace zero
