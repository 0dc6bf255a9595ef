// The CUDA backend's host side for Conv (im2col + cuBLAS over chunks of images) and pooling: the prepares (operand
// checks of kernel_checks.h, chunking and scratch, at load) and the launches (kernels.h); the device side is
// conv_pool.cu.
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
// gathered per group) need scratch: the session's, sized at prepare.

// The cap on the scratch floats of one chunk (zero/kernel_scratch.h).
int64_t conv_scratch_limit = kernel_scratch::kCudaConvChunkFloats;

cuda::ConvArgs conv_args(const ConvGeom& g) {
  cuda::ConvArgs a{g.n, g.c, g.m, g.group, {}, {}, g.win};
  std::copy(g.in, g.in + kMaxSpatial, a.in);
  std::copy(g.out, g.out + kMaxSpatial, a.out);
  return a;
}

// A conv's geometry and its chunking, fixed at prepare with the scratch it
// sizes (zero/kernel_scratch.h: cuda_conv*_bytes).
struct ConvState {
  ConvGeom g;
  int64_t chunk;  // images per chunk
  size_t scratch_bytes;
};

size_t conv_scratch_bytes(const ConvState& s) { return s.scratch_bytes; }

// The kernel's validate_conv*, then its chunk of `rows` scratch rows per
// image (kdim, or kdim + m/group for ConvGradWeight) and its scratch.
template <Status (*kValidate)(const KernelCall&, ConvGeom*), bool kWithDy,
          uint64_t (*kScratch)(const kernel_scratch::ConvDims&, int64_t)>
Status prepare_conv(const KernelCall& call, ConvState* s) {
  ZERO_RETURN_IF_ERROR(kValidate(call, &s->g));
  const kernel_scratch::ConvDims d = conv_dims(s->g);
  s->chunk = kernel_scratch::conv_chunk(d, d.kdim() + (kWithDy ? d.mg() : 0), conv_scratch_limit);
  s->scratch_bytes = size_t(kScratch(d, conv_scratch_limit));
  return Status();
}

// Row-major C[m,n] = alpha * op(A) op(B) + beta * C with explicit row strides
// (lda, ldb, ldc: of A, B, C as stored) and `batch` matrices `sa`, `sb`, `sc`
// floats apart. m, n, k > 0.
Status sgemm_strided(const DeviceContext& dev, const KernelCall& call, bool ta, bool tb, int64_t m, int64_t n,
                     int64_t k, const float* a, int64_t lda, int64_t sa, const float* b, int64_t ldb, int64_t sb,
                     float beta, float* c, int64_t ldc, int64_t sc, int64_t batch) {
  const float alpha = 1.f;
  const cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasStatus_t s = cublasSgemmStridedBatched(dev.blas, opb, opa, int(n), int(m), int(k), &alpha, b, int(ldb),
                                                     sb, a, int(lda), sa, &beta, c, int(ldc), sc, int(batch));
  if (s != CUBLAS_STATUS_SUCCESS) return fail(call, "cuBLAS SGEMM failed with status " + std::to_string(int(s)));
  return Status();
}

Status conv(const KernelContext& ctx, const KernelCall& call, const ConvState& s) {
  const Tensor &x = call.in[0], &w = call.in[1], &y = call.out[0];
  if (y.numel == 0) return Status();
  const DeviceContext& dev = *ctx.device;
  const ConvGeom& g = s.g;
  const int64_t K = g.kdim(), P = g.plane(), mg = g.mg(), nc = s.chunk;
  const cuda::ConvArgs a = conv_args(g);
  if (K == 0) {
    ZERO_RETURN_IF_ERROR(launched(call, cudaMemsetAsync(y.data, 0, size_t(y.numel) * sizeof(float), dev.stream)));
  } else {
    float* col = static_cast<float*>(ctx.scratch);
    for (int64_t n0 = 0; n0 < g.n; n0 += nc) {
      const int64_t cur = std::min(nc, g.n - n0), ld = cur * P;
      for (int64_t gi = 0; gi < g.group; ++gi) {
        ZERO_RETURN_IF_ERROR(launched(call, cuda::im2col(dev.stream, a, x.f32(), n0, cur, gi, col)));
        // y[n0 + nn, group gi] [mg, P] = w_g [mg, K] . col[:, nn*P, +P] per image nn.
        ZERO_RETURN_IF_ERROR(sgemm_strided(dev, call, false, false, mg, P, K, w.f32() + gi * mg * K, K, 0, col, ld, P,
                                           0.f, y.f32() + (n0 * g.m + gi * mg) * P, P, g.m * P, cur));
      }
    }
  }
  if (call.num_in > 2)
    ZERO_RETURN_IF_ERROR(launched(call, cuda::conv_bias(dev.stream, y.f32(), call.in[2].f32(), g.n, g.m, P)));
  return Status();
}

Status conv_grad_input(const KernelContext& ctx, const KernelCall& call, const ConvState& s) {
  const Tensor &dy = call.in[0], &w = call.in[1], &dx = call.out[0];
  if (dx.numel == 0) return Status();
  const DeviceContext& dev = *ctx.device;
  const ConvGeom& g = s.g;
  const int64_t K = g.kdim(), P = g.plane(), mg = g.mg(), nc = s.chunk;
  if (mg == 0) return launched(call, cudaMemsetAsync(dx.data, 0, size_t(dx.numel) * sizeof(float), dev.stream));
  const cuda::ConvArgs a = conv_args(g);
  float* col = static_cast<float*>(ctx.scratch);
  for (int64_t n0 = 0; n0 < g.n; n0 += nc) {
    const int64_t cur = std::min(nc, g.n - n0), ld = cur * P;
    for (int64_t gi = 0; gi < g.group; ++gi) {
      // col[:, nn*P, +P] = w_g^T [K, mg] . dy[n0 + nn, group gi] [mg, P] per image nn.
      ZERO_RETURN_IF_ERROR(sgemm_strided(dev, call, true, false, K, P, mg, w.f32() + gi * mg * K, K, 0,
                                         dy.f32() + (n0 * g.m + gi * mg) * P, P, g.m * P, 0.f, col, ld, P, cur));
      // Every element of dx is written by exactly one chunk and group.
      ZERO_RETURN_IF_ERROR(launched(call, cuda::col2im(dev.stream, a, col, n0, cur, gi, dx.f32())));
    }
  }
  return Status();
}

Status conv_grad_weight(const KernelContext& ctx, const KernelCall& call, const ConvState& s) {
  const Tensor &dy = call.in[0], &x = call.in[1], &dw = call.out[0];
  if (dw.numel == 0) return Status();
  const DeviceContext& dev = *ctx.device;
  const ConvGeom& g = s.g;
  ZERO_RETURN_IF_ERROR(launched(call, cudaMemsetAsync(dw.data, 0, size_t(dw.numel) * sizeof(float), dev.stream)));
  const int64_t K = g.kdim(), P = g.plane(), mg = g.mg(), nc = s.chunk;
  const cuda::ConvArgs a = conv_args(g);
  float *col = static_cast<float*>(ctx.scratch), *dyb = col + K * nc * P;
  for (int64_t n0 = 0; n0 < g.n; n0 += nc) {
    const int64_t cur = std::min(nc, g.n - n0), ld = cur * P;
    for (int64_t gi = 0; gi < g.group; ++gi) {
      ZERO_RETURN_IF_ERROR(launched(call, cuda::im2col(dev.stream, a, x.f32(), n0, cur, gi, col)));
      // dy of group gi as [mg, cur*P] (dy itself for one image).
      const float* dyg = dy.f32() + (n0 * g.m + gi * mg) * P;
      if (cur > 1) {
        Strided sg;
        sg.ndim = 3;
        sg.dims[0] = mg, sg.dims[1] = cur, sg.dims[2] = P;
        sg.s[0][0] = P, sg.s[0][1] = g.m * P, sg.s[0][2] = 1;
        ZERO_RETURN_IF_ERROR(launched(call, cuda::strided_gather(dev.stream, dyg, dyb, 4, sg, mg * ld)));
        dyg = dyb;
      }
      // dw_g [mg, K] += dy_g [mg, cur*P] . col^T.
      ZERO_RETURN_IF_ERROR(sgemm_strided(dev, call, false, true, mg, K, ld, dyg, ld, 0, col, ld, 0, 1.f,
                                         dw.f32() + gi * mg * K, K, 0, 1));
    }
  }
  return Status();
}

cuda::PoolArgs pool_args(const PoolGeom& g) {
  cuda::PoolArgs a{g.planes, {}, {}, g.win, g.include_pad};
  std::copy(g.in, g.in + kMaxSpatial, a.in);
  std::copy(g.out, g.out + kMaxSpatial, a.out);
  return a;
}

Status max_pool(const KernelContext& ctx, const KernelCall& call, const PoolGeom& g) {
  return launched(call, cuda::max_pool(ctx.device->stream, pool_args(g), call.in[0].f32(), call.out[0].f32(),
                                       call.num_out > 1 ? call.out[1].i64() : nullptr));
}

Status max_pool_grad(const KernelContext& ctx, const KernelCall& call, const PoolGeom& g) {
  return launched(call, cuda::max_pool_grad(ctx.device->stream, pool_args(g), call.in[0].f32(), call.in[1].i64(),
                                            call.out[0].f32(), int(Opcode::MaxPoolGrad), ctx.device->err));
}

Status average_pool(const KernelContext& ctx, const KernelCall& call, const PoolGeom& g) {
  return launched(call, cuda::average_pool(ctx.device->stream, pool_args(g), call.in[0].f32(), call.out[0].f32()));
}

Status average_pool_grad(const KernelContext& ctx, const KernelCall& call, const PoolGeom& g) {
  return launched(call, cuda::average_pool_grad(ctx.device->stream, pool_args(g), call.in[0].f32(), call.out[0].f32()));
}

}  // namespace

void add_cuda_conv_pool_kernels(TableBackend& backend) {
  using kernel_scratch::cuda_conv_bytes, kernel_scratch::cuda_conv_grad_input_bytes,
      kernel_scratch::cuda_conv_grad_weight_bytes;
  backend.set(Opcode::Conv,
              define_kernel<prepare_conv<validate_conv, false, cuda_conv_bytes>, conv, conv_scratch_bytes>());
  backend.set(Opcode::ConvGradInput,
              define_kernel<prepare_conv<validate_conv_grad_input, false, cuda_conv_grad_input_bytes>, conv_grad_input,
                            conv_scratch_bytes>());
  backend.set(Opcode::ConvGradWeight,
              define_kernel<prepare_conv<validate_conv_grad_weight, true, cuda_conv_grad_weight_bytes>,
                            conv_grad_weight, conv_scratch_bytes>());
  backend.set(Opcode::MaxPool, define_kernel<validate_max_pool, max_pool>());
  backend.set(Opcode::MaxPoolGrad, define_kernel<validate_max_pool_grad, max_pool_grad>());
  backend.set(Opcode::AveragePool, define_kernel<validate_average_pool, average_pool>());
  backend.set(Opcode::AveragePoolGrad, define_kernel<validate_average_pool_grad, average_pool_grad>());
}

}  // namespace cuda_backend

int64_t set_cuda_conv_scratch_limit(int64_t floats) {
  const int64_t old = cuda_backend::conv_scratch_limit;
  cuda_backend::conv_scratch_limit = std::max<int64_t>(1, floats);
  return old;
}

}  // namespace zero
