// The CUDA backend as a loadable module (libzero_cuda.so), so that one
// launcher binary serves CPU-only machines, which never load the CUDA
// runtime, cuBLAS or NCCL, and GPU machines, which load them only for a plan
// compiled with --target=cuda. The module is built with the CUDA backend
// (ZERO_ENABLE_CUDA) in the same build as its user, so the interface is plain
// C++ behind one C entry point; `abi` is a hash of the headers and schema the
// two sides share (runtime/CMakeLists.txt), checked when the module loads.
#ifndef ZERO_CUDA_MODULE_H
#define ZERO_CUDA_MODULE_H

#include <cstdint>
#include <memory>

#include "zero/runtime.h"

namespace zero {

struct CudaRankOptions {
  // The GPU is local_rank % (visible devices); -1 counts as 0.
  int local_rank = -1;
  bool allow_tf32 = false;  // CudaOptions::allow_tf32
};

// What one rank needs to open a CUDA plan: Session::open(path,
// communicator(), allocator(), backend(), ...). Outlives that session.
class CudaRank {
 public:
  virtual ~CudaRank() = default;
  virtual Communicator* communicator() = 0;
  virtual Allocator* allocator() = 0;
  virtual const Backend* backend() const = 0;
  // Device memory taken since the rank opened its GPU (the arena, kernel
  // scratch, NCCL's buffers; not the CUDA context or cuBLAS's handle), as
  // cudaMemGetInfo sees it: the measured counterpart of the planned arena.
  // It counts every process on the GPU, so it is this rank's own only when
  // the rank has the GPU to itself.
  virtual uint64_t device_bytes() const = 0;
};

struct CudaModule {
  uint64_t abi;  // ZERO_CUDA_MODULE_ABI of the module's build
  // Opens this rank's GPU; collectives over NCCL, bootstrapped over `host`
  // (every rank of `host` calls this). Without NCCL in the module, one rank
  // only, with device copies as collectives.
  Status (*open_rank)(const CudaRankOptions& options, Communicator* host, std::unique_ptr<CudaRank>* out);
};

// The module's entry point, exported by libzero_cuda.so.
extern "C" const CudaModule* zero_cuda_module();

// Loads libzero_cuda.so (from ../lib next to the running executable, else
// the dynamic linker's search path) once per process and returns its table,
// or an error naming what failed to load (e.g. a missing libcudart).
Status load_cuda_module(const CudaModule** module);

}  // namespace zero

#endif  // ZERO_CUDA_MODULE_H
