// The kernel interface between the executor and a backend. A backend is a
// table of kernels indexed by opcode; the executor resolves every
// instruction's operands to Tensors once at load and calls the kernel per
// step. Collectives are not kernels: the executor sends them to the
// Communicator.
#ifndef ZERO_RUNTIME_BACKEND_H
#define ZERO_RUNTIME_BACKEND_H

#include <cstdint>
#include <cstring>

#include "zero/plan_generated.h"
#include "zero/runtime.h"

namespace zero {

constexpr int kMaxRank = 8;

// A dense row-major view into the arena.
struct Tensor {
  void* data = nullptr;
  DType dtype = DType::F32;
  int ndim = 0;
  int64_t dims[kMaxRank] = {};
  int64_t numel = 1;

  float* f32() const { return static_cast<float*>(data); }
  int64_t* i64() const { return static_cast<int64_t*>(data); }
};

std::string tensor_shape_string(const Tensor& t);

// Operands of one instruction. Kernels validate shapes and dtypes themselves
// and return an error instead of touching memory a corrupt plan points at.
struct KernelCall {
  const plan::Instruction* inst;
  const Tensor* in;
  int num_in;
  Tensor* out;
  int num_out;
};

using Kernel = Status (*)(const KernelCall& call);
// Checks an instruction's operand dtypes, shapes and attributes without
// touching tensor contents; the executor runs it once at load so a plan whose
// shapes do not fit its attributes is rejected before the first step. Kernels
// with a validator also call it themselves (it is cheap).
using Validator = Status (*)(const KernelCall& call);

class Backend {
 public:
  virtual ~Backend() = default;
  virtual plan::Backend kind() const = 0;
  // nullptr when the backend has no kernel for the opcode.
  virtual Kernel kernel(plan::Opcode opcode) const = 0;
  // nullptr when the opcode's kernel checks everything when it runs.
  virtual Validator validator(plan::Opcode) const { return nullptr; }

  // The arena's memory as the executor sees it: host memory for the CPU
  // backend (the defaults), device memory for an accelerator backend. `host`
  // is always host memory; `dev` points into the arena (or the backend's
  // allocator). Copies are complete (visible to later kernels and to the
  // host) when they return.
  virtual Status copy_to_device(void* dev, const void* host, size_t bytes) const {
    if (bytes) std::memcpy(dev, host, bytes);
    return Status();
  }
  virtual Status copy_to_host(void* host, const void* dev, size_t bytes) const {
    if (bytes) std::memcpy(host, dev, bytes);
    return Status();
  }
  virtual Status zero_fill(void* dev, size_t bytes) const {
    if (bytes) std::memset(dev, 0, bytes);
    return Status();
  }
  // Bytes of the arena's memory free for a new arena, 0 when unknown; the
  // executor refuses a plan whose arena is larger. The default: host memory
  // the kernel reports available (MemAvailable).
  virtual uint64_t available_memory() const;
  // Called after the last instruction of a step: an asynchronous backend
  // waits for its work here and reports errors its kernels found in the data
  // (an index or label out of range).
  virtual Status finish_step() const { return Status(); }
};

// A backend whose kernels and validators are tables indexed by opcode.
class TableBackend : public Backend {
 public:
  Kernel kernel(plan::Opcode op) const override {
    auto i = size_t(op);
    return i < kTableSize ? table_[i] : nullptr;
  }
  Validator validator(plan::Opcode op) const override {
    auto i = size_t(op);
    return i < kTableSize ? validators_[i] : nullptr;
  }

  // Filled by the backend's constructor, an op family at a time.
  void set(plan::Opcode op, Kernel k, Validator v = nullptr) {
    table_[size_t(op)] = k;
    validators_[size_t(op)] = v;
  }

 private:
  static constexpr size_t kTableSize = 256;
  Kernel table_[kTableSize] = {};
  Validator validators_[kTableSize] = {};
};

const Backend& cpu_backend();

// Caps the floats of one im2col chunk of the CPU Conv kernels (at least one
// image is always taken); for tests of the chunking. Returns the old cap.
int64_t set_cpu_conv_scratch_limit(int64_t floats);
// The same for the CUDA backend's Conv kernels (defined in zero_runtime_cuda).
int64_t set_cuda_conv_scratch_limit(int64_t floats);
// Whether the CUDA backend has a kernel for `op`; needs no GPU (defined in
// zero_runtime_cuda).
bool cuda_backend_implements(plan::Opcode op);

}  // namespace zero

#endif  // ZERO_RUNTIME_BACKEND_H
