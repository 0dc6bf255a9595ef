// The CPU backend's kernels, registered per op family (one file each).
#ifndef ZERO_RUNTIME_CPU_KERNELS_H
#define ZERO_RUNTIME_CPU_KERNELS_H

#include <cstdint>

#include "backend.h"

namespace zero {

// zero/elementwise_ops.h's ops and their derivative kernels, Copy and Cast.
void add_cpu_elementwise_kernels(TableBackend& backend);
void add_cpu_gemm_kernels(TableBackend& backend);
void add_cpu_softmax_loss_kernels(TableBackend& backend);
void add_cpu_layout_kernels(TableBackend& backend);
void add_cpu_normalization_kernels(TableBackend& backend);
void add_cpu_conv_pool_kernels(TableBackend& backend);
void add_cpu_optimizers_kernels(TableBackend& backend);

// CBLAS GEMM for the kernels built on one (gemm.cc has the details).
void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, const float* b, float beta,
           float* c);

}  // namespace zero

#endif  // ZERO_RUNTIME_CPU_KERNELS_H
