// Entry point of libzero_cuda.so: zero/cuda_module.h on top of zero/cuda.h.
#include "zero/cuda.h"
#include "zero/cuda_module.h"

namespace zero {
namespace {

class Rank final : public CudaRank {
 public:
  Communicator* communicator() override { return comm_.get(); }
  Allocator* allocator() override { return device_->allocator(); }
  const Backend* backend() const override { return device_->backend(); }
  uint64_t device_bytes() const override {
    size_t now = 0;
    return device_->memory_in_use(&now).ok() && now > baseline_ ? now - baseline_ : 0;
  }

  // Destroyed in reverse: the communicator (NCCL synchronizes on the
  // device's stream) before the device.
  std::unique_ptr<CudaDevice> device_;
  std::unique_ptr<Communicator> comm_;
  size_t baseline_ = 0;
};

Status open_rank(const CudaRankOptions& options, Communicator* host, std::unique_ptr<CudaRank>* out) {
  std::string why;
  const int gpus = cuda_device_count(&why);
  if (gpus == 0) return Status::unavailable("no GPU is available (" + why + ")");
  auto rank = std::make_unique<Rank>();
  CudaOptions device_options;
  device_options.device = (options.local_rank < 0 ? 0 : options.local_rank) % gpus;
  device_options.allow_tf32 = options.allow_tf32;
  ZERO_RETURN_IF_ERROR(CudaDevice::create(device_options, &rank->device_));
  ZERO_RETURN_IF_ERROR(rank->device_->memory_in_use(&rank->baseline_));
  // NCCL even for one rank, so a single-GPU run exercises the same path.
  ZERO_RETURN_IF_ERROR(make_nccl_communicator(rank->device_.get(), host, &rank->comm_));
  *out = std::move(rank);
  return Status();
}

const CudaModule kModule = {ZERO_CUDA_MODULE_ABI, open_rank};

}  // namespace
}  // namespace zero

extern "C" __attribute__((visibility("default"))) const zero::CudaModule* zero_cuda_module() { return &zero::kModule; }
