// The CPU backend: the kernel table, filled an op family at a time (one file
// per family in this directory, each kernel with its checks).
#include "backend.h"

#include "cpu/kernels.h"

namespace zero {
namespace {

class CpuBackend final : public TableBackend {
 public:
  CpuBackend() {
    add_cpu_elementwise_kernels(*this);
    add_cpu_gemm_kernels(*this);
    add_cpu_softmax_loss_kernels(*this);
    add_cpu_layout_kernels(*this);
    add_cpu_normalization_kernels(*this);
    add_cpu_conv_pool_kernels(*this);
    add_cpu_optimizers_kernels(*this);
  }
  plan::Backend kind() const override { return plan::Backend::Cpu; }
};

}  // namespace

const Backend& cpu_backend() {
  static const CpuBackend backend;
  return backend;
}

}  // namespace zero
