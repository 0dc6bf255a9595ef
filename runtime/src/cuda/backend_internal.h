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

// What the CUDA kernels execute with (KernelContext::device): every launch
// goes to `stream`, every GEMM through `blas` (bound to that stream), and
// data errors to the device error word.
struct DeviceContext {
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  int* err = nullptr;  // device error word (kernels.h ErrorCode)
};

struct CudaDevice::State {
  int device = 0;
  DeviceContext context;
  std::unique_ptr<Allocator> alloc;
  std::unique_ptr<Backend> backend;
};

namespace cuda_backend {

using cuda::Strided;
using plan::Opcode;

Status cuda_status(cudaError_t e, const char* what);
Status blas_status(cublasStatus_t s, const char* what);
Status launched(const KernelCall& call, cudaError_t e);
Strided shape_of(const Tensor& t);
int elem_size(const Tensor& t);
Status check_grid(const KernelCall& call, int64_t blocks);

// Each family's kernels: a prepare (the checks of kernel_checks.h and the
// launch geometry) and an execute (the launches), registered with
// define_kernel (backend.h).
void add_cuda_elementwise_kernels(TableBackend& backend);
void add_cuda_gemm_kernels(TableBackend& backend);
void add_cuda_softmax_loss_kernels(TableBackend& backend);
void add_cuda_layout_kernels(TableBackend& backend);
void add_cuda_normalization_kernels(TableBackend& backend);
void add_cuda_conv_pool_kernels(TableBackend& backend);
void add_cuda_optimizers_kernels(TableBackend& backend);

}  // namespace cuda_backend
}  // namespace zero

#endif  // ZERO_RUNTIME_CUDA_BACKEND_INTERNAL_H
