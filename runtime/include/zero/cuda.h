// The CUDA backend (library zero_runtime_cuda, built with ZERO_ENABLE_CUDA):
// one GPU per process, one compute stream, cuBLAS for GEMMs, the other
// kernels in runtime/src/cuda/*.cu, and an NCCL communicator on device
// pointers. Open a plan compiled with `zero-opt --target=cuda` with
//
//   std::unique_ptr<CudaDevice> dev;   CudaDevice::create({/*device=*/0}, &dev);
//   std::unique_ptr<Communicator> comm; make_nccl_communicator(dev.get(), host_comm, &comm);
//   Session::open(path, comm.get(), dev->allocator(), dev->backend(), &session);
//
// The Session then keeps the arena in device memory; bind_input copies to the
// device, loss/read_output/read_parameter copy back.
#ifndef ZERO_CUDA_H
#define ZERO_CUDA_H

#include <memory>
#include <string>

#include "zero/runtime.h"

namespace zero {

struct CudaOptions {
  int device = 0;
  // GEMMs in TF32 (cublasSetMathMode CUBLAS_TF32_TENSOR_OP_MATH): faster,
  // ~1e-3 relative error. Off by default so results match the CPU backend.
  bool allow_tf32 = false;
};

// Number of usable CUDA devices; 0 (with *why set, if given) when there is no
// driver, no device, or the runtime cannot initialize.
int cuda_device_count(std::string* why = nullptr);

// One GPU: its compute stream, cuBLAS handle, device allocator and the
// backend, whose kernels run with this device's stream and handle.
class CudaDevice {
 public:
  static Status create(const CudaOptions& options, std::unique_ptr<CudaDevice>* out);
  ~CudaDevice();

  const Backend* backend() const;
  // cudaMalloc / cudaFree (256-byte alignment at most).
  Allocator* allocator();
  int device() const;
  // The compute stream, as a cudaStream_t.
  void* stream() const;
  Status synchronize();
  // Memory in use on this GPU, by every process on it (cudaMemGetInfo).
  Status memory_in_use(size_t* bytes) const;

  struct State;
  CudaDevice(const CudaDevice&) = delete;
  CudaDevice& operator=(const CudaDevice&) = delete;

 private:
  explicit CudaDevice(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

// One rank on the device: the collectives are device copies on the compute
// stream (no NCCL needed).
std::unique_ptr<Communicator> make_cuda_single_rank_communicator(CudaDevice* dev);

// True when zero_runtime_cuda was built with NCCL.
bool nccl_available();

// NCCL over the ranks of `bootstrap` (the MPI or single-rank host
// communicator): rank 0 creates the ncclUniqueId and sends it to the others
// with one host all_gather on `bootstrap`. Collective over bootstrap's ranks.
// Collectives run on their own stream, ordered against the compute stream
// with events. dev and bootstrap must outlive the communicator.
Status make_nccl_communicator(CudaDevice* dev, Communicator* bootstrap, std::unique_ptr<Communicator>* out);

}  // namespace zero

#endif  // ZERO_CUDA_H
