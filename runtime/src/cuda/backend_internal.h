// Internal to the CUDA backend's host side: backend.cc (the device, the
// kernel table) and one file per op family (cuda/<family>.cc, whose kernels
// it registers; the device code is cuda/<family>.cu).
#ifndef ZERO_RUNTIME_CUDA_BACKEND_INTERNAL_H
#define ZERO_RUNTIME_CUDA_BACKEND_INTERNAL_H

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <memory>

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

namespace cuda_backend {

using cuda::Strided;
using plan::Opcode;

// The process's CudaDevice: kernels enqueue on its stream.
extern CudaDevice::State* g_dev;

Status cuda_status(cudaError_t e, const char* what);
Status blas_status(cublasStatus_t s, const char* what);
Status launched(const KernelCall& call, cudaError_t e);
// Device scratch of at least `bytes`, reused across kernels (stream order).
Status scratch(size_t bytes, void** out);
Strided shape_of(const Tensor& t);
int elem_size(const Tensor& t);
Status check_grid(const KernelCall& call, int64_t blocks);

// Each family's kernels: fn<true> runs, fn<false> only checks (at load).
void add_cuda_elementwise_kernels(TableBackend& backend);
void add_cuda_gemm_kernels(TableBackend& backend);
void add_cuda_softmax_loss_kernels(TableBackend& backend);
void add_cuda_layout_kernels(TableBackend& backend);
void add_cuda_normalization_kernels(TableBackend& backend);
void add_cuda_conv_pool_kernels(TableBackend& backend);
void add_cuda_optimizers_kernels(TableBackend& backend);

#define ZERO_CUDA_SET(op, fn) backend.set(Opcode::op, fn<true>, fn<false>)
#define ZERO_CUDA_SET_T(op, fn, ...) backend.set(Opcode::op, fn<__VA_ARGS__, true>, fn<__VA_ARGS__, false>)

}  // namespace cuda_backend
}  // namespace zero

#endif  // ZERO_RUNTIME_CUDA_BACKEND_INTERNAL_H
